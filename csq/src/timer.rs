//! [`Timer`]: a `KTIMER` with its `KDPC`, whose drop cancels the timer and waits for a running
//! DPC before the memory goes (spec A.12.4, A.13).
//!
//! The DPC calls [`TimerCallback::expired`] on the struct that *contains* the timer, found by
//! container-of (the offset comes from [`impl_has_timer!`](crate::impl_has_timer), which writes
//! the one `unsafe impl` so that drivers do not): the shape of Rust-for-Linux's `workqueue.rs`.

use core::ffi::c_void;
use core::fmt;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicBool, Ordering};

use pinned_init::{PinInit, pin_init_from_closure};

use crate::irql::DispatchLevel;
use crate::sys::{self, Opaque};
use crate::wait::{Interval, Sealed, Waitable};

/// A type that contains a [`Timer<Self, ID>`] at a known offset.
///
/// # Safety
/// `OFFSET` is the byte offset of a field of type `Timer<Self, ID>` in `Self`. Implement it with
/// [`impl_has_timer!`](crate::impl_has_timer), which computes it.
pub unsafe trait HasTimer<const ID: u64 = 0>: Sized {
    /// The timer field's offset.
    const OFFSET: usize;
}

/// What a timer's DPC runs: implemented by the struct that contains the [`Timer`].
pub trait TimerCallback<const ID: u64 = 0>: HasTimer<ID> + Sync {
    /// Runs in the timer's DPC, at DISPATCH_LEVEL on the CPU where the timer expired. It may
    /// take spin locks (with [`SpinLock::lock_at_dpc_level`](crate::SpinLock::lock_at_dpc_level)
    /// or `lock`), complete IRPs it owns, signal events and re-arm the timer; it must not wait.
    ///
    /// A re-armed timer can expire again while this still runs, so the same callback may run on
    /// two CPUs at once (spec A.12.6): protect shared state with a lock.
    fn expired(&self, level: DispatchLevel<'_>);
}

/// Writes the `unsafe impl HasTimer` for a struct with a [`Timer`] field.
///
/// ```ignore
/// struct Device { timer: Timer<Device>, /* ... */ }
/// csq::impl_has_timer!(Device, timer);            // Timer<Device> (ID 0)
/// csq::impl_has_timer!(Device, other_timer, 1);   // Timer<Device, 1>
/// ```
#[macro_export]
macro_rules! impl_has_timer {
    ($container:ty, $field:ident) => {
        $crate::impl_has_timer!($container, $field, 0);
    };
    ($container:ty, $field:ident, $id:literal) => {
        // SAFETY: the offset is computed by `offset_of!` for a field that the function below
        // proves has type `Timer<$container, $id>`.
        unsafe impl $crate::HasTimer<$id> for $container {
            const OFFSET: usize = {
                #[allow(dead_code)]
                fn field_is_the_timer(c: &$container) -> &$crate::Timer<$container, $id> {
                    &c.$field
                }
                ::core::mem::offset_of!($container, $field)
            };
        }
    };
}

/// The kind of a timer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TimerKind {
    /// Stays signaled after expiry until re-set (`NotificationTimer`).
    Notification,
    /// Releases one waiter and resets itself (`SynchronizationTimer`).
    Synchronization,
}

/// A kernel timer and its DPC, owned by the struct `C` that contains it.
///
/// Built in place with [`Timer::new`] (the kernel links both objects by address). Dropping it —
/// or calling [`Timer::shutdown`] first, from the container's drop or unload, before anything
/// the callback touches is freed — cancels the timer and waits until no DPC of it is queued or
/// running (`KeCancelTimer` + `KeFlushQueuedDpcs`, spec A.12.4/A.13), after refusing any re-arm
/// by a callback still running. That wait needs PASSIVE_LEVEL.
///
/// Put the timer **first** among the fields its callback uses, or call `shutdown` explicitly:
/// fields are dropped in declaration order.
///
/// # Invariants
///
/// `dpc`'s context is the address of this `Timer`; the timer is armed only with `dpc`.
pub struct Timer<C: TimerCallback<ID>, const ID: u64 = 0> {
    timer: Opaque<sys::KTimer>,
    dpc: Opaque<sys::KDpc>,
    shut_down: AtomicBool,
    _container: PhantomData<fn(&C)>,
}

// SAFETY: the kernel objects are designed for use from any CPU; the flag is atomic.
unsafe impl<C: TimerCallback<ID>, const ID: u64> Send for Timer<C, ID> {}
// SAFETY: as above.
unsafe impl<C: TimerCallback<ID>, const ID: u64> Sync for Timer<C, ID> {}

impl<C: TimerCallback<ID>, const ID: u64> Timer<C, ID> {
    /// An initializer for a timer of `kind` whose DPC calls `C::expired`
    /// (`KeInitializeTimerEx` + `KeInitializeDpc`).
    ///
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn new(kind: TimerKind) -> impl PinInit<Self> {
        let init = move |this: *mut Self| {
            // SAFETY: `this` is valid for writes (PinInit contract); address only.
            let timer = unsafe { &raw const (*this).timer };
            // SAFETY: as above.
            let dpc = unsafe { &raw const (*this).dpc };
            // SAFETY: the timer's final storage, not inserted.
            unsafe { sys::timer_init(Opaque::raw_get(timer), kind == TimerKind::Notification) };
            // SAFETY: the DPC's final storage; its routine gets this timer's address, which stays
            // valid until `shutdown` proved no DPC is queued or running.
            unsafe { sys::dpc_init(Opaque::raw_get(dpc), Self::dpc_routine, this.cast()) };
            // SAFETY: as above; address only.
            let flag = unsafe { &raw mut (*this).shut_down };
            // SAFETY: writable storage for the flag.
            unsafe { flag.write(AtomicBool::new(false)) };
            Ok(())
        };
        // SAFETY: the closure initializes every field (the marker is zero-sized) in place.
        unsafe { pin_init_from_closure(init) }
    }

    /// Arms the timer to expire after `due` and run the callback once (`KeSetTimer`); re-arming
    /// a pending timer replaces its expiry. Returns whether it was already armed (spec A.12.2).
    /// After [`shutdown`](Self::shutdown) it does nothing and returns `false`.
    ///
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn arm(&self, due: Interval) -> bool {
        self.arm_periodic(due, 0)
    }

    /// Arms the timer to expire after `due`, then every `period_ms` milliseconds (0: once)
    /// (`KeSetTimerEx`). Returns whether it was already armed.
    ///
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn arm_periodic(&self, due: Interval, period_ms: u32) -> bool {
        if self.shut_down.load(Ordering::SeqCst) {
            return false;
        }
        // SAFETY: initialized timer and DPC that live until `shutdown` has flushed them.
        unsafe {
            sys::timer_set(
                self.timer.get(),
                due.kernel_relative(),
                period_ms.min(i32::MAX as u32) as i32,
                self.dpc.get(),
            )
        }
    }

    /// Cancels a pending expiry (`KeCancelTimer`). `true`: the expiry (and its DPC) will not
    /// happen for that setting. `false`: not armed, or already expired — its DPC may be queued,
    /// running or done (spec A.12.4; it does not decide who owns an IRP the DPC would complete).
    ///
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn cancel(&self) -> bool {
        // SAFETY: an initialized timer.
        unsafe { sys::timer_cancel(self.timer.get()) }
    }

    /// Whether the timer has expired since it was last armed (`KeReadStateTimer`).
    ///
    /// IRQL: any.
    pub fn is_signaled(&self) -> bool {
        // SAFETY: an initialized timer.
        unsafe { sys::timer_read(self.timer.get()) }
    }

    /// Stops the timer for good: refuses further arming, cancels it, and waits until no DPC of
    /// it is queued or running. Idempotent; the drop calls it.
    ///
    /// IRQL: PASSIVE_LEVEL (it waits).
    pub fn shutdown(&self) {
        self.shut_down.store(true, Ordering::SeqCst);
        // A callback running now may have re-armed before it saw the flag: cancel and flush
        // twice. After the first flush every running callback has returned, and the flag
        // stops any later one from arming again.
        for _ in 0..2 {
            self.cancel();
            sys::flush_queued_dpcs();
        }
    }

    /// The DPC routine: container-of, then the callback.
    unsafe extern "system" fn dpc_routine(
        _dpc: *mut sys::KDpc,
        context: *mut c_void,
        _arg1: *mut c_void,
        _arg2: *mut c_void,
    ) {
        let timer = context.cast::<Self>();
        // SAFETY: `HasTimer::OFFSET` is the offset of this timer in its container (trait
        // contract), so stepping back gives the container, which outlives the timer's DPCs.
        let container = unsafe { timer.byte_sub(C::OFFSET) }.cast::<C>();
        // SAFETY: as above: a live container.
        let container = unsafe { &*container };
        // SAFETY: DPC routines run at DISPATCH_LEVEL.
        let level = unsafe { DispatchLevel::assume() };
        container.expired(level);
    }
}

impl<C: TimerCallback<ID>, const ID: u64> Drop for Timer<C, ID> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl<C: TimerCallback<ID>, const ID: u64> Sealed for Timer<C, ID> {}

impl<C: TimerCallback<ID>, const ID: u64> Waitable for Timer<C, ID> {
    fn dispatcher_object(&self) -> *mut c_void {
        self.timer.get().cast()
    }
}

impl<C: TimerCallback<ID>, const ID: u64> fmt::Debug for Timer<C, ID> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("signaled", &self.is_signaled())
            .finish_non_exhaustive()
    }
}
