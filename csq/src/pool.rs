//! [`PoolBox`]: one value in its own block of non-paged pool, for records whose number is not
//! known in advance (a driver's per-request or per-handle records).

use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::pin::Pin;
use core::ptr::NonNull;

use pinned_init::{Init, PinInit};

use crate::status::NtStatus;
use crate::sys;

/// A `T` in its own non-paged pool block (`ExAllocatePool2(POOL_FLAG_NON_PAGED)`), freed
/// (`ExFreePoolWithTag`) when the box is dropped, after `T`'s drop. The pool block never moves,
/// so a [`Pin<PoolBox<T>>`](PoolBox::try_pin_init) may hold kernel objects (timers, events,
/// remove locks) that are built in place.
///
/// Allocation failure is an ordinary error (`STATUS_INSUFFICIENT_RESOURCES`), not a panic: a
/// driver completes the request with it. On ntsim the block is tracked by the leak checks and
/// failures can be injected (`ntsim::pool::fail_allocations`).
///
/// The box may be dropped at any IRQL at which `T`'s drop may run, and <= DISPATCH_LEVEL.
///
/// # Invariants
///
/// `ptr` is a pool block allocated with `tag`, holding an initialized `T` that this box owns.
pub struct PoolBox<T> {
    ptr: NonNull<T>,
    tag: u32,
    _owns: PhantomData<T>,
}

// SAFETY: the box owns its `T` like `Box<T>` does.
unsafe impl<T: Send> Send for PoolBox<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for PoolBox<T> {}

// The pointer moves, not the `T` it points to.
impl<T> Unpin for PoolBox<T> {}

impl<T> PoolBox<T> {
    /// Allocates a zeroed block for a `T`.
    fn alloc(tag: u32) -> Result<NonNull<T>, NtStatus> {
        const {
            assert!(
                core::mem::align_of::<T>() <= 16,
                "pool blocks are 16-byte aligned"
            )
        };
        let p = sys::pool_alloc(core::mem::size_of::<T>().max(1), tag);
        NonNull::new(p.cast::<T>()).ok_or(NtStatus::INSUFFICIENT_RESOURCES)
    }

    /// Moves `value` into a new pool block tagged `tag` (a four-character pool tag, e.g.
    /// `u32::from_le_bytes(*b"Evnt")`).
    ///
    /// IRQL: <= DISPATCH_LEVEL.
    ///
    /// # Errors
    /// `STATUS_INSUFFICIENT_RESOURCES` when the pool is exhausted (`value` is dropped).
    pub fn try_new(tag: u32, value: T) -> Result<PoolBox<T>, NtStatus> {
        let ptr = Self::alloc(tag)?;
        // SAFETY: a fresh block, large and aligned enough for a `T`.
        unsafe { ptr.as_ptr().write(value) };
        // INVARIANT: initialized above.
        Ok(PoolBox {
            ptr,
            tag,
            _owns: PhantomData,
        })
    }

    /// Builds a `T` in place in a new pool block tagged `tag`.
    ///
    /// IRQL: <= DISPATCH_LEVEL (and what `init` needs).
    ///
    /// # Errors
    /// `Err(Ok(STATUS_INSUFFICIENT_RESOURCES))` when the pool is exhausted, `Err(Err(e))` when
    /// `init` fails; the block is freed in both cases.
    pub fn try_init<E>(tag: u32, init: impl Init<T, E>) -> Result<PoolBox<T>, Result<NtStatus, E>> {
        let ptr = Self::alloc(tag).map_err(Ok)?;
        // SAFETY: a fresh block, large and aligned enough for a `T`, written once.
        if let Err(e) = unsafe { init.__init(ptr.as_ptr()) } {
            // SAFETY: our block; `init` failed, so it holds no `T` to drop.
            unsafe { sys::pool_free(ptr.as_ptr().cast(), tag) };
            return Err(Err(e));
        }
        // INVARIANT: initialized above.
        Ok(PoolBox {
            ptr,
            tag,
            _owns: PhantomData,
        })
    }

    /// Builds a `T` in place in a new pool block tagged `tag`, pinned there: for values that
    /// embed kernel objects (e.g. a [`Timer`](crate::Timer) whose DPC points back at it).
    ///
    /// IRQL: <= DISPATCH_LEVEL (and what `init` needs).
    ///
    /// # Errors
    /// `STATUS_INSUFFICIENT_RESOURCES` when the pool is exhausted, or `init`'s error converted;
    /// the block is freed in both cases.
    pub fn try_pin_init<E>(tag: u32, init: impl PinInit<T, E>) -> Result<Pin<PoolBox<T>>, NtStatus>
    where
        E: Into<NtStatus>,
    {
        let ptr = Self::alloc(tag)?;
        // SAFETY: a fresh block, large and aligned enough for a `T`, that never moves: the `T`
        // is only reachable through the `Pin` returned below.
        if let Err(e) = unsafe { init.__pinned_init(ptr.as_ptr()) } {
            // SAFETY: our block; `init` failed, so it holds no `T` to drop.
            unsafe { sys::pool_free(ptr.as_ptr().cast(), tag) };
            return Err(e.into());
        }
        // INVARIANT: initialized above.
        let b = PoolBox {
            ptr,
            tag,
            _owns: PhantomData,
        };
        // SAFETY: the `T` lives in the pool block until the box's drop, and `PoolBox` gives no
        // way to move it out of a `Pin<PoolBox<T>>`.
        Ok(unsafe { Pin::new_unchecked(b) })
    }
}

impl<T> Deref for PoolBox<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: type invariant: an initialized `T` we own.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> DerefMut for PoolBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: type invariant; `&mut self` is unique.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T> Drop for PoolBox<T> {
    fn drop(&mut self) {
        // SAFETY: type invariant: an initialized `T` we own, dropped once.
        unsafe { core::ptr::drop_in_place(self.ptr.as_ptr()) };
        // SAFETY: our block, allocated with `self.tag`, no longer used.
        unsafe { sys::pool_free(self.ptr.as_ptr().cast(), self.tag) };
    }
}

impl<T: fmt::Debug> fmt::Debug for PoolBox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
