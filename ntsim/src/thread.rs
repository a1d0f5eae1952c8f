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
    g.create_thread_object(main, SYSTEM_PROCESS);
}

/// Starts a thread running `body` in `process`; returns its actor and thread object. The
/// thread object gets one reference for the running thread.
pub(crate) fn spawn_thread(
    g: &mut World,
    m: &crate::sync::Arc<crate::machine::Machine>,
    name: String,
    process: u32,
    body: Box<dyn FnOnce() + Send>,
) -> (ActorId, usize) {
    let cpu = g.sched.running.map(|r| g.sched.actor(r).cpu).unwrap_or(0);
    spawn_thread_on(g, m, name, process, cpu, body)
}

/// [`spawn_thread`] on a given CPU.
pub(crate) fn spawn_thread_on(
    g: &mut World,
    m: &crate::sync::Arc<crate::machine::Machine>,
    name: String,
    process: u32,
    cpu: usize,
    body: Box<dyn FnOnce() + Send>,
) -> (ActorId, usize) {
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
        let n = g.threads.by_actor.len();
        let (_, obj) = spawn_thread(
            &mut g,
            &cx.m,
            format!("system-thread-{n}"),
            SYSTEM_PROCESS,
            Box::new(move || {
                // SAFETY: the creator guarantees `start` may be called with `context` here.
                unsafe { start(context as PVOID) };
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
    cx.lock().sched.actor_mut(cx.me).apc_disable += 1;
}

/// Re-enables normal kernel APCs (rule C22 if unbalanced).
///
/// IRQL: <= APC_LEVEL.
#[allow(non_snake_case)]
pub fn KeLeaveCriticalRegion() {
    let cx = Cx::get();
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

/// A system thread running a Rust closure: the convenient form of [`PsCreateSystemThread`] for
/// tests and host-side glue.
#[derive(Debug)]
pub struct SystemThread {
    object: usize,
    actor: ActorId,
}

impl SystemThread {
    /// Starts `body` on a new system thread named `name`, on CPU `cpu` (a thread parked at
    /// DISPATCH_LEVEL keeps its CPU, so races between threads need them on different CPUs).
    /// Call from an emulated thread.
    ///
    /// # Panics
    /// If the machine has no CPU `cpu`.
    pub fn spawn_on<F: FnOnce() + Send + 'static>(cpu: usize, name: &str, body: F) -> SystemThread {
        let cx = Cx::get();
        let (actor, object) = {
            let mut g = cx.lock();
            assert!(cpu < g.cpus.len(), "the machine has no CPU {cpu}");
            let (actor, object) = spawn_thread_on(
                &mut g,
                &cx.m,
                name.to_string(),
                SYSTEM_PROCESS,
                cpu,
                Box::new(body),
            );
            g.reference(object); // this handle's reference
            (actor, object)
        };
        SystemThread { object, actor }
    }

    /// Starts `body` on a new system thread named `name`. Call from an emulated thread.
    pub fn spawn<F: FnOnce() + Send + 'static>(name: &str, body: F) -> SystemThread {
        let cx = Cx::get();
        let (actor, object) = {
            let mut g = cx.lock();
            let (actor, object) = spawn_thread(
                &mut g,
                &cx.m,
                name.to_string(),
                SYSTEM_PROCESS,
                Box::new(body),
            );
            g.reference(object); // this handle's reference
            (actor, object)
        };
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
