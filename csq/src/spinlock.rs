//! [`SpinLock<T>`]: a kernel spin lock that guards the data it protects.

use core::cell::UnsafeCell;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

use crate::irql::DispatchLevel;
use crate::sys;

/// A `KSPIN_LOCK` and the data it protects: the data is reachable only through a guard, and the
/// guard's drop releases the lock (Rust-for-Linux's `SpinLock` shape).
///
/// Holding the lock raises the CPU to DISPATCH_LEVEL: while a guard lives, do not wait, do not
/// touch pageable memory, and do not complete IRPs (spec A.1.2; ntsim reports rule C4 for
/// `Irp::complete` under a lock). The lock is not recursive: locking it twice on one CPU
/// deadlocks (ntsim reports rule C17).
///
/// A `SpinLock` may move while unlocked (a `KSPIN_LOCK` is a plain word); a guard borrows it, so
/// it cannot move while held.
pub struct SpinLock<T: ?Sized> {
    lock: UnsafeCell<sys::KSpinLock>,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `T` to one CPU at a time, so `T: Send` suffices for both.
unsafe impl<T: ?Sized + Send> Send for SpinLock<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// A spin lock protecting `data` (`KeInitializeSpinLock`).
    ///
    /// IRQL: any.
    pub const fn new(data: T) -> Self {
        SpinLock {
            lock: UnsafeCell::new(sys::SPIN_LOCK_INIT),
            data: UnsafeCell::new(data),
        }
    }

    /// The protected data, by value.
    ///
    /// IRQL: any (no kernel call).
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> SpinLock<T> {
    /// Raises to DISPATCH_LEVEL and acquires the lock (`KeAcquireSpinLockRaiseToDpc`); the
    /// guard's drop releases it and restores the previous IRQL (`KeReleaseSpinLock`).
    ///
    /// IRQL: <= DISPATCH_LEVEL; the guard runs at DISPATCH_LEVEL.
    pub fn lock(&self) -> SpinLockGuard<'_, T> {
        // SAFETY: the lock word is initialized and outlives the guard, which borrows `self`.
        let irql = unsafe { sys::spin_lock_acquire(self.lock.get()) };
        SpinLockGuard {
            lock: self,
            irql,
            _cpu: PhantomData,
        }
    }

    /// Acquires the lock without changing the IRQL (`KeAcquireSpinLockAtDpcLevel`), for code
    /// that already runs at DISPATCH_LEVEL (a DPC, or under another lock), as `_level` proves.
    ///
    /// IRQL: DISPATCH_LEVEL.
    pub fn lock_at_dpc_level<'a>(&'a self, _level: DispatchLevel<'a>) -> SpinLockDpcGuard<'a, T> {
        // SAFETY: initialized lock, borrowed by the guard; the token proves DISPATCH_LEVEL.
        unsafe { sys::spin_lock_acquire_at_dpc(self.lock.get()) };
        SpinLockDpcGuard {
            lock: self,
            _cpu: PhantomData,
        }
    }

    /// Mutable access without locking, when the caller has exclusive access.
    ///
    /// IRQL: any (no kernel call).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: Default> Default for SpinLock<T> {
    fn default() -> Self {
        SpinLock::new(T::default())
    }
}

impl<T: ?Sized> fmt::Debug for SpinLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpinLock").finish_non_exhaustive()
    }
}

/// Access to a [`SpinLock`]'s data while it is held; dropping it releases the lock and
/// restores the IRQL. Not `Send`: it must be dropped on the CPU that locked.
pub struct SpinLockGuard<'a, T: ?Sized> {
    lock: &'a SpinLock<T>,
    irql: sys::Kirql,
    _cpu: PhantomData<*mut ()>,
}

impl<T: ?Sized> SpinLockGuard<'_, T> {
    /// Proof that the holder runs at DISPATCH_LEVEL.
    ///
    /// IRQL: any (no kernel call).
    pub fn dispatch_level(&self) -> DispatchLevel<'_> {
        // SAFETY: a held spin lock keeps the CPU at DISPATCH_LEVEL for the borrow.
        unsafe { DispatchLevel::assume() }
    }
}

impl<T: ?Sized> Deref for SpinLockGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the lock is held, so this CPU has exclusive access.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for SpinLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for SpinLockGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this guard holds the lock, acquired with the IRQL it saved.
        unsafe { sys::spin_lock_release(self.lock.lock.get(), self.irql) };
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for SpinLockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Like [`SpinLockGuard`], for a lock taken at DISPATCH_LEVEL; its drop releases the lock
/// without changing the IRQL (`KeReleaseSpinLockFromDpcLevel`).
pub struct SpinLockDpcGuard<'a, T: ?Sized> {
    lock: &'a SpinLock<T>,
    _cpu: PhantomData<*mut ()>,
}

impl<T: ?Sized> Deref for SpinLockDpcGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the lock is held.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for SpinLockDpcGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the lock is held.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for SpinLockDpcGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this guard holds the lock, taken at DISPATCH_LEVEL.
        unsafe { sys::spin_lock_release_from_dpc(self.lock.lock.get()) };
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for SpinLockDpcGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
