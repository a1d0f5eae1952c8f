//! The scheduler: one baton, many actors.
//!
//! Every emulated thread and every CPU's interrupt context is an OS thread (an `Actor`), but
//! only the holder of the baton runs. The holder gives the baton away at *switch points*: every
//! kernel routine that could interleave with another CPU on Windows (spin-lock acquire attempts,
//! cancel-routine exchanges, lowering IRQL, waits, DPC queueing, …). Which actor gets it is the
//! [`Policy`]'s choice, so a run is a deterministic function of the policy and its seed, and a
//! race can be forced (breakpoints) or explored (random and PCT policies).
//!
//! CPU rules (spec A.1): an actor at DISPATCH_LEVEL or above owns its CPU: no other thread and
//! no DPC runs there until it lowers. A thread below DISPATCH is preempted by its CPU's pending
//! DPCs. Interrupt actors run timer expiry and DPCs at DISPATCH_LEVEL.

pub mod actor;
pub mod policy;

use crate::machine::{Cx, World};
use crate::ntdef::{DISPATCH_LEVEL, KIRQL, NTSTATUS, PASSIVE_LEVEL};
use crate::sync::MutexGuard;
pub(crate) use actor::Actor;
pub use actor::{ActorId, ActorKind, Status};
pub use policy::Policy;
use policy::{Candidate, Chooser};

/// Scheduling state of a machine.
#[derive(Debug)]
pub(crate) struct Sched {
    pub(crate) actors: Vec<Actor>,
    /// The baton holder.
    pub(crate) running: Option<ActorId>,
    pub(crate) chooser: Chooser,
    ready_counter: u64,
    /// Number of switch points passed (for reports and PCT).
    pub(crate) switches: u64,
}

impl Sched {
    pub(crate) fn new(policy: Policy) -> Self {
        Sched {
            actors: Vec::new(),
            running: None,
            chooser: Chooser::new(policy),
            ready_counter: 0,
            switches: 0,
        }
    }

    pub(crate) fn actor(&self, id: ActorId) -> &Actor {
        &self.actors[id.0 as usize]
    }

    pub(crate) fn actor_mut(&mut self, id: ActorId) -> &mut Actor {
        &mut self.actors[id.0 as usize]
    }

    /// Adds an actor (not yet ready unless `status` says so).
    pub(crate) fn add(
        &mut self,
        name: String,
        kind: ActorKind,
        cpu: usize,
        status: Status,
    ) -> ActorId {
        let id = ActorId(self.actors.len() as u32);
        self.ready_counter += 1;
        self.actors.push(Actor {
            id,
            name,
            kind,
            status,
            cpu,
            irql: if matches!(kind, ActorKind::Interrupt { .. }) {
                DISPATCH_LEVEL
            } else {
                PASSIVE_LEVEL
            },
            ready_seq: self.ready_counter,
            wake_status: None,
            held_locks: Vec::new(),
            wait_next: None,
            thread_object: 0,
            apc_disable: 0,
        });
        self.chooser.on_spawn(id);
        id
    }

    /// Makes `id` ready (from waiting, spinning, idle or parked).
    pub(crate) fn make_ready(&mut self, id: ActorId) {
        self.ready_counter += 1;
        let seq = self.ready_counter;
        let a = self.actor_mut(id);
        if a.status != Status::Ready {
            a.status = Status::Ready;
            a.ready_seq = seq;
        }
    }

    /// The actor that owns `cpu` (runs on it at DISPATCH_LEVEL or above), if any.
    pub(crate) fn cpu_owner(&self, cpu: usize) -> Option<ActorId> {
        // A thread at DISPATCH_LEVEL or above comes first: the interrupt actor is also "ready
        // at DISPATCH_LEVEL" as soon as a DPC is queued, but its DPCs cannot start until the
        // thread lowers (spec A.1.1). The two never both hold the CPU: a thread cannot run
        // (and so cannot raise) while the interrupt actor is in a DPC on its CPU.
        let on_cpu = || self.actors.iter().filter(|a| a.cpu == cpu && a.owns_cpu());
        on_cpu()
            .find(|a| !a.is_interrupt())
            .or_else(|| on_cpu().next())
            .map(|a| a.id)
    }

    /// The interrupt actor of `cpu`.
    pub(crate) fn interrupt_actor(&self, cpu: usize) -> ActorId {
        self.actors
            .iter()
            .find(|a| a.kind == ActorKind::Interrupt { cpu })
            .map(|a| a.id)
            .expect("every CPU has an interrupt actor")
    }

    pub(crate) fn name(&self, id: ActorId) -> &str {
        &self.actor(id).name
    }
}

impl World {
    /// Whether `a` may take the baton now.
    fn eligible(&self, a: &Actor) -> bool {
        if a.status != Status::Ready {
            return false;
        }
        let owner = self.sched.cpu_owner(a.cpu);
        if owner.is_some_and(|o| o != a.id) {
            return false;
        }
        if a.is_interrupt() || a.irql >= DISPATCH_LEVEL {
            return true;
        }
        // A thread below DISPATCH_LEVEL is preempted by its CPU's pending DPC work.
        !self.cpu_has_interrupt_work(a.cpu)
    }

    fn eligible_actors(&self) -> Vec<Candidate> {
        self.sched
            .actors
            .iter()
            .filter(|a| self.eligible(a))
            .map(|a| Candidate {
                id: a.id,
                interrupt: a.is_interrupt(),
                ready_seq: a.ready_seq,
            })
            .collect()
    }

    /// Chooses the next baton holder, advancing the clock when nothing can run. Returns `None`
    /// when the machine has halted (a fatal verifier stop, or nothing can ever run again).
    pub(crate) fn choose_next(&mut self, current: ActorId) -> Option<ActorId> {
        loop {
            if self.halted.is_some() || self.main_done {
                return None;
            }
            self.fire_due_deadlines();
            let any_deadline = self.clock.next_deadline().is_some();
            if any_deadline && self.sched.chooser.fire_timer_early() {
                self.advance_to_next_deadline(true);
                continue;
            }
            let eligible = self.eligible_actors();
            if !eligible.is_empty() {
                let cur = eligible.iter().any(|a| a.id == current).then_some(current);
                let next = self.sched.chooser.choose(&eligible, cur);
                self.sched.switches += 1;
                return Some(next);
            }
            if !self.advance_to_next_deadline(false) {
                self.stall();
                return None;
            }
        }
    }

    /// Nothing can run and nothing is scheduled: every thread waits forever.
    fn stall(&mut self) {
        let waiting: Vec<String> = self
            .sched
            .actors
            .iter()
            .filter(|a| !a.is_interrupt() && a.status != Status::Finished)
            .map(|a| format!("{} ({:?} at IRQL {})", a.name, a.status, a.irql))
            .collect();
        self.report(
            crate::verifier::Rule::Deadlock,
            "no thread can run and no timer or timeout is pending: the machine is deadlocked"
                .to_string(),
            waiting,
        );
    }
}

impl Cx {
    /// A switch point: the scheduler may hand the baton to another actor here.
    pub(crate) fn switch_point(&self) {
        let g = self.lock();
        drop(self.reschedule(g));
    }

    /// Call after a report: if it was fatal, the machine has halted and this never returns (the
    /// actor parks like every other, as the CPU stops at a bugcheck: no driver code runs after
    /// it); otherwise gives the guard back.
    pub(crate) fn stop_if_halted<'a>(&'a self, g: MutexGuard<'a, World>) -> MutexGuard<'a, World> {
        if g.halted.is_some() {
            return self.reschedule(g);
        }
        g
    }

    /// Gives up the baton if the policy says so, and waits until it comes back. `self`'s status
    /// must already say whether it can run (Ready) or why not.
    pub(crate) fn reschedule<'a>(&'a self, mut g: MutexGuard<'a, World>) -> MutexGuard<'a, World> {
        let me = self.me;
        if let Some((routine, irql)) = g.sched.actor_mut(me).wait_next.take() {
            // Rule C20: only a wait may follow Wait = TRUE (waits take the flag before here).
            g.sched.actor_mut(me).irql = irql;
            let who = g.who(me);
            g.report(
                crate::verifier::Rule::WaitNext,
                format!("{routine}(Wait = TRUE) was not immediately followed by a wait"),
                vec![who],
            );
        }
        crate::cancel::check_cancel_watch(&mut g, me);
        match g.choose_next(me) {
            Some(next) if next == me => return g,
            Some(next) => {
                g.sched.running = Some(next);
                self.m.baton.notify_all();
            }
            None => {
                g.sched.running = None;
                self.m.baton.notify_all();
            }
        }
        self.await_baton(g)
    }

    /// Blocks the OS thread until this actor holds the baton again. Never returns once the
    /// machine has halted: the actor stays parked (drivers cannot be unwound under
    /// `panic = "abort"`, so a stopped machine simply never runs them again).
    pub(crate) fn await_baton<'a>(&'a self, mut g: MutexGuard<'a, World>) -> MutexGuard<'a, World> {
        loop {
            if g.sched.running == Some(self.me) && g.halted.is_none() {
                return g;
            }
            g = crate::sync::wait(&self.m.baton, g);
        }
    }

    /// An interrupt actor with no work waits for some. Returns `None` when the run is over, so
    /// that its OS thread can end instead of staying parked.
    pub(crate) fn idle<'a>(
        &'a self,
        mut g: MutexGuard<'a, World>,
    ) -> Option<MutexGuard<'a, World>> {
        g.sched.actor_mut(self.me).status = Status::Idle;
        let next = g.choose_next(self.me);
        if next == Some(self.me) {
            return Some(g);
        }
        g.sched.running = next;
        self.m.baton.notify_all();
        loop {
            if g.shut_down {
                return None;
            }
            if g.sched.running == Some(self.me) && g.halted.is_none() {
                return Some(g);
            }
            g = crate::sync::wait(&self.m.baton, g);
        }
    }

    /// Leaves the machine for good: marks the actor finished and passes the baton on.
    pub(crate) fn exit_actor(&self) {
        let mut g = self.lock();
        g.sched.actor_mut(self.me).status = Status::Finished;
        let next = g.choose_next(self.me);
        g.sched.running = next;
        self.m.baton.notify_all();
    }

    /// Blocks the current actor with `status` until someone makes it ready, then returns the
    /// wake status it was given.
    pub(crate) fn block<'a>(
        &'a self,
        mut g: MutexGuard<'a, World>,
        status: Status,
    ) -> (MutexGuard<'a, World>, Option<NTSTATUS>) {
        g.sched.actor_mut(self.me).status = status;
        let mut g = self.reschedule(g);
        let wake = g.sched.actor_mut(self.me).wake_status.take();
        (g, wake)
    }

    /// The IRQL of the current actor.
    pub(crate) fn irql(&self) -> KIRQL {
        self.lock().sched.actor(self.me).irql
    }
}
