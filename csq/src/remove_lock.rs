//! [`RemoveLock`]: `IO_REMOVE_LOCK`, to run down the dispatch routines in progress before a
//! cleanup or removal goes on (spec A.17).

use core::fmt;
use core::mem::ManuallyDrop;

use pinned_init::PinInit;

use crate::status::NtStatus;
use crate::sys::{self, Opaque};

/// A remove lock, built in place with [`RemoveLock::new`] (it embeds an event).
///
/// Dispatch routines [`acquire`](Self::acquire) it at entry and drop the guard before returning
/// (also when they return `STATUS_PENDING`); the party that tears down (cleanup of a file
/// object, device removal) calls [`release_and_wait`](Self::release_and_wait) with its own
/// acquisition, which waits for every other holder and makes later acquisitions fail with
/// `STATUS_DELETE_PENDING`.
#[repr(transparent)]
pub struct RemoveLock {
    inner: Opaque<sys::RemoveLockObject>,
}

// SAFETY: remove locks are designed for use from any CPU.
unsafe impl Send for RemoveLock {}
// SAFETY: as above.
unsafe impl Sync for RemoveLock {}

impl RemoveLock {
    /// An initializer (`IoInitializeRemoveLock(lock, tag, 0, 0)`); `tag` is a pool-tag-like
    /// four-character code.
    ///
    /// IRQL: PASSIVE_LEVEL.
    pub fn new(tag: u32) -> impl PinInit<Self> {
        let inner = Opaque::ffi_init(move |l| {
            // SAFETY: `l` is the lock's final, writable storage, initialized once.
            unsafe { sys::remove_lock_init(l, tag) }
        });
        // SAFETY: `RemoveLock` is `repr(transparent)` over its only field.
        unsafe { pinned_init::cast_pin_init(inner) }
    }

    /// Acquires the lock (`IoAcquireRemoveLock`); the guard's drop releases it.
    ///
    /// IRQL: <= DISPATCH_LEVEL.
    ///
    /// # Errors
    /// `STATUS_DELETE_PENDING` once [`release_and_wait`](Self::release_and_wait) has run: the
    /// caller must not start anything (and has nothing to release).
    pub fn acquire(&self) -> Result<RemoveLockGuard<'_>, NtStatus> {
        // SAFETY: an initialized lock.
        let status = NtStatus(unsafe { sys::remove_lock_acquire(self.inner.get()) });
        status.to_result()?;
        Ok(RemoveLockGuard { lock: self })
    }

    /// Gives up `guard`'s acquisition and waits until every other holder has released
    /// (`IoReleaseRemoveLockAndWait`); from then on every `acquire` fails.
    ///
    /// IRQL: PASSIVE_LEVEL.
    pub fn release_and_wait(&self, guard: RemoveLockGuard<'_>) {
        assert!(
            core::ptr::eq(guard.lock, self),
            "release_and_wait with another lock's guard"
        );
        let _ = ManuallyDrop::new(guard);
        // SAFETY: the guard's acquisition is given up here (it will not be released again).
        unsafe { sys::remove_lock_release_and_wait(self.inner.get()) };
    }
}

impl fmt::Debug for RemoveLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoveLock").finish_non_exhaustive()
    }
}

/// One acquisition of a [`RemoveLock`]; dropping it releases it (`IoReleaseRemoveLock`).
#[must_use = "dropping the guard releases the remove lock at once"]
pub struct RemoveLockGuard<'a> {
    lock: &'a RemoveLock,
}

impl Drop for RemoveLockGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: this guard holds one acquisition.
        unsafe { sys::remove_lock_release(self.lock.inner.get()) };
    }
}

impl fmt::Debug for RemoveLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoveLockGuard").finish_non_exhaustive()
    }
}
