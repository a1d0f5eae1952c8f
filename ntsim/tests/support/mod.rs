//! Helpers shared by ntsim's conformance tests: kernel objects in stable storage that emulated
//! threads pass around by address, a log for DPC routines, and one-line waits.
#![allow(dead_code)]

use std::sync::Mutex;

use ntsim::dpc::KeInitializeDpc;
use ntsim::event::KeInitializeEvent;
use ntsim::ntdef::*;
use ntsim::semaphore::KeInitializeSemaphore;
use ntsim::timer::KeInitializeTimerEx;
use ntsim::{Config, Kernel, Outcome};

/// A raw pointer that closures may carry into emulated threads (the tests keep the pointee alive
/// by leaking it, so it outlives every thread of the machine).
#[derive(Debug)]
pub struct P<T>(*mut T);

impl<T> Clone for P<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for P<T> {}
// SAFETY: the pointee is leaked storage; the tests access it only from the baton holder (or
// after the run), so no two threads touch it at once.
unsafe impl<T> Send for P<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for P<T> {}

impl<T> P<T> {
    /// The raw pointer.
    pub fn get(self) -> *mut T {
        self.0
    }

    /// As an untyped pointer (for waits and DPC contexts).
    pub fn pv(self) -> PVOID {
        self.0.cast()
    }

    /// The address.
    pub fn addr(self) -> usize {
        self.0 as usize
    }
}

/// Moves `v` to leaked heap storage: it never moves and never dies.
pub fn leak<T>(v: T) -> P<T> {
    P(Box::leak(Box::new(v)))
}

/// Runs `f` on the default machine (2 CPUs, virtual time, FIFO).
pub fn run<R, F>(f: F) -> Outcome<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    Kernel::new(Config::default()).run(f)
}

/// An initialized event.
pub fn event(ty: EVENT_TYPE, signalled: bool) -> P<KEVENT> {
    let e = leak(KEVENT::zeroed());
    // SAFETY: fresh, writable storage.
    unsafe { KeInitializeEvent(e.get(), ty, u8::from(signalled)) };
    e
}

/// An initialized timer.
pub fn timer(ty: TIMER_TYPE) -> P<KTIMER> {
    let t = leak(KTIMER::zeroed());
    // SAFETY: fresh, writable storage.
    unsafe { KeInitializeTimerEx(t.get(), ty) };
    t
}

/// An initialized semaphore.
pub fn semaphore(count: i32, limit: i32) -> P<KSEMAPHORE> {
    let s = leak(KSEMAPHORE::zeroed());
    // SAFETY: fresh, writable storage.
    unsafe { KeInitializeSemaphore(s.get(), count, limit) };
    s
}

/// A free spin lock.
pub fn spin_lock() -> P<KSPIN_LOCK> {
    leak(0)
}

/// What a DPC routine saw, one entry per call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpcCall {
    pub dpc: usize,
    pub irql: KIRQL,
    pub a1: usize,
    pub a2: usize,
    /// `DpcData` while the routine ran (NULL: already unlinked from the queue).
    pub queued_while_running: bool,
    /// Interrupt time of the call.
    pub time: u64,
}

/// A log that [`log_dpc`] appends to; pass it as the DPC's context.
#[derive(Debug, Default)]
pub struct Log {
    pub calls: Mutex<Vec<DpcCall>>,
}

impl Log {
    pub fn new() -> P<Log> {
        leak(Log::default())
    }
}

/// Reads the calls of a log.
pub fn calls(log: P<Log>) -> Vec<DpcCall> {
    // SAFETY: the log is leaked storage.
    unsafe { (*log.get()).calls.lock().unwrap().clone() }
}

/// A DPC routine that records its call in the `Log` given as context.
///
/// # Safety
/// `ctx` must be a leaked [`Log`].
pub unsafe extern "system" fn log_dpc(d: *mut KDPC, ctx: PVOID, a1: PVOID, a2: PVOID) {
    let log = ctx as *const Log;
    // SAFETY: `d` is the running DPC.
    let queued = unsafe { !(*d).DpcData.is_null() };
    let call = DpcCall {
        dpc: d as usize,
        irql: ntsim::irql::KeGetCurrentIrql(),
        a1: a1 as usize,
        a2: a2 as usize,
        queued_while_running: queued,
        time: ntsim::clock::KeQueryInterruptTime(),
    };
    // SAFETY: the context is a leaked Log.
    unsafe { (*log).calls.lock().unwrap().push(call) };
}

/// A DPC initialized with [`log_dpc`] and `log`.
pub fn logging_dpc(log: P<Log>) -> P<KDPC> {
    dpc(Some(log_dpc), log.pv())
}

/// An initialized DPC.
pub fn dpc(routine: PKDEFERRED_ROUTINE, ctx: PVOID) -> P<KDPC> {
    let d = leak(KDPC::zeroed());
    // SAFETY: fresh, writable storage.
    unsafe { KeInitializeDpc(d.get(), routine, ctx) };
    d
}

/// `KeWaitForSingleObject(obj, Executive, KernelMode, FALSE, timeout)`.
pub fn wait<T>(obj: P<T>, timeout: Option<i64>) -> NTSTATUS {
    let mut t = timeout.unwrap_or(0);
    let tp: *mut i64 = if timeout.is_some() {
        &mut t
    } else {
        std::ptr::null_mut()
    };
    // SAFETY: `obj` is a live dispatcher object; `tp` is NULL or points to `t`.
    unsafe { ntsim::wait::KeWaitForSingleObject(obj.pv(), 0, KernelMode, 0, tp) }
}

/// `KeDelayExecutionThread(KernelMode, FALSE, -interval)`: sleeps `interval` (100 ns units).
pub fn sleep(interval: u64) -> NTSTATUS {
    let mut t = -(interval as i64);
    // SAFETY: `t` is a valid LARGE_INTEGER.
    unsafe { ntsim::wait::KeDelayExecutionThread(KernelMode, 0, &mut t) }
}

/// One millisecond in 100 ns units.
pub const MS: u64 = 10_000;

impl P<core::ffi::c_void> {
    /// Wraps an untyped pointer (a thread object, say) for [`wait`].
    pub fn from_pv(p: PVOID) -> P<core::ffi::c_void> {
        P(p)
    }
}

/// The `DISPATCHER_HEADER.SignalState` of a dispatcher object.
pub fn signal_state<T>(obj: P<T>) -> i32 {
    // SAFETY: every dispatcher object begins with its header; the object is leaked.
    unsafe { (*obj.get().cast::<DISPATCHER_HEADER>()).SignalState }
}

/// Whether a DPC is queued (`DpcData` non-NULL).
pub fn dpc_queued(d: P<KDPC>) -> bool {
    // SAFETY: the DPC is leaked.
    !unsafe { (*d.get()).DpcData }.is_null()
}
