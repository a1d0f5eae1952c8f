//! Waiting on dispatcher objects: [`Interval`], [`Waitable`], [`wait_any`], [`sleep`].

use core::ffi::c_void;

use crate::status::NtStatus;
use crate::sys;

/// A relative time in 100-nanosecond units (the kernel's unit): a wait timeout, a timer's due
/// time or period, a delay. Relative times are immune to system clock changes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Interval(u64);

impl Interval {
    /// No time at all: a wait polls, a timer expires at once.
    pub const ZERO: Interval = Interval(0);

    /// `n` units of 100 ns.
    ///
    /// IRQL: any (no kernel call).
    #[must_use]
    pub const fn from_100ns(n: u64) -> Interval {
        Interval(n)
    }

    /// `ms` milliseconds.
    ///
    /// IRQL: any (no kernel call).
    #[must_use]
    pub const fn from_millis(ms: u64) -> Interval {
        Interval(ms * 10_000)
    }

    /// The length in 100 ns units.
    ///
    /// IRQL: any (no kernel call).
    #[must_use]
    pub const fn as_100ns(self) -> u64 {
        self.0
    }

    /// The kernel's relative form: a negative `LARGE_INTEGER`.
    pub(crate) fn kernel_relative(self) -> i64 {
        -(self.0.min(i64::MAX as u64) as i64)
    }
}

/// How a wait ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WaitResult {
    /// The object (for [`wait_any`]: the object at this index) was signaled.
    Signaled(usize),
    /// The timeout passed first (`STATUS_TIMEOUT`).
    TimedOut,
}

mod sealed {
    pub trait Sealed {}
}

/// A kernel dispatcher object a thread can wait on: [`Event`](crate::Event),
/// [`Semaphore`](crate::Semaphore), [`Timer`](crate::Timer), a referenced
/// [`UserEvent`](crate::UserEvent).
pub trait Waitable: sealed::Sealed {
    /// The dispatcher header's address.
    #[doc(hidden)]
    fn dispatcher_object(&self) -> *mut c_void;

    /// Waits until the object is signaled, or until `timeout` passes (`None`: forever). A
    /// signaled synchronization event or semaphore is consumed by the wait.
    ///
    /// IRQL: <= APC_LEVEL; <= DISPATCH_LEVEL with `Some(Interval::ZERO)` (a poll). Returns
    /// [`WaitResult::Signaled(0)`](WaitResult::Signaled) or [`WaitResult::TimedOut`].
    fn wait(&self, timeout: Option<Interval>) -> WaitResult {
        // SAFETY: the object is alive for the borrow, which outlasts the wait.
        let status = unsafe {
            sys::wait_single(
                self.dispatcher_object(),
                timeout.map(Interval::kernel_relative),
            )
        };
        to_result(status)
    }
}

pub(crate) use sealed::Sealed;

fn to_result(status: sys::Ntstatus) -> WaitResult {
    if NtStatus(status) == NtStatus::TIMEOUT {
        WaitResult::TimedOut
    } else {
        // STATUS_WAIT_0 + index.
        WaitResult::Signaled(status as usize)
    }
}

/// Waits until any of `objects` (1 to 3 of them) is signaled, or `timeout` passes
/// (`KeWaitForMultipleObjects(WaitAny)`). When several are signaled, the lowest index wins and
/// only that object is consumed.
///
/// IRQL: <= APC_LEVEL; <= DISPATCH_LEVEL with `Some(Interval::ZERO)`. Returns the index of the
/// object that satisfied the wait, or [`WaitResult::TimedOut`].
///
/// # Panics
/// If `objects` is empty or has more than 3 entries (THREAD_WAIT_OBJECTS: more would need a
/// wait-block array, i.e. an allocation).
pub fn wait_any(objects: &[&dyn Waitable], timeout: Option<Interval>) -> WaitResult {
    assert!(
        !objects.is_empty() && objects.len() <= 3,
        "wait_any waits on 1 to 3 objects"
    );
    let mut raw = [core::ptr::null_mut::<c_void>(); 3];
    for (slot, o) in raw.iter_mut().zip(objects) {
        *slot = o.dispatcher_object();
    }
    // SAFETY: every object is alive for the borrow, which outlasts the wait.
    let status = unsafe {
        sys::wait_any(
            &raw[..objects.len()],
            timeout.map(Interval::kernel_relative),
        )
    };
    to_result(status)
}

/// Puts the current thread to sleep for `interval` (`KeDelayExecutionThread`).
///
/// IRQL: <= APC_LEVEL.
pub fn sleep(interval: Interval) {
    sys::delay(interval.kernel_relative());
}
