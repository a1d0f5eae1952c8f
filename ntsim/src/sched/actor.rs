//! Actors: the things the scheduler runs, one OS thread each.
//!
//! An actor is an emulated thread (a system thread, or a user-mode client thread while it is in
//! the kernel) or the interrupt context of one emulated CPU (which runs expired timers and the
//! CPU's DPC queue). Exactly one actor holds the baton at a time, so ntsim's own state is only
//! ever touched by one of them; concurrency between emulated CPUs is modelled by the scheduler
//! switching actors at the points where the real kernel could interleave them.

use crate::ntdef::{DISPATCH_LEVEL, KIRQL, NTSTATUS};

/// Identifies an actor of one machine. Stable for the machine's life, never reused.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActorId(pub(crate) u32);

impl ActorId {
    /// The raw number, as shown in reports.
    pub fn index(self) -> u32 {
        self.0
    }
}

/// What an actor stands for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ActorKind {
    /// A thread of the System process (PsCreateSystemThread, or the machine's main thread).
    SystemThread,
    /// A thread of a user-mode process, here only while it is inside a system call.
    UserThread {
        /// The process it belongs to.
        process: u32,
    },
    /// The interrupt/DPC context of one CPU: timer expiry and the CPU's DPC queue run here.
    Interrupt {
        /// The CPU it belongs to.
        cpu: usize,
    },
}

/// Why an actor cannot run now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Can run when chosen (the running actor is also `Ready`).
    Ready,
    /// Waiting on dispatcher objects or a delay; woken by a signal or a timeout.
    Waiting,
    /// Busy-waiting for a spin lock at DISPATCH_LEVEL (it still occupies its CPU).
    Spinning {
        /// Address of the lock word.
        lock: usize,
    },
    /// An interrupt actor with no work.
    Idle,
    /// Stopped at a breakpoint until the test resumes it.
    Parked {
        /// The breakpoint's number.
        breakpoint: u32,
    },
    /// Returned from its start routine (or terminated); never runs again.
    Finished,
}

/// One actor's scheduling state.
#[derive(Debug)]
pub(crate) struct Actor {
    pub(crate) id: ActorId,
    pub(crate) name: String,
    pub(crate) kind: ActorKind,
    pub(crate) status: Status,
    pub(crate) cpu: usize,
    pub(crate) irql: KIRQL,
    /// Stamp of the moment it last became ready: the FIFO policy runs the oldest first.
    pub(crate) ready_seq: u64,
    /// The status a waiter is woken with (STATUS_WAIT_0 + i, STATUS_TIMEOUT, ...).
    pub(crate) wake_status: Option<NTSTATUS>,
    /// Spin locks held, innermost last: (lock address, IRQL to restore on release).
    pub(crate) held_locks: Vec<(usize, KIRQL)>,
    /// Set by KeSetEvent/KeReleaseSemaphore(Wait = TRUE): the routine that set it and the IRQL
    /// the next wait returns to. The next kernel call must be a wait (rule C20).
    pub(crate) wait_next: Option<(&'static str, KIRQL)>,
    /// Address of the thread object (ETHREAD) for thread actors, 0 for interrupt actors.
    pub(crate) thread_object: usize,
    /// Normal kernel APC disable count (KeEnterCriticalRegion).
    pub(crate) apc_disable: i32,
}

impl Actor {
    pub(crate) fn is_interrupt(&self) -> bool {
        matches!(self.kind, ActorKind::Interrupt { .. })
    }

    /// Whether this actor keeps its CPU to itself (raised IRQL: no other thread and no DPC may
    /// run on the CPU until it lowers).
    pub(crate) fn owns_cpu(&self) -> bool {
        !matches!(
            self.status,
            Status::Finished | Status::Waiting | Status::Idle
        ) && self.irql >= DISPATCH_LEVEL
    }
}
