//! System threads and thread objects (spec A.16).
//!
//! A thread object is an ETHREAD-shaped dispatcher object (signalled when the thread ends) that
//! ntsim allocates; the thread itself is an actor. `PsCreateSystemThread` gives a kernel handle,
//! which drivers turn into a referenced PETHREAD and wait on at unload.

use std::collections::HashMap;

use crate::machine::{Cx, World};
use crate::ntdef::{
    ACCESS_MASK, ETHREAD, HANDLE, NTSTATUS, PASSIVE_LEVEL, PKSTART_ROUTINE, PVOID,
    STATUS_INVALID_PARAMETER, STATUS_SUCCESS, ThreadObject,
};
use crate::object::{ObjectKind, SYSTEM_PROCESS};
use crate::sched::{ActorId, ActorKind, Status};
use crate::verifier::Rule;

#[derive(Debug, Clone, Copy)]
pub(crate) struct ThreadInfo {
    pub(crate) object: usize,
    pub(crate) process: u32,
}

/// Thread bookkeeping: actor ↔ thread object, and the process of each thread.
#[derive(Debug, Default)]
pub(crate) struct ThreadTable {
    by_actor: HashMap<ActorId, ThreadInfo>,
    /// Threads created so far (the main thread included): names and CPU placement.
    created: usize,
}

impl ThreadTable {
    /// The process of a thread actor (interrupt actors run in the System process's context
    /// as far as handles are concerned).
    pub(crate) fn process_of(&self, actor: ActorId) -> u32 {
        self.by_actor
            .get(&actor)
            .map(|t| t.process)
            .unwrap_or(SYSTEM_PROCESS)
    }

    pub(crate) fn object_of(&self, actor: ActorId) -> Option<usize> {
        self.by_actor.get(&actor).map(|t| t.object)
    }

    /// Threads still alive (for unload and leak checks).
    #[allow(dead_code, reason = "the unload checks (rule C25) use it")]
    pub(crate) fn actors(&self) -> impl Iterator<Item = (&ActorId, &ThreadInfo)> {
        self.by_actor.iter()
    }
}

impl World {
    /// Creates the thread object for `actor` in `process`: one reference held by the running
    /// thread itself (dropped when it ends).
    fn create_thread_object(&mut self, actor: ActorId, process: u32) -> usize {
        let name = self.who(actor);
        let obj = self.create_object(ObjectKind::Thread, size_of::<ETHREAD>(), Some(name));
        // SAFETY: `obj` is fresh zeroed storage of ETHREAD size, which begins with its header.
        unsafe { crate::object::init_header(obj as *mut _, ThreadObject, size_of::<ETHREAD>(), 0) };
        self.threads.by_actor.insert(
            actor,
            ThreadInfo {
                object: obj,
                process,
            },
        );
        self.sched.actor_mut(actor).thread_object = obj;
        obj
    }
}

/// Registers the machine's main thread.
pub(crate) fn register_main(g: &mut World, main: ActorId) {
    g.threads.created += 1;
    g.create_thread_object(main, SYSTEM_PROCESS);
}

/// Starts a thread running `body` in `process`; returns its actor and thread object. The
/// thread object gets one reference for the running thread.
///
/// Threads are dealt round-robin over the CPUs (the main thread has CPU 0), so that two
/// threads can be at DISPATCH_LEVEL at once and contend for a spin lock, and a thread's timers
/// and DPCs run on its own CPU: spec A.1.1's "different CPUs run truly concurrently". (With
/// every thread on its creator's CPU, a spin-lock holder would keep all others off the CPU and
/// no lock would ever be contended.)
pub(crate) fn spawn_thread(
    g: &mut World,
    m: &crate::sync::Arc<crate::machine::Machine>,
    name: String,
    process: u32,
    body: Box<dyn FnOnce() + Send>,
) -> (ActorId, usize) {
    let cpu = g.threads.created % g.cpus.len();
    spawn_thread_on(g, m, name, process, cpu, body)
}

/// [`spawn_thread`] on a chosen CPU.
pub(crate) fn spawn_thread_on(
    g: &mut World,
    m: &crate::sync::Arc<crate::machine::Machine>,
    name: String,
    process: u32,
    cpu: usize,
    body: Box<dyn FnOnce() + Send>,
) -> (ActorId, usize) {
    assert!(
        cpu < g.cpus.len(),
        "CPU {cpu} does not exist on this machine"
    );
    g.threads.created += 1;
    let kind = if process == SYSTEM_PROCESS {
        ActorKind::SystemThread
    } else {
        ActorKind::UserThread { process }
    };
    let id = Cx::spawn_actor(
        m,
        g,
        name,
        kind,
        cpu,
        Box::new(move || {
            body();
            end_current_thread();
        }),
    );
    let obj = g.create_thread_object(id, process);
    crate::iomgr::owner::thread_created(g, id, obj);
    (id, obj)
}

/// The running thread ends: its object is signalled and loses the running thread's reference.
pub(crate) fn end_current_thread() {
    let cx = Cx::get();
    let mut g = cx.lock();
    let Some(info) = g.threads.by_actor.remove(&cx.me) else {
        return;
    };
    let depth = g.sched.actor(cx.me).apc_disable;
    if depth != 0 {
        let who = g.who(cx.me);
        g.report(
            Rule::CriticalRegion,
            format!("thread ends inside {depth} critical region(s)"),
            vec![who],
        );
    }
    crate::wait::set_signal_state(info.object, 1);
    g.signal_object(info.object);
    let who = g.who(cx.me);
    g.dereference(info.object, who);
}

/// Creates a system thread running `start(context)` at PASSIVE_LEVEL and returns a kernel
/// handle to it in `*handle`.
///
/// IRQL: PASSIVE_LEVEL (rule C19). Returns STATUS_SUCCESS.
///
/// # Safety
/// `handle` must be valid for a write; `start` must be safe to call with `context` on another
/// thread.
#[allow(non_snake_case)]
pub unsafe fn PsCreateSystemThread(
    handle: *mut HANDLE,
    access: ACCESS_MASK,
    _object_attributes: PVOID,
    _process: HANDLE,
    _client_id: PVOID,
    start: PKSTART_ROUTINE,
    context: PVOID,
) -> NTSTATUS {
    let cx = Cx::get();
    if !cx.check_irql_at_most("PsCreateSystemThread", PASSIVE_LEVEL) {
        return STATUS_INVALID_PARAMETER;
    }
    let Some(start) = start else {
        return STATUS_INVALID_PARAMETER;
    };
    let context = context as usize;
    let h = {
        let mut g = cx.lock();
        let n = g.threads.created;
        let (_, obj) = spawn_thread(
            &mut g,
            &cx.m,
            format!("system-thread-{n}"),
            SYSTEM_PROCESS,
            Box::new(move || {
                // SAFETY: the creator guarantees `start` may be called with `context` here.
                unsafe { crate::abi::call_thread_start_fn(start, context as PVOID) };
            }),
        );
        g.reference(obj);
        g.insert_handle(SYSTEM_PROCESS, obj, access)
    };
    // SAFETY: the caller guarantees `handle` is writable.
    unsafe { handle.write(h) };
    cx.switch_point();
    STATUS_SUCCESS
}

/// Ends the calling system thread; does not return. From a non-system thread it returns
/// STATUS_INVALID_PARAMETER (rule C23).
///
/// IRQL: PASSIVE_LEVEL.
#[allow(non_snake_case)]
pub fn PsTerminateSystemThread(_status: NTSTATUS) -> NTSTATUS {
    let cx = Cx::get();
    {
        let mut g = cx.lock();
        if g.sched.actor(cx.me).kind != ActorKind::SystemThread {
            let who = g.who(cx.me);
            g.report(
                Rule::TerminateNonSystem,
                "PsTerminateSystemThread called by a thread that is not a system thread".into(),
                vec![who],
            );
            return STATUS_INVALID_PARAMETER;
        }
    }
    end_current_thread();
    cx.exit_actor();
    // The actor is finished: the baton never comes back, so this parks the OS thread for good.
    drop(cx.await_baton(cx.lock()));
    unreachable!("a terminated thread never runs again")
}

/// The current thread's object.
///
/// IRQL: any.
#[allow(non_snake_case)]
pub fn PsGetCurrentThread() -> *mut ETHREAD {
    let cx = Cx::get();
    cx.lock().threads.object_of(cx.me).unwrap_or(0) as *mut ETHREAD
}

/// `KeGetCurrentThread`.
///
/// IRQL: any.
#[allow(non_snake_case)]
pub fn KeGetCurrentThread() -> *mut ETHREAD {
    PsGetCurrentThread()
}

/// Disables normal kernel APCs for the current thread (balanced by [`KeLeaveCriticalRegion`]).
///
/// IRQL: <= APC_LEVEL.
#[allow(non_snake_case)]
pub fn KeEnterCriticalRegion() {
    let cx = Cx::get();
    cx.check_irql_at_most("KeEnterCriticalRegion", crate::ntdef::APC_LEVEL);
    cx.lock().sched.actor_mut(cx.me).apc_disable += 1;
}

/// Re-enables normal kernel APCs (rule C22 if unbalanced).
///
/// IRQL: <= APC_LEVEL.
#[allow(non_snake_case)]
pub fn KeLeaveCriticalRegion() {
    let cx = Cx::get();
    cx.check_irql_at_most("KeLeaveCriticalRegion", crate::ntdef::APC_LEVEL);
    let mut g = cx.lock();
    let a = g.sched.actor_mut(cx.me);
    a.apc_disable -= 1;
    if a.apc_disable < 0 {
        a.apc_disable = 0;
        let who = g.who(cx.me);
        g.report(
            Rule::CriticalRegion,
            "KeLeaveCriticalRegion without KeEnterCriticalRegion".into(),
            vec![who],
        );
    }
}

/// A thread running a Rust closure: the convenient form of [`PsCreateSystemThread`] for tests
/// and host-side glue. Usually a system thread; [`SystemThread::spawn_user`] makes a thread of a
/// user process instead. Holds a reference to the thread object until dropped.
#[derive(Debug)]
pub struct SystemThread {
    object: usize,
    actor: ActorId,
}

impl SystemThread {
    /// Starts `body` on a new system thread named `name`, on the next CPU in round-robin order.
    /// Call from an emulated thread.
    pub fn spawn<F: FnOnce() + Send + 'static>(name: &str, body: F) -> SystemThread {
        Self::start(name, SYSTEM_PROCESS, None, Box::new(body))
    }

    /// Starts `body` on a new system thread on CPU `cpu` (spec A.18: "choose the CPU a thread
    /// runs on").
    ///
    /// # Panics
    /// If the machine has no CPU `cpu`.
    pub fn spawn_on<F: FnOnce() + Send + 'static>(cpu: usize, name: &str, body: F) -> SystemThread {
        Self::start(name, SYSTEM_PROCESS, Some(cpu), Box::new(body))
    }

    /// Starts `body` as a thread of the user-mode process `process` (not the System process,
    /// id 0), as it runs while inside a system call: a thread for which system-thread-only
    /// routines fail (rule C23) and whose handles are the process's.
    ///
    /// # Panics
    /// If `process` is the System process.
    pub fn spawn_user<F: FnOnce() + Send + 'static>(
        process: u32,
        name: &str,
        body: F,
    ) -> SystemThread {
        assert_ne!(
            process, SYSTEM_PROCESS,
            "a user thread belongs to a user process"
        );
        Self::start(name, process, None, Box::new(body))
    }

    fn start(
        name: &str,
        process: u32,
        cpu: Option<usize>,
        body: Box<dyn FnOnce() + Send>,
    ) -> SystemThread {
        let cx = Cx::get();
        let mut g = cx.lock();
        let (actor, object) = match cpu {
            Some(cpu) => spawn_thread_on(&mut g, &cx.m, name.to_string(), process, cpu, body),
            None => spawn_thread(&mut g, &cx.m, name.to_string(), process, body),
        };
        g.reference(object); // this handle's reference
        SystemThread { object, actor }
    }

    /// The thread's actor id.
    pub fn actor(&self) -> ActorId {
        self.actor
    }

    /// The thread object (a dispatcher object, signalled when the thread ends).
    pub fn object(&self) -> PVOID {
        self.object as PVOID
    }

    /// Waits until the thread has ended.
    ///
    /// IRQL: <= APC_LEVEL.
    pub fn join(self) {
        crate::wait::wait_objects("SystemThread::join", vec![self.object], false, None);
        // `self` drops here and releases the reference.
    }

    /// Whether the thread has ended.
    pub fn is_finished(&self) -> bool {
        crate::wait::signal_state(self.object) != 0
    }
}

impl Drop for SystemThread {
    fn drop(&mut self) {
        if let Some(cx) = Cx::try_get() {
            let mut g = cx.lock();
            let who = g.who(cx.me);
            g.dereference(self.object, who);
        }
    }
}

/// The status of an actor, for tests that check where a thread is.
pub fn actor_status(actor: ActorId) -> Status {
    Cx::get().lock().sched.actor(actor).status.clone()
}
