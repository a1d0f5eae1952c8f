//! [`PoolArc`]: a value built in place in non-paged pool, shared by reference count (where a
//! [`PoolBox`](crate::PoolBox) would need a second owner).
//!
//! What a driver allocates per request or per handle (a registration record with its timer, a
//! per-file context with its remove lock) must not move once initialized and must be freed when
//! the last party is done with it. `PoolArc` is that storage: one `ExAllocatePool2` block that
//! holds a counter and the value, built in place with a [`PinInit`], never moved, dropped and
//! freed when the last clone goes. Allocation failure is an ordinary error
//! (`STATUS_INSUFFICIENT_RESOURCES`), which is how a driver reports it (spec B.1, D-10).

use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;
use core::pin::Pin;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering, fence};

use pinned_init::PinInit;

use crate::status::NtStatus;
use crate::sys;

/// The pool block: the counter, the tag it was allocated with, then the value.
#[repr(C)]
struct Inner<T> {
    count: AtomicUsize,
    tag: u32,
    value: T,
}

/// A reference-counted, pinned value in non-paged pool.
///
/// Cloning takes one more reference; dropping the last one drops the value in place and frees
/// the block (`ExFreePoolWithTag`). The value never moves, so it may embed kernel objects
/// (timers, queues, remove locks). Only shared access is given ([`Deref`], [`PoolArc::as_pin`]):
/// mutable state inside goes in a [`SpinLock`](crate::SpinLock) or atomics.
///
/// IRQL: the last drop runs `T`'s drop at the caller's IRQL; a value whose drop waits (a
/// [`Timer`](crate::Timer), a [`SystemThread`](crate::SystemThread)) must lose its last
/// reference at PASSIVE_LEVEL.
///
/// # Invariants
///
/// `ptr` is a live pool block with an initialized `Inner<T>` whose count includes this value.
pub struct PoolArc<T> {
    ptr: NonNull<Inner<T>>,
    _owns: PhantomData<Inner<T>>,
}

// SAFETY: clones on several threads give shared access to `T` (needs `Sync`) and the last one,
// on any thread, drops it (needs `Send`).
unsafe impl<T: Send + Sync> Send for PoolArc<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for PoolArc<T> {}

impl<T> PoolArc<T> {
    /// Allocates a block tagged `tag` (a four-character pool tag, e.g. `u32::from_le_bytes(*b"EvRc")`)
    /// and builds the value in it with `init`.
    ///
    /// IRQL: <= DISPATCH_LEVEL (and whatever `init` needs).
    ///
    /// # Errors
    /// `STATUS_INSUFFICIENT_RESOURCES` when the pool is exhausted, or `init`'s error (the block
    /// is freed again).
    pub fn pin_init<E: Into<NtStatus>>(
        init: impl PinInit<T, E>,
        tag: u32,
    ) -> Result<Self, NtStatus> {
        const {
            assert!(
                core::mem::align_of::<Inner<T>>() <= 16,
                "pool blocks are 16-byte aligned"
            )
        };
        let raw = sys::pool_alloc(core::mem::size_of::<Inner<T>>(), tag).cast::<Inner<T>>();
        let Some(ptr) = NonNull::new(raw) else {
            return Err(NtStatus::INSUFFICIENT_RESOURCES);
        };
        // SAFETY: a fresh block of the right size and alignment; address only.
        let count = unsafe { &raw mut (*raw).count };
        // SAFETY: as above.
        let tag_slot = unsafe { &raw mut (*raw).tag };
        // SAFETY: as above.
        let value = unsafe { &raw mut (*raw).value };
        // SAFETY: writable storage for the counter.
        unsafe { count.write(AtomicUsize::new(1)) };
        // SAFETY: writable storage for the tag.
        unsafe { tag_slot.write(tag) };
        // SAFETY: `value` is writable and never moves (the block is freed, not moved).
        if let Err(e) = unsafe { init.__pinned_init(value) } {
            // SAFETY: our block; nothing was initialized that needs dropping.
            unsafe { sys::pool_free(raw.cast(), tag) };
            return Err(e.into());
        }
        // INVARIANT: initialized, one reference (this one).
        Ok(PoolArc {
            ptr,
            _owns: PhantomData,
        })
    }

    fn inner(&self) -> &Inner<T> {
        // SAFETY: type invariant: the block lives while this reference does.
        unsafe { self.ptr.as_ref() }
    }

    /// The value, pinned.
    ///
    /// IRQL: any.
    pub fn as_pin(&self) -> Pin<&T> {
        // SAFETY: the value never moves until it is dropped in place.
        unsafe { Pin::new_unchecked(&self.inner().value) }
    }

    /// Whether `a` and `b` are the same block.
    ///
    /// IRQL: any.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.ptr == b.ptr
    }
}

impl<T> Deref for PoolArc<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner().value
    }
}

impl<T> Clone for PoolArc<T> {
    fn clone(&self) -> Self {
        self.inner().count.fetch_add(1, Ordering::Relaxed);
        PoolArc {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }
}

impl<T> Drop for PoolArc<T> {
    fn drop(&mut self) {
        if self.inner().count.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
        let raw = self.ptr.as_ptr();
        // SAFETY: the last reference: nobody else can reach the block; address only.
        let value = unsafe { &raw mut (*raw).value };
        // SAFETY: as above.
        let tag = unsafe { (*raw).tag };
        // SAFETY: initialized, unused, dropped once.
        unsafe { core::ptr::drop_in_place(value) };
        // SAFETY: allocated by `pin_init` with `tag`; freed once.
        unsafe { sys::pool_free(raw.cast(), tag) };
    }
}

impl<T: fmt::Debug> fmt::Debug for PoolArc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
