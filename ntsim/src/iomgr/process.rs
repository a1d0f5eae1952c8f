//! Processes and their threads (spec A.8): a process is a handle table (object.rs) and a
//! process object signalled when it exits; its threads are actors in `UserMode` whose system
//! calls run the kernel side in the thread itself. Thread exit runs IoCancelThreadIo; the exit
//! of a process's last thread, once the process is terminating, closes its handles.

use crate::machine::{Cx, World};
use crate::ntdef::{
    EPROCESS, KEVENT, KPROCESSOR_MODE, KernelMode, LIST_ENTRY, NotificationEvent, PVOID,
    ProcessObject, UserMode,
};
use crate::object::ObjectKind;
use crate::sched::{ActorId, ActorKind};

use super::raw::{Raw, new_event};

/// ntsim's knowledge of one process.
#[derive(Debug)]
pub(crate) struct ProcessInfo {
    /// For reports.
    #[allow(dead_code)]
    pub(crate) name: String,
    /// The EPROCESS-shaped dispatcher object (signalled at exit). Kept for the machine's life.
    pub(crate) object: usize,
    pub(crate) terminating: bool,
    pub(crate) exited: bool,
}

/// I/O state of a thread that issued requests (spec A.8: the thread's IRP list).
#[derive(Debug)]
pub(crate) struct ThreadIo {
    pub(crate) process: u32,
    /// A thread of a user process (requestor mode UserMode; it can be terminated).
    pub(crate) user: bool,
    /// IRPs issued by the thread and not completed, oldest first.
    pub(crate) irps: Vec<usize>,
    /// The real list head the IRPs' `ThreadListEntry` are linked into.
    list_head: Raw<LIST_ENTRY>,
    /// Signalled when the thread is asked to terminate: every user-mode wait includes it.
    pub(crate) terminate: Raw<KEVENT>,
    pub(crate) terminating: bool,
    /// The thread has run its exit path.
    pub(crate) exited: bool,
}

impl ThreadIo {
    fn new(process: u32, user: bool) -> ThreadIo {
        let head = Raw::<LIST_ENTRY>::zeroed();
        // SAFETY: fresh storage; an empty list points to itself.
        unsafe { init_list(head.ptr()) };
        ThreadIo {
            process,
            user,
            irps: Vec::new(),
            list_head: head,
            terminate: new_event(NotificationEvent, false),
            terminating: false,
            exited: false,
        }
    }
}

/// # Safety
/// `head` must be valid for writes.
unsafe fn init_list(head: *mut LIST_ENTRY) {
    // SAFETY: the caller guarantees `head` is writable.
    let h = unsafe { &mut *head };
    h.Flink = head;
    h.Blink = head;
}

/// # Safety
/// `head` is a list head and `entry` an unlinked entry, both valid.
unsafe fn insert_tail(head: *mut LIST_ENTRY, entry: *mut LIST_ENTRY) {
    // SAFETY: the caller guarantees both are valid; the list is well formed.
    let last = unsafe { (*head).Blink };
    // SAFETY: as above.
    let e = unsafe { &mut *entry };
    e.Flink = head;
    e.Blink = last;
    // SAFETY: `last` is an entry of the well-formed list.
    unsafe { (*last).Flink = entry };
    // SAFETY: as above.
    unsafe { (*head).Blink = entry };
}

/// # Safety
/// `entry` must be linked in a well-formed list.
unsafe fn remove_entry(entry: *mut LIST_ENTRY) {
    // SAFETY: the caller guarantees a linked entry.
    let e = unsafe { &mut *entry };
    let (f, b) = (e.Flink, e.Blink);
    // SAFETY: neighbours of a linked entry are valid entries.
    unsafe { (*b).Flink = f };
    // SAFETY: as above.
    unsafe { (*f).Blink = b };
    e.Flink = entry;
    e.Blink = entry;
}

impl World {
    /// The I/O state of `actor`, created on first use (system threads issue I/O too).
    pub(crate) fn thread_io(&mut self, actor: ActorId) -> &mut ThreadIo {
        let process = self.threads.process_of(actor);
        let user = matches!(self.sched.actor(actor).kind, ActorKind::UserThread { .. });
        self.iomgr
            .threads
            .entry(actor)
            .or_insert_with(|| ThreadIo::new(process, user))
    }

    /// The requestor mode of `actor`'s system calls.
    pub(crate) fn requestor_mode(&self, actor: ActorId) -> KPROCESSOR_MODE {
        if matches!(self.sched.actor(actor).kind, ActorKind::UserThread { .. }) {
            UserMode
        } else {
            KernelMode
        }
    }

    /// Queues `irp` to `actor`'s IRP list (IopQueueThreadIrp).
    pub(crate) fn queue_thread_irp(&mut self, actor: ActorId, irp: usize) {
        let t = self.thread_io(actor);
        t.irps.push(irp);
        let head = t.list_head.ptr();
        // SAFETY: `irp` is a live IRP.
        let entry = unsafe { &raw mut (*(irp as *mut crate::ntdef::IRP)).ThreadListEntry };
        // SAFETY: the IRP's ThreadListEntry is unlinked (self-linked); `head` is this thread's.
        unsafe { insert_tail(head, entry) };
    }

    /// Removes `irp` from its thread's IRP list (completion, or disassociation after the
    /// cancel timeout).
    pub(crate) fn dequeue_thread_irp(&mut self, actor: ActorId, irp: usize) {
        if let Some(t) = self.iomgr.threads.get_mut(&actor) {
            if let Some(i) = t.irps.iter().position(|&x| x == irp) {
                t.irps.remove(i);
                // SAFETY: the IRP is live.
                let entry = unsafe { &raw mut (*(irp as *mut crate::ntdef::IRP)).ThreadListEntry };
                // SAFETY: it is linked in this thread's list.
                unsafe { remove_entry(entry) };
            }
        }
    }

    /// Live threads of `pid` that have not run their exit path.
    pub(crate) fn live_threads_of(&self, pid: u32) -> Vec<ActorId> {
        let mut v: Vec<ActorId> = self
            .iomgr
            .threads
            .iter()
            .filter(|(_, t)| t.user && t.process == pid && !t.exited)
            .map(|(&a, _)| a)
            .collect();
        v.sort();
        v
    }
}

/// A user-mode process: a handle table and a process object. `Copy`: it names the process.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Process {
    pid: u32,
}

impl Process {
    /// Creates a process named `name` with an empty handle table. Call from an emulated thread.
    pub fn create(name: &str) -> Process {
        let cx = Cx::get();
        let mut g = cx.lock();
        super::worker::ensure_started(&cx, &mut g);
        g.iomgr.next_pid += 4;
        let pid = 100 + g.iomgr.next_pid;
        let object = g.create_object(
            ObjectKind::Process,
            size_of::<EPROCESS>(),
            Some(name.into()),
        );
        // SAFETY: fresh zeroed storage of EPROCESS size, which begins with its header.
        unsafe {
            crate::object::init_header(object as *mut _, ProcessObject, size_of::<EPROCESS>(), 0)
        };
        g.iomgr.processes.insert(
            pid,
            ProcessInfo {
                name: name.to_string(),
                object,
                terminating: false,
                exited: false,
            },
        );
        Process { pid }
    }

    /// The process id (the key of its handle table).
    pub fn id(self) -> u32 {
        self.pid
    }

    /// The process object (a dispatcher object signalled when the process has exited).
    pub fn object(self) -> PVOID {
        let cx = Cx::get();
        let g = cx.lock();
        g.iomgr.processes[&self.pid].object as PVOID
    }

    /// Starts a thread of this process running `body`. Inside `body`, the functions of
    /// [`crate::iomgr`] are the thread's system calls. When `body` returns, the thread exits:
    /// IoCancelThreadIo cancels its pending requests first (spec A.8).
    ///
    /// # Panics
    /// If the process has exited.
    pub fn spawn_thread<F: FnOnce() + Send + 'static>(self, name: &str, body: F) -> UserThread {
        let cx = Cx::get();
        let (actor, object) = {
            let mut g = cx.lock();
            assert!(
                !g.iomgr.processes[&self.pid].exited,
                "Process::spawn_thread on an exited process"
            );
            let (actor, object) = crate::thread::spawn_thread(
                &mut g,
                &cx.m,
                name.to_string(),
                self.pid,
                Box::new(move || {
                    body();
                    thread_exit(&Cx::get());
                }),
            );
            g.reference(object); // the UserThread's reference
            g.iomgr.threads.insert(actor, ThreadIo::new(self.pid, true));
            (actor, object)
        };
        cx.switch_point();
        UserThread { actor, object }
    }

    /// TerminateProcess: every thread of the process is asked to terminate (a thread in a
    /// user-mode wait leaves it at once; one inside the kernel at its next wait or system-call
    /// exit); each runs IoCancelThreadIo; when the last one has exited, the process's handles
    /// are closed (IRP_MJ_CLEANUP/CLOSE) and the process object is signalled. With no live
    /// thread, the caller closes the handles itself. Called by a thread of the process, it does
    /// not return.
    pub fn terminate(self) {
        let cx = Cx::get();
        let (threads, me_inside) = {
            let mut g = cx.lock();
            let p = g
                .iomgr
                .processes
                .get_mut(&self.pid)
                .expect("a created process");
            if p.exited {
                return;
            }
            p.terminating = true;
            let threads = g.live_threads_of(self.pid);
            let me_inside = threads.contains(&cx.me);
            (threads, me_inside)
        };
        for &t in &threads {
            request_termination(&cx, t);
        }
        if me_inside {
            terminate_current(&cx);
        }
        if threads.is_empty() {
            process_exit(&cx, self.pid);
        }
    }

    /// Waits until the process has exited.
    pub fn wait(self) {
        let object = self.object() as usize;
        crate::wait::wait_objects("Process::wait", vec![object], false, None);
    }

    /// Whether the process has exited.
    pub fn has_exited(self) -> bool {
        let cx = Cx::get();
        let g = cx.lock();
        g.iomgr.processes[&self.pid].exited
    }

    /// The number of open handles in the process's handle table.
    pub fn handle_count(self) -> usize {
        Cx::get().lock().handles_of(self.pid).len()
    }
}

/// A thread of a user process. Holds a reference to the thread object.
#[derive(Debug)]
pub struct UserThread {
    actor: ActorId,
    object: usize,
}

impl UserThread {
    /// The thread's actor.
    pub fn actor(&self) -> ActorId {
        self.actor
    }

    /// The thread object (signalled when the thread has ended).
    pub fn object(&self) -> PVOID {
        self.object as PVOID
    }

    /// Waits until the thread has ended.
    pub fn join(self) {
        crate::wait::wait_objects("UserThread::join", vec![self.object], false, None);
    }

    /// Whether the thread has ended.
    pub fn is_finished(&self) -> bool {
        crate::wait::signal_state(self.object) != 0
    }

    /// TerminateThread: the thread leaves its user-mode wait (or its system call) and exits,
    /// running IoCancelThreadIo. Returns at once.
    pub fn terminate(&self) {
        let cx = Cx::get();
        if self.actor == cx.me {
            terminate_current(&cx);
        }
        request_termination(&cx, self.actor);
    }
}

impl Drop for UserThread {
    fn drop(&mut self) {
        if let Some(cx) = Cx::try_get() {
            let mut g = cx.lock();
            let who = g.who(cx.me);
            g.dereference(self.object, who);
        }
    }
}

/// Asks `actor` to terminate: its user-mode waits end at once.
fn request_termination(cx: &Cx, actor: ActorId) {
    let event = {
        let mut g = cx.lock();
        let Some(t) = g.iomgr.threads.get_mut(&actor) else {
            return;
        };
        if t.exited || t.terminating {
            return;
        }
        t.terminating = true;
        t.terminate.addr()
    };
    crate::event::set_event(cx, event);
}

/// Whether the running thread has been asked to terminate.
pub(crate) fn termination_requested(cx: &Cx) -> bool {
    cx.lock()
        .iomgr
        .threads
        .get(&cx.me)
        .is_some_and(|t| t.terminating)
}

/// The exit path of a user thread (spec A.8): IoCancelThreadIo, release of the file-object
/// locks it still holds, and, for the last thread of a terminating process, process exit.
pub(crate) fn thread_exit(cx: &Cx) {
    let user = cx.lock().iomgr.threads.get(&cx.me).is_some_and(|t| t.user);
    if !user {
        return;
    }
    super::cancel_io::io_cancel_thread_io(cx);
    super::file::release_locks_of(cx, cx.me);
    let last_of = {
        let mut g = cx.lock();
        let t = g.iomgr.threads.get_mut(&cx.me).expect("a user thread");
        t.exited = true;
        let pid = t.process;
        let terminating = g.iomgr.processes.get(&pid).is_some_and(|p| p.terminating);
        (terminating && g.live_threads_of(pid).is_empty()).then_some(pid)
    };
    if let Some(pid) = last_of {
        process_exit(cx, pid);
    }
}

/// Ends the running user thread from inside a system call: the exit path, then the thread is
/// gone for good (like PsTerminateSystemThread, it never returns to its body).
pub(crate) fn terminate_current(cx: &Cx) -> ! {
    thread_exit(cx);
    crate::thread::end_current_thread();
    cx.exit_actor();
    // The actor is finished: the baton never comes back.
    drop(cx.await_baton(cx.lock()));
    unreachable!("a terminated thread never runs again")
}

/// Process exit: close every handle of the process (on the calling thread), then signal the
/// process object.
pub(crate) fn process_exit(cx: &Cx, pid: u32) {
    let handles = {
        let mut g = cx.lock();
        let p = g.iomgr.processes.get_mut(&pid).expect("a created process");
        if p.exited {
            return;
        }
        p.exited = true;
        g.handles_of(pid)
    };
    for h in handles {
        super::close::close_in(cx, pid, h);
    }
    let object = {
        let mut g = cx.lock();
        super::close::check_process_irps(&mut g, cx.me, pid);
        g.iomgr.processes[&pid].object
    };
    crate::event::set_event(cx, object);
}

/// Sleep(ms) from a user thread (a user-mode wait: termination ends it).
pub fn sleep(ms: u64) {
    let cx = Cx::get();
    let timeout = -((ms * crate::clock::TICKS_PER_MS) as i64);
    if super::wait::user_wait(&cx, Vec::new(), Some(timeout)).is_err() {
        terminate_current(&cx);
    }
}

/// Sleeps until interrupt time `at_ms` milliseconds after boot, and then until the machine has
/// settled there: every timer due at that instant has expired, and the DPCs and threads that
/// woke have run until nothing can run any more. A scenario client (eventctl) acts "at `at_ms`"
/// this way, so that an action and a timer expiry at the same instant always happen in the same
/// order: the expiry first. Returns at once after settling if `at_ms` has passed. A user-mode
/// wait: termination ends it.
pub fn sleep_until_settled(at_ms: u64) {
    let cx = Cx::get();
    let at = at_ms.saturating_mul(crate::clock::TICKS_PER_MS);
    // An absolute due time is system time; an interrupt time in the past fires at once.
    let due = (crate::clock::BOOT_SYSTEM_TIME + at).min(i64::MAX as u64) as i64;
    if super::wait::user_wait_ex(&cx, Vec::new(), Some(due), true).is_err() {
        terminate_current(&cx);
    }
}
