//! [`Semaphore`]: a kernel counting semaphore (spec A.15).

use core::ffi::c_void;
use core::fmt;

use pinned_init::PinInit;

use crate::sys::{self, Opaque};
use crate::wait::{Sealed, Waitable};

/// A `KSEMAPHORE`, built in place with [`Semaphore::new`]. Each satisfied wait takes one unit.
#[repr(transparent)]
pub struct Semaphore {
    inner: Opaque<sys::KSemaphore>,
}

// SAFETY: kernel semaphores are designed to be released and waited on from any CPU.
unsafe impl Send for Semaphore {}
// SAFETY: as above.
unsafe impl Sync for Semaphore {}

impl Semaphore {
    /// An initializer for a semaphore with `count` units and at most `limit`
    /// (`KeInitializeSemaphore`).
    ///
    /// IRQL: any.
    pub fn new(count: u32, limit: u32) -> impl PinInit<Self> {
        let inner = Opaque::ffi_init(move |s| {
            // SAFETY: `s` is the semaphore's final, writable storage; nobody waits on it yet.
            unsafe { sys::semaphore_init(s, count as i32, limit as i32) }
        });
        // SAFETY: `Semaphore` is `repr(transparent)` over its only field, initialized by `inner`.
        unsafe { pinned_init::cast_pin_init(inner) }
    }

    /// Adds `adjustment` units and wakes as many waiters as it can (`KeReleaseSemaphore`);
    /// returns the previous count.
    ///
    /// Exceeding the limit raises `STATUS_SEMAPHORE_LIMIT_EXCEEDED` on Windows, an exception a
    /// driver cannot handle (ntsim: fatal rule C29): keep releases balanced with waits.
    ///
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn release(&self, adjustment: u32) -> u32 {
        // SAFETY: an initialized semaphore.
        unsafe { sys::semaphore_release(self.inner.get(), adjustment as i32) as u32 }
    }

    /// The current count (`KeReadStateSemaphore`).
    ///
    /// IRQL: any.
    pub fn count(&self) -> u32 {
        // SAFETY: an initialized semaphore.
        unsafe { sys::semaphore_read(self.inner.get()) as u32 }
    }
}

impl Sealed for Semaphore {}

impl Waitable for Semaphore {
    fn dispatcher_object(&self) -> *mut c_void {
        self.inner.get().cast()
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("count", &self.count())
            .finish()
    }
}
