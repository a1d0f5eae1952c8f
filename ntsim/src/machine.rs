//! The emulated machine: its state, the per-thread context that kernel routines find it by, and
//! the public entry point [`Kernel`].

use std::cell::RefCell;
use std::fmt;

use crate::clock::{Clock, TimeMode};
use crate::cpu::Cpu;
use crate::sched::{ActorId, ActorKind, Policy, Sched, Status};
use crate::sync::{self, Arc, Condvar, Mutex, MutexGuard};
use crate::verifier::{Report, Rule, Verifier};

/// How a machine is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// Number of emulated CPUs (at least 1; 2 or more reproduce the races of spec B).
    pub cpus: usize,
    /// Virtual time (default) or real time.
    pub time: TimeMode,
    /// How the scheduler picks the next actor.
    pub policy: Policy,
    /// Whether violations are reported (the verifier is on by default; fatal stops always are).
    pub verifier: bool,
    /// StartIo nesting depth above which rule C27 is fatal.
    pub max_startio_depth: u32,
    /// How long (virtual 100 ns units) an IRP may stay uncompleted after IoCancelIrp before
    /// rule C15 reports it.
    pub cancel_timeout: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cpus: 2,
            time: TimeMode::Virtual,
            policy: Policy::Fifo,
            verifier: true,
            max_startio_depth: 8,
            cancel_timeout: 5 * 60 * 10_000_000,
        }
    }
}

impl Config {
    /// The default machine with `policy`.
    pub fn with_policy(policy: Policy) -> Self {
        Config {
            policy,
            ..Config::default()
        }
    }
}

/// Shared by every actor of a machine.
pub(crate) struct Machine {
    pub(crate) world: Mutex<World>,
    /// Signalled whenever the baton moves or the machine halts.
    pub(crate) baton: Condvar,
    pub(crate) config: Config,
}

impl fmt::Debug for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Machine").finish_non_exhaustive()
    }
}

/// Everything ntsim knows about the emulated machine, behind one lock (the model's dispatcher
/// database). Only the baton holder takes it, so it is never contended; it exists so that the
/// same code is also correct when the shuttle feature lets actors run freely.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) sched: Sched,
    pub(crate) clock: Clock,
    pub(crate) cpus: Vec<Cpu>,
    pub(crate) verifier: Verifier,
    /// Set by a fatal verifier stop (a bugcheck on Windows): nothing runs any more.
    pub(crate) halted: Option<Report>,
    /// The machine's main thread has returned: the run is over.
    pub(crate) main_done: bool,
    /// `Kernel::run` has returned: idle interrupt actors end their OS threads.
    pub(crate) shut_down: bool,
    /// A Rust panic inside an actor (a failed assertion in a test), re-raised by `run`.
    pub(crate) panic: Option<String>,
    pub(crate) waits: crate::wait::WaitTable,
    pub(crate) spin: crate::spinlock::SpinTable,
    pub(crate) timers: crate::timer::TimerTable,
    pub(crate) dpcs: crate::dpc::DpcTable,
    pub(crate) pool: crate::pool::PoolTable,
    pub(crate) objects: crate::object::ObjectTable,
    pub(crate) breakpoints: crate::breakpoint::Breakpoints,
    pub(crate) threads: crate::thread::ThreadTable,
    pub(crate) irps: crate::irp::IrpTable,
    pub(crate) drivers: crate::driver::DriverTable,
    pub(crate) csq: crate::csq::CsqTable,
    pub(crate) startio: crate::startio::StartIoTable,
    pub(crate) iomgr: crate::iomgr::IoMgrTable,
    pub(crate) images: crate::image::ImageTable,
}

impl World {
    /// Records a verifier report; a fatal one halts the machine.
    pub(crate) fn report(&mut self, rule: Rule, message: String, parties: Vec<String>) {
        let report = Report::new(rule, message, parties, self.clock.now());
        let fatal = report.is_fatal();
        self.verifier.push(report.clone());
        if fatal && self.halted.is_none() {
            self.halted = Some(report);
        }
    }

    /// The name of an actor, for messages.
    pub(crate) fn who(&self, id: ActorId) -> String {
        self.sched.name(id).to_string()
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Cx>> = const { RefCell::new(None) };
}

/// The context of the running actor: its machine and its identity. Kernel routines get it with
/// [`Cx::get`], the way the real kernel finds the current thread and processor.
#[derive(Clone, Debug)]
pub(crate) struct Cx {
    pub(crate) m: Arc<Machine>,
    pub(crate) me: ActorId,
}

impl Cx {
    /// The running actor's context.
    ///
    /// # Panics
    /// When called from a thread that is not an emulated thread of an ntsim machine: kernel
    /// routines only exist inside [`Kernel::run`].
    pub(crate) fn get() -> Cx {
        CURRENT.with(|c| {
            c.borrow().clone().expect(
                "an ntsim kernel routine was called outside an emulated thread; call it inside Kernel::run",
            )
        })
    }

    /// The context if the caller is an emulated thread.
    pub(crate) fn try_get() -> Option<Cx> {
        CURRENT.with(|c| c.borrow().clone())
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, World> {
        sync::lock(&self.m.world)
    }

    fn install(&self) {
        CURRENT.with(|c| *c.borrow_mut() = Some(self.clone()));
    }

    /// Starts an actor on a new OS thread. It runs `body` once the scheduler hands it the baton
    /// and leaves the machine when `body` returns.
    pub(crate) fn spawn_actor(
        m: &Arc<Machine>,
        g: &mut World,
        name: String,
        kind: ActorKind,
        cpu: usize,
        body: Box<dyn FnOnce() + Send>,
    ) -> ActorId {
        let status = if matches!(kind, ActorKind::Interrupt { .. }) {
            Status::Idle
        } else {
            Status::Ready
        };
        let id = g.sched.add(name.clone(), kind, cpu, status);
        let cx = Cx {
            m: m.clone(),
            me: id,
        };
        sync::thread::Builder::new()
            .name(name)
            .spawn(move || {
                cx.install();
                {
                    // An actor that never got the baton has nothing to unwind: it simply ends
                    // when the run is over.
                    let mut g = cx.lock();
                    loop {
                        if g.sched.running == Some(cx.me) && g.halted.is_none() {
                            break;
                        }
                        if g.shut_down {
                            return;
                        }
                        g = sync::wait(&cx.m.baton, g);
                    }
                }
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
                if let Err(payload) = result {
                    let msg = panic_message(&payload);
                    let mut g = cx.lock();
                    let who = g.who(cx.me);
                    g.panic
                        .get_or_insert(format!("emulated thread '{who}' panicked: {msg}"));
                    g.halted
                        .get_or_insert_with(|| Report::new(Rule::Panic, msg, vec![who], 0));
                    cx.m.baton.notify_all();
                    return;
                }
                cx.exit_actor();
            })
            .expect("the host can create a thread");
        id
    }
}

fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

/// An emulated NT machine. Create one per test or run; [`Kernel::run`] executes a closure as the
/// machine's first system thread, where every kernel routine of ntsim may be called.
#[derive(Debug)]
pub struct Kernel {
    m: Arc<Machine>,
}

/// What a run of the machine produced.
#[derive(Debug)]
pub struct Outcome<R> {
    /// The main thread's return value; `None` if the machine stopped first.
    pub value: Option<R>,
    /// The fatal stop (a bugcheck on Windows) that halted the machine, if any.
    pub stop: Option<Report>,
    /// Every verifier report, fatal or not, in the order they were made.
    pub reports: Vec<Report>,
    /// Virtual (or elapsed real) time at the end, in 100 ns units.
    pub time: u64,
}

impl<R> Outcome<R> {
    /// The main thread's value, panicking with every report if the run did not finish cleanly.
    ///
    /// # Panics
    /// If the machine stopped, or if the verifier reported anything.
    #[track_caller]
    pub fn expect_clean(self) -> R {
        if self.stop.is_some() || !self.reports.is_empty() {
            let list: Vec<String> = self.reports.iter().map(|r| r.to_string()).collect();
            panic!("the run was not clean:\n{}", list.join("\n"));
        }
        self.value.expect("a clean run has a value")
    }

    /// Reports of one rule.
    pub fn reports_of(&self, rule: Rule) -> Vec<&Report> {
        self.reports.iter().filter(|r| r.rule == rule).collect()
    }
}

impl Kernel {
    /// A machine with `config`.
    pub fn new(config: Config) -> Kernel {
        assert!(config.cpus >= 1, "a machine needs at least one CPU");
        let world = World {
            sched: Sched::new(config.policy.clone()),
            clock: Clock::new(config.time),
            cpus: (0..config.cpus).map(|_| Cpu::default()).collect(),
            verifier: Verifier::new(config.verifier),
            halted: None,
            main_done: false,
            panic: None,
            shut_down: false,
            waits: Default::default(),
            spin: Default::default(),
            timers: Default::default(),
            dpcs: Default::default(),
            pool: Default::default(),
            objects: Default::default(),
            breakpoints: Default::default(),
            threads: Default::default(),
            irps: Default::default(),
            drivers: Default::default(),
            csq: Default::default(),
            startio: Default::default(),
            iomgr: Default::default(),
            images: Default::default(),
        };
        Kernel {
            m: Arc::new(Machine {
                world: Mutex::new(world),
                baton: Condvar::new(),
                config,
            }),
        }
    }

    /// Runs `main` as the machine's first system thread (at PASSIVE_LEVEL on CPU 0) and returns
    /// when it returns, or when the machine stops. Threads it started and never stopped stay
    /// parked; the verifier reports them where a rule covers them (e.g. unload, C25).
    ///
    /// # Panics
    /// Re-raises a panic of any emulated thread (a failed assertion inside the machine).
    pub fn run<R, F>(&self, main: F) -> Outcome<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let slot: Arc<Mutex<Option<R>>> = Arc::new(Mutex::new(None));
        {
            let mut g = sync::lock(&self.m.world);
            assert!(
                g.sched.actors.is_empty(),
                "Kernel::run may be called once per machine"
            );
            for cpu in 0..self.m.config.cpus {
                let m = self.m.clone();
                Cx::spawn_actor(
                    &self.m,
                    &mut g,
                    format!("cpu{cpu}-interrupt"),
                    ActorKind::Interrupt { cpu },
                    cpu,
                    Box::new(move || crate::cpu::interrupt_loop(m, cpu)),
                );
            }
            let out = slot.clone();
            let main_id = Cx::spawn_actor(
                &self.m,
                &mut g,
                "main".to_string(),
                ActorKind::SystemThread,
                0,
                Box::new(move || {
                    let value = main();
                    *sync::lock(&out) = Some(value);
                    let cx = Cx::get();
                    cx.lock().main_done = true;
                }),
            );
            crate::thread::register_main(&mut g, main_id);
            g.sched.running = Some(main_id);
            self.m.baton.notify_all();
        }
        let mut g = sync::lock(&self.m.world);
        loop {
            if g.halted.is_some() || g.main_done || g.panic.is_some() {
                break;
            }
            g = sync::wait(&self.m.baton, g);
        }
        if let Some(p) = g.panic.clone() {
            drop(g);
            panic!("{p}");
        }
        // Nothing runs after the end of the run.
        if g.halted.is_none() && g.main_done {
            g.sched.running = None;
        }
        let outcome = Outcome {
            value: sync::lock(&slot).take(),
            stop: g.halted.clone(),
            reports: g.verifier.reports().to_vec(),
            time: g.clock.now(),
        };
        // Park every remaining actor for good.
        g.halted
            .get_or_insert_with(|| Report::end_of_run(outcome.time));
        g.shut_down = true;
        self.m.baton.notify_all();
        outcome
    }
}
