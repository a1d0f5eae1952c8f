//! The seam: the only place in the workspace that touches raw kernel types.
//!
//! Everything outside this folder sees kernel objects only as the opaque types re-exported here
//! (held in [`Opaque`] when embedded, or as raw pointers it never dereferences) and calls the
//! functions below. Two backends implement them with the same names and signatures:
//!
//! - `host.rs` (`cfg(not(windows))`): over `ntsim`, the user-mode model of the kernel;
//! - `wdk.rs` (`cfg(windows)`): over `wdk-sys`, with the C header's inline routines
//!   (`IoSetCancelRoutine`, `IoGetCurrentIrpStackLocation`, `IoMarkIrpPending`, the list-head
//!   routines, …) rewritten in Rust.
//!
//! Each function here is a documented `#[inline]` forwarder, so that the surface the safe layer
//! depends on is written down once and both backends are checked against it by the compiler.
//! Every function states its IRQL; the `unsafe` ones state what the caller guarantees.
//!
//! Callback trampolines (the `unsafe extern "system" fn`s the kernel calls: the six IoCsq
//! callbacks, dispatch routines, DPC routines, thread start routines) live in the safe layer's
//! files, but their parameters are the pointer types of this module and they only pass them back
//! into functions of this module.

#![allow(dead_code)]

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::marker::PhantomPinned;
use core::mem::MaybeUninit;

use pinned_init::{PinInit, pin_init_from_closure};

use crate::device::DeviceAccess;

#[cfg(not(windows))]
mod host;
#[cfg(not(windows))]
use host as imp;

#[cfg(windows)]
mod wdk;
#[cfg(windows)]
use wdk as imp;

/// Raw kernel object types, named for what they are. The safe layer never reads their fields.
pub(crate) use imp::{
    CsqIrpContext, DeviceObject, DriverObject, FileObject, IoCsq, Irp, KDpc, KEvent, KSemaphore,
    KSpinLock, KThread, KTimer, ListEntry, RemoveLockObject,
};

/// A status code as the kernel returns it (`NTSTATUS`).
pub(crate) type Ntstatus = i32;
/// An interrupt request level (`KIRQL`).
pub(crate) type Kirql = u8;

/// `CsqInsertIrpEx`.
pub(crate) type CsqInsertIrpExFn = unsafe extern "system" fn(
    csq: *mut IoCsq,
    irp: *mut Irp,
    insert_context: *mut c_void,
) -> Ntstatus;
/// `CsqRemoveIrp` and `CsqCompleteCanceledIrp`.
pub(crate) type CsqIrpFn = unsafe extern "system" fn(csq: *mut IoCsq, irp: *mut Irp);
/// `CsqPeekNextIrp`.
pub(crate) type CsqPeekNextIrpFn = unsafe extern "system" fn(
    csq: *mut IoCsq,
    irp: *mut Irp,
    peek_context: *mut c_void,
) -> *mut Irp;
/// `CsqAcquireLock`.
pub(crate) type CsqAcquireLockFn = unsafe extern "system" fn(csq: *mut IoCsq, irql: *mut Kirql);
/// `CsqReleaseLock`.
pub(crate) type CsqReleaseLockFn = unsafe extern "system" fn(csq: *mut IoCsq, irql: Kirql);
/// A dispatch routine (`DRIVER_DISPATCH`).
pub(crate) type DispatchFn =
    unsafe extern "system" fn(device: *mut DeviceObject, irp: *mut Irp) -> Ntstatus;
/// An unload routine (`DRIVER_UNLOAD`).
pub(crate) type UnloadFn = unsafe extern "system" fn(driver: *mut DriverObject);
/// A DPC routine (`KDEFERRED_ROUTINE`).
pub(crate) type DpcFn = unsafe extern "system" fn(
    dpc: *mut KDpc,
    context: *mut c_void,
    arg1: *mut c_void,
    arg2: *mut c_void,
);
/// A system thread's start routine (`KSTART_ROUTINE`).
pub(crate) type ThreadStartFn = unsafe extern "system" fn(context: *mut c_void);
/// `DriverEntry`.
pub(crate) type DriverEntryFn = imp::DriverEntryFn;
/// The registry path argument of `DriverEntry`.
pub(crate) type RegistryPath = imp::RegistryPath;

/// The six callbacks of a cancel-safe queue, as given to `IoCsqInitializeEx`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CsqCallbacks {
    pub(crate) insert: CsqInsertIrpExFn,
    pub(crate) remove: CsqIrpFn,
    pub(crate) peek_next: CsqPeekNextIrpFn,
    pub(crate) acquire_lock: CsqAcquireLockFn,
    pub(crate) release_lock: CsqReleaseLockFn,
    pub(crate) complete_canceled: CsqIrpFn,
}

/// Storage for a kernel object embedded in a Rust value: never moved once initialized (it is
/// `!Unpin` and only built in place through [`PinInit`]), and mutable by the kernel behind a
/// shared reference (it is an [`UnsafeCell`]). The model is Rust-for-Linux's `Opaque<T>`.
///
/// # Invariants
///
/// Nothing outside `sys/` reads or writes the `T`; the safe layer only passes [`Opaque::get`]'s
/// pointer to the functions of this module.
#[repr(transparent)]
pub(crate) struct Opaque<T> {
    value: UnsafeCell<MaybeUninit<T>>,
    _pin: PhantomPinned,
}

impl<T> Opaque<T> {
    /// An initializer that runs `init` on the object's final address (e.g. `KeInitializeEvent`).
    pub(crate) fn ffi_init(init: impl FnOnce(*mut T)) -> impl PinInit<Self> {
        // SAFETY: the closure initializes the whole `Opaque` by letting `init` write the `T` in
        // place (a `MaybeUninit` inside an `UnsafeCell` has no other invariant), and never fails.
        unsafe {
            pin_init_from_closure(move |slot: *mut Self| {
                init(Self::raw_get(slot));
                Ok(())
            })
        }
    }

    /// An initializer that zeroes the object (a valid "not yet used" state of the plain-data
    /// kernel objects that the kernel initializes on first use, such as `IO_CSQ_IRP_CONTEXT`).
    pub(crate) fn zeroed() -> impl PinInit<Self> {
        Self::ffi_init(|p: *mut T| {
            // SAFETY: `p` is valid for writes of one `T` (it is the slot being initialized).
            unsafe { core::ptr::write_bytes(p, 0, 1) }
        })
    }

    /// The object's address, for the functions of this module.
    pub(crate) const fn get(&self) -> *mut T {
        UnsafeCell::raw_get(&self.value).cast()
    }

    /// The object's address from a pointer to the `Opaque`, without creating a reference.
    pub(crate) const fn raw_get(this: *const Self) -> *mut T {
        // SAFETY: `UnsafeCell::raw_get` only computes an address; `this` need not be valid.
        UnsafeCell::raw_get(this.cast::<UnsafeCell<MaybeUninit<T>>>()).cast()
    }
}

impl<T> core::fmt::Debug for Opaque<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Opaque").finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// Status and IRQL constants the seam needs (values are the kernel's; see `crate::status`).

/// `STATUS_SUCCESS`.
pub(crate) const STATUS_SUCCESS: Ntstatus = 0;
/// A released `KSPIN_LOCK` (what `KeInitializeSpinLock` stores).
pub(crate) const SPIN_LOCK_INIT: KSpinLock = 0;
/// `PASSIVE_LEVEL`.
pub(crate) const PASSIVE_LEVEL: Kirql = 0;
/// `APC_LEVEL`.
pub(crate) const APC_LEVEL: Kirql = 1;
/// `DISPATCH_LEVEL`.
pub(crate) const DISPATCH_LEVEL: Kirql = 2;
/// Number of major function codes (`IRP_MJ_MAXIMUM_FUNCTION + 1`).
pub(crate) const IRP_MJ_COUNT: usize = 0x1C;

// ---------------------------------------------------------------------------------------------
// IRPs and their current stack location.

/// The current stack location's `MajorFunction`.
///
/// IRQL: any. # Safety: `irp` is a live IRP with a current stack location that the caller owns
/// (or that sits in the caller's queue, under its lock).
#[inline]
pub(crate) unsafe fn irp_major_function(irp: *mut Irp) -> u8 {
    // SAFETY: forwarded caller contract.
    unsafe { imp::irp_major_function(irp) }
}

/// The current stack location's `MinorFunction`.
///
/// IRQL: any. # Safety: as [`irp_major_function`].
#[inline]
pub(crate) unsafe fn irp_minor_function(irp: *mut Irp) -> u8 {
    // SAFETY: forwarded caller contract.
    unsafe { imp::irp_minor_function(irp) }
}

/// `Parameters.DeviceIoControl.{IoControlCode, InputBufferLength, OutputBufferLength}` of the
/// current stack location. Meaningful for `IRP_MJ_(INTERNAL_)DEVICE_CONTROL` only.
///
/// IRQL: any. # Safety: as [`irp_major_function`].
#[inline]
pub(crate) unsafe fn irp_ioctl_parameters(irp: *mut Irp) -> (u32, u32, u32) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::irp_ioctl_parameters(irp) }
}

/// `Irp->AssociatedIrp.SystemBuffer` (the METHOD_BUFFERED buffer; may be null).
///
/// IRQL: any. # Safety: as [`irp_major_function`].
#[inline]
pub(crate) unsafe fn irp_system_buffer(irp: *mut Irp) -> *mut u8 {
    // SAFETY: forwarded caller contract.
    unsafe { imp::irp_system_buffer(irp) }
}

/// The current stack location's `FileObject` (may be null).
///
/// IRQL: any. # Safety: as [`irp_major_function`].
#[inline]
pub(crate) unsafe fn irp_file_object(irp: *mut Irp) -> *mut FileObject {
    // SAFETY: forwarded caller contract.
    unsafe { imp::irp_file_object(irp) }
}

/// `Irp->RequestorMode` (0 = KernelMode, 1 = UserMode).
///
/// IRQL: any. # Safety: as [`irp_major_function`].
#[inline]
pub(crate) unsafe fn irp_requestor_mode(irp: *mut Irp) -> i8 {
    // SAFETY: forwarded caller contract.
    unsafe { imp::irp_requestor_mode(irp) }
}

/// `Irp->Cancel`, read once (another CPU may set it at any time).
///
/// IRQL: any. # Safety: `irp` is a live IRP.
#[inline]
pub(crate) unsafe fn irp_cancel_flag(irp: *mut Irp) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { imp::irp_cancel_flag(irp) }
}

/// Whether the current stack location has `SL_PENDING_RETURNED` (IoMarkIrpPending was called).
///
/// IRQL: any. # Safety: as [`irp_major_function`].
#[inline]
pub(crate) unsafe fn irp_is_marked_pending(irp: *mut Irp) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { imp::irp_is_marked_pending(irp) }
}

/// `IoMarkIrpPending`.
///
/// IRQL: any. # Safety: as [`irp_major_function`], and no other party can complete the IRP yet
/// (spec A.6).
#[inline]
pub(crate) unsafe fn irp_mark_pending(irp: *mut Irp) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::irp_mark_pending(irp) }
}

/// `IoSetCancelRoutine`: an atomic exchange of `Irp->CancelRoutine`; returns the previous value
/// (spec A.3).
///
/// IRQL: <= DISPATCH_LEVEL. # Safety: `irp` is a live IRP the caller routes.
#[inline]
pub(crate) unsafe fn irp_set_cancel_routine(
    irp: *mut Irp,
    routine: Option<DispatchCancelFn>,
) -> Option<DispatchCancelFn> {
    // SAFETY: forwarded caller contract.
    unsafe { imp::irp_set_cancel_routine(irp, routine) }
}

/// A cancel routine (`DRIVER_CANCEL`).
pub(crate) type DispatchCancelFn =
    unsafe extern "system" fn(device: *mut DeviceObject, irp: *mut Irp);

/// Stores `status` and `information` in `Irp->IoStatus` and calls
/// `IoCompleteRequest(irp, IO_NO_INCREMENT)`.
///
/// IRQL: <= DISPATCH_LEVEL, no spin lock held. # Safety: the caller owns `irp` (spec A.3), its
/// cancel routine is NULL, `status` is not STATUS_PENDING, and nobody touches the IRP afterwards.
#[inline]
pub(crate) unsafe fn irp_complete(irp: *mut Irp, status: Ntstatus, information: usize) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::irp_complete(irp, status, information) }
}

/// `&Irp->Tail.Overlay.ListEntry`: the link the IRP's current owner may use for its queue.
///
/// IRQL: any. Computes an address only.
#[inline]
pub(crate) fn irp_list_entry(irp: *mut Irp) -> *mut ListEntry {
    imp::irp_list_entry(irp)
}

/// `CONTAINING_RECORD(entry, IRP, Tail.Overlay.ListEntry)`.
///
/// IRQL: any. Computes an address only.
#[inline]
pub(crate) fn irp_from_list_entry(entry: *mut ListEntry) -> *mut Irp {
    imp::irp_from_list_entry(entry)
}

/// `&Irp->Tail.Overlay.DriverContext[index]`, `index` < 3 (slot 3 belongs to IoCsq, spec A.2).
///
/// IRQL: any. Computes an address only.
#[inline]
pub(crate) fn irp_driver_context(irp: *mut Irp, index: usize) -> *mut *mut c_void {
    assert!(
        index < 3,
        "DriverContext[3] is reserved by IoCsq (spec A.2)"
    );
    imp::irp_driver_context(irp, index)
}

// ---------------------------------------------------------------------------------------------
// Doubly linked lists (the LIST_ENTRY inline routines).

/// `InitializeListHead`.
///
/// IRQL: any. # Safety: `head` is valid for writes and does not move afterwards.
#[inline]
pub(crate) unsafe fn list_init(head: *mut ListEntry) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::list_init(head) }
}

/// `IsListEmpty`.
///
/// IRQL: any. # Safety: `head` is an initialized list head, protected by the caller's lock.
#[inline]
pub(crate) unsafe fn list_is_empty(head: *mut ListEntry) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { imp::list_is_empty(head) }
}

/// `entry->Flink` (the next entry, or the head when `entry` is the last one).
///
/// IRQL: any. # Safety: `entry` is linked in a list protected by the caller's lock.
#[inline]
pub(crate) unsafe fn list_next(entry: *mut ListEntry) -> *mut ListEntry {
    // SAFETY: forwarded caller contract.
    unsafe { imp::list_next(entry) }
}

/// `InsertTailList(head, entry)`.
///
/// IRQL: any. # Safety: `head` is an initialized list protected by the caller's lock; `entry`
/// is not linked anywhere.
#[inline]
pub(crate) unsafe fn list_insert_tail(head: *mut ListEntry, entry: *mut ListEntry) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::list_insert_tail(head, entry) }
}

/// Links `entry` just before `before` (`InsertTailList(before, entry)`, since the list is
/// circular).
///
/// IRQL: any. # Safety: as [`list_insert_tail`], `before` being linked in that list (or its head).
#[inline]
pub(crate) unsafe fn list_insert_before(before: *mut ListEntry, entry: *mut ListEntry) {
    // SAFETY: inserting at the "tail" of the circular list that starts at `before` links
    // `entry` between `before->Blink` and `before`.
    unsafe { imp::list_insert_tail(before, entry) }
}

/// `RemoveEntryList(entry)`.
///
/// IRQL: any. # Safety: `entry` is linked in a list protected by the caller's lock.
#[inline]
pub(crate) unsafe fn list_remove(entry: *mut ListEntry) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::list_remove(entry) }
}

// ---------------------------------------------------------------------------------------------
// Cancel-safe queues (spec A.9).

/// `IoCsqInitializeEx` with the six callbacks. Returns STATUS_SUCCESS (spec A.9.2).
///
/// IRQL: <= DISPATCH_LEVEL. # Safety: `csq` is valid for writes, non-paged, and does not move
/// until no IRP can reach it any more.
#[inline]
pub(crate) unsafe fn csq_initialize_ex(csq: *mut IoCsq, callbacks: CsqCallbacks) -> Ntstatus {
    // SAFETY: forwarded caller contract.
    unsafe { imp::csq_initialize_ex(csq, callbacks) }
}

/// `IoCsqInsertIrpEx` (spec A.9.3): returns the insert callback's status; on an NT error the
/// IRP was not queued and still belongs to the caller, otherwise it was queued and marked
/// pending (and may already be completed).
///
/// IRQL: <= DISPATCH_LEVEL. # Safety: `csq` is initialized; the caller owns `irp`; `context` is
/// null or a context that stays valid until the IRP is removed or passed to
/// `CsqCompleteCanceledIrp` (spec A.9.5); `insert_context` is what the insert callback expects.
#[inline]
pub(crate) unsafe fn csq_insert_irp_ex(
    csq: *mut IoCsq,
    irp: *mut Irp,
    context: *mut CsqIrpContext,
    insert_context: *mut c_void,
) -> Ntstatus {
    // SAFETY: forwarded caller contract.
    unsafe { imp::csq_insert_irp_ex(csq, irp, context, insert_context) }
}

/// `IoCsqRemoveIrp` (spec A.9.5): the IRP tracked by `context`, or null.
///
/// IRQL: <= DISPATCH_LEVEL. # Safety: `csq` is initialized and `context` was passed to
/// [`csq_insert_irp_ex`] for this queue and is still valid.
#[inline]
pub(crate) unsafe fn csq_remove_irp(csq: *mut IoCsq, context: *mut CsqIrpContext) -> *mut Irp {
    // SAFETY: forwarded caller contract.
    unsafe { imp::csq_remove_irp(csq, context) }
}

/// `IoCsqRemoveNextIrp` (spec A.9.4): the first queued IRP that the peek callback matches with
/// `peek_context`, no longer cancelable, or null.
///
/// IRQL: <= DISPATCH_LEVEL. # Safety: `csq` is initialized; `peek_context` is what the peek
/// callback expects.
#[inline]
pub(crate) unsafe fn csq_remove_next_irp(csq: *mut IoCsq, peek_context: *mut c_void) -> *mut Irp {
    // SAFETY: forwarded caller contract.
    unsafe { imp::csq_remove_next_irp(csq, peek_context) }
}

// ---------------------------------------------------------------------------------------------
// IRQL and spin locks.

/// `KeGetCurrentIrql`.
///
/// IRQL: any.
#[inline]
pub(crate) fn current_irql() -> Kirql {
    imp::current_irql()
}

/// `KeInitializeSpinLock`.
///
/// IRQL: any. # Safety: `lock` is valid for writes.
#[inline]
pub(crate) unsafe fn spin_lock_init(lock: *mut KSpinLock) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::spin_lock_init(lock) }
}

/// `KeAcquireSpinLockRaiseToDpc`: returns the previous IRQL.
///
/// IRQL: <= DISPATCH_LEVEL. # Safety: `lock` is initialized, not held by this CPU, and stays
/// valid while held.
#[inline]
pub(crate) unsafe fn spin_lock_acquire(lock: *mut KSpinLock) -> Kirql {
    // SAFETY: forwarded caller contract.
    unsafe { imp::spin_lock_acquire(lock) }
}

/// `KeReleaseSpinLock(lock, irql)`.
///
/// IRQL: DISPATCH_LEVEL. # Safety: the caller holds `lock` and `irql` is what its acquire
/// returned.
#[inline]
pub(crate) unsafe fn spin_lock_release(lock: *mut KSpinLock, irql: Kirql) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::spin_lock_release(lock, irql) }
}

/// `KeAcquireSpinLockAtDpcLevel`.
///
/// IRQL: DISPATCH_LEVEL. # Safety: as [`spin_lock_acquire`], at DISPATCH_LEVEL.
#[inline]
pub(crate) unsafe fn spin_lock_acquire_at_dpc(lock: *mut KSpinLock) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::spin_lock_acquire_at_dpc(lock) }
}

/// `KeReleaseSpinLockFromDpcLevel`.
///
/// IRQL: DISPATCH_LEVEL. # Safety: the caller holds `lock`, acquired at DISPATCH_LEVEL.
#[inline]
pub(crate) unsafe fn spin_lock_release_from_dpc(lock: *mut KSpinLock) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::spin_lock_release_from_dpc(lock) }
}

// ---------------------------------------------------------------------------------------------
// Dispatcher objects and waits (spec A.14–A.16).

/// `KeInitializeEvent(event, Notification|Synchronization, signaled)`.
///
/// IRQL: any. # Safety: `event` is valid for writes and nobody waits on it.
#[inline]
pub(crate) unsafe fn event_init(event: *mut KEvent, notification: bool, signaled: bool) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::event_init(event, notification, signaled) }
}

/// `KeSetEvent(event, IO_NO_INCREMENT, FALSE)`: returns whether it was signaled before.
///
/// IRQL: <= DISPATCH_LEVEL. # Safety: `event` is an initialized event.
#[inline]
pub(crate) unsafe fn event_set(event: *mut KEvent) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { imp::event_set(event) }
}

/// `KeResetEvent`: returns whether it was signaled before.
///
/// IRQL: <= DISPATCH_LEVEL. # Safety: `event` is an initialized event.
#[inline]
pub(crate) unsafe fn event_reset(event: *mut KEvent) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { imp::event_reset(event) }
}

/// `KeReadStateEvent != 0`.
///
/// IRQL: any. # Safety: `event` is an initialized event.
#[inline]
pub(crate) unsafe fn event_read(event: *mut KEvent) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { imp::event_read(event) }
}

/// `KeInitializeSemaphore`.
///
/// IRQL: any. # Safety: `sem` is valid for writes and nobody waits on it.
#[inline]
pub(crate) unsafe fn semaphore_init(sem: *mut KSemaphore, count: i32, limit: i32) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::semaphore_init(sem, count, limit) }
}

/// `KeReleaseSemaphore(sem, IO_NO_INCREMENT, adjustment, FALSE)`: the previous count.
///
/// IRQL: <= DISPATCH_LEVEL. # Safety: `sem` is an initialized semaphore.
#[inline]
pub(crate) unsafe fn semaphore_release(sem: *mut KSemaphore, adjustment: i32) -> i32 {
    // SAFETY: forwarded caller contract.
    unsafe { imp::semaphore_release(sem, adjustment) }
}

/// `KeReadStateSemaphore`.
///
/// IRQL: any. # Safety: `sem` is an initialized semaphore.
#[inline]
pub(crate) unsafe fn semaphore_read(sem: *mut KSemaphore) -> i32 {
    // SAFETY: forwarded caller contract.
    unsafe { imp::semaphore_read(sem) }
}

/// `KeWaitForSingleObject(object, Executive, KernelMode, FALSE, timeout)`; `None` waits forever,
/// `Some(t)` is a kernel timeout (negative relative, 100 ns). Returns STATUS_SUCCESS or
/// STATUS_TIMEOUT.
///
/// IRQL: <= APC_LEVEL, or <= DISPATCH_LEVEL with `Some(0)`. # Safety: `object` is a live
/// dispatcher object.
#[inline]
pub(crate) unsafe fn wait_single(object: *mut c_void, timeout: Option<i64>) -> Ntstatus {
    // SAFETY: forwarded caller contract.
    unsafe { imp::wait_single(object, timeout) }
}

/// `KeWaitForMultipleObjects(n, objects, WaitAny, Executive, KernelMode, FALSE, timeout, NULL)`
/// with at most 3 objects (THREAD_WAIT_OBJECTS, so no wait block array is needed). Returns
/// STATUS_WAIT_0 + index or STATUS_TIMEOUT.
///
/// IRQL: as [`wait_single`]. # Safety: every pointer is a live dispatcher object.
#[inline]
pub(crate) unsafe fn wait_any(objects: &[*mut c_void], timeout: Option<i64>) -> Ntstatus {
    assert!(
        !objects.is_empty() && objects.len() <= 3,
        "wait_any waits on 1 to 3 objects"
    );
    // SAFETY: forwarded caller contract.
    unsafe { imp::wait_any(objects, timeout) }
}

/// `KeDelayExecutionThread(KernelMode, FALSE, interval)`.
///
/// IRQL: <= APC_LEVEL.
#[inline]
pub(crate) fn delay(interval: i64) {
    imp::delay(interval);
}

/// `KeInitializeTimerEx(timer, Notification|Synchronization)`.
///
/// IRQL: <= DISPATCH_LEVEL. # Safety: `timer` is valid for writes and not inserted.
#[inline]
pub(crate) unsafe fn timer_init(timer: *mut KTimer, notification: bool) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::timer_init(timer, notification) }
}

/// `KeSetTimerEx(timer, due, period_ms, dpc)`: whether the timer was already set.
///
/// IRQL: <= DISPATCH_LEVEL. # Safety: `timer` (and `dpc`, if not null) are initialized and stay
/// valid while the timer is inserted or its DPC queued or running.
#[inline]
pub(crate) unsafe fn timer_set(
    timer: *mut KTimer,
    due: i64,
    period_ms: i32,
    dpc: *mut KDpc,
) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { imp::timer_set(timer, due, period_ms, dpc) }
}

/// `KeCancelTimer`: TRUE if it was inserted (its expiry will not happen), spec A.12.4.
///
/// IRQL: <= DISPATCH_LEVEL. # Safety: `timer` is initialized.
#[inline]
pub(crate) unsafe fn timer_cancel(timer: *mut KTimer) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { imp::timer_cancel(timer) }
}

/// `KeReadStateTimer`.
///
/// IRQL: any. # Safety: `timer` is initialized.
#[inline]
pub(crate) unsafe fn timer_read(timer: *mut KTimer) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { imp::timer_read(timer) }
}

/// `KeInitializeDpc(dpc, routine, context)`.
///
/// IRQL: any. # Safety: `dpc` is valid for writes and not queued; `routine` may be called with
/// `context` at DISPATCH_LEVEL on any CPU until the DPC is neither queued nor running.
#[inline]
pub(crate) unsafe fn dpc_init(dpc: *mut KDpc, routine: DpcFn, context: *mut c_void) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::dpc_init(dpc, routine, context) }
}

/// `KeInsertQueueDpc(dpc, NULL, NULL)`: FALSE if it was already queued.
///
/// IRQL: any. # Safety: `dpc` is initialized and stays valid until it ran or was removed.
#[inline]
pub(crate) unsafe fn dpc_insert(dpc: *mut KDpc) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { imp::dpc_insert(dpc) }
}

/// `KeRemoveQueueDpc`: TRUE if it was queued (it then will not run for that insertion).
///
/// IRQL: any. # Safety: `dpc` is initialized.
#[inline]
pub(crate) unsafe fn dpc_remove(dpc: *mut KDpc) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { imp::dpc_remove(dpc) }
}

/// `KeFlushQueuedDpcs`: returns once every DPC queued (or running) at the call has finished.
///
/// IRQL: PASSIVE_LEVEL.
#[inline]
pub(crate) fn flush_queued_dpcs() {
    imp::flush_queued_dpcs();
}

// ---------------------------------------------------------------------------------------------
// Threads and objects.

/// `PsCreateSystemThread` + `ObReferenceObjectByHandle(PsThreadType, KernelMode)` + `ZwClose`:
/// a referenced thread object running `start(context)` at PASSIVE_LEVEL. Errors are
/// PsCreateSystemThread's (e.g. STATUS_INSUFFICIENT_RESOURCES).
///
/// IRQL: PASSIVE_LEVEL. # Safety: `start` may be called with `context` on another thread until
/// the thread object is signaled.
#[inline]
pub(crate) unsafe fn thread_create(
    start: ThreadStartFn,
    context: *mut c_void,
) -> Result<*mut KThread, Ntstatus> {
    // SAFETY: forwarded caller contract.
    unsafe { imp::thread_create(start, context) }
}

/// `ObDereferenceObject`.
///
/// IRQL: <= DISPATCH_LEVEL. # Safety: the caller holds a reference to `object` and gives it up.
#[inline]
pub(crate) unsafe fn object_dereference(object: *mut c_void) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::object_dereference(object) }
}

/// `ObReferenceObjectByHandle(handle, SYNCHRONIZE | EVENT_MODIFY_STATE, *ExEventObjectType,
/// mode)` (spec A.14): a referenced event, or STATUS_INVALID_HANDLE,
/// STATUS_OBJECT_TYPE_MISMATCH, STATUS_ACCESS_DENIED.
///
/// IRQL: PASSIVE_LEVEL, in the context of the process that owns `handle`.
#[inline]
pub(crate) fn event_reference_by_handle(handle: usize, mode: i8) -> Result<*mut KEvent, Ntstatus> {
    imp::event_reference_by_handle(handle, mode)
}

// ---------------------------------------------------------------------------------------------
// Drivers and devices.

/// Creates a device with a `\Device\` name whose DACL is `access`: on Windows
/// `IoCreateDevice` then the DACL built from `SeExports`' SIDs and set with
/// `ObSetSecurityObjectByPointer` (the device is deleted again if that fails); on ntsim
/// `IoCreateDeviceSecure` with `access`'s SDDL string. Returns STATUS_OBJECT_NAME_COLLISION,
/// STATUS_INSUFFICIENT_RESOURCES, or the error of setting the security descriptor.
///
/// IRQL: PASSIVE_LEVEL. # Safety: `driver` is the caller's driver object.
#[inline]
pub(crate) unsafe fn device_create(
    driver: *mut DriverObject,
    extension_size: u32,
    name: &[u16],
    device_type: u32,
    characteristics: u32,
    exclusive: bool,
    access: DeviceAccess,
) -> Result<*mut DeviceObject, Ntstatus> {
    // SAFETY: forwarded caller contract.
    unsafe {
        imp::device_create(
            driver,
            extension_size,
            name,
            device_type,
            characteristics,
            exclusive,
            access,
        )
    }
}

/// `DeviceObject->DeviceExtension`.
///
/// IRQL: any. # Safety: `device` is a live device object.
#[inline]
pub(crate) unsafe fn device_extension(device: *mut DeviceObject) -> *mut c_void {
    // SAFETY: forwarded caller contract.
    unsafe { imp::device_extension(device) }
}

/// Sets `DO_BUFFERED_IO` if asked and clears `DO_DEVICE_INITIALIZING`.
///
/// IRQL: PASSIVE_LEVEL. # Safety: `device` is a device object of the caller's driver.
#[inline]
pub(crate) unsafe fn device_finish_init(device: *mut DeviceObject, buffered_io: bool) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::device_finish_init(device, buffered_io) }
}

/// `IoDeleteDevice`.
///
/// IRQL: PASSIVE_LEVEL. # Safety: `device` is a device object of the caller's driver that
/// nothing uses any more.
#[inline]
pub(crate) unsafe fn device_delete(device: *mut DeviceObject) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::device_delete(device) }
}

/// `DriverObject->DeviceObject` (the first of the driver's devices, or null).
///
/// IRQL: PASSIVE_LEVEL. # Safety: `driver` is the caller's driver object.
#[inline]
pub(crate) unsafe fn driver_first_device(driver: *mut DriverObject) -> *mut DeviceObject {
    // SAFETY: forwarded caller contract.
    unsafe { imp::driver_first_device(driver) }
}

/// `IoCreateSymbolicLink(link, target)`: STATUS_SUCCESS or STATUS_OBJECT_NAME_COLLISION.
///
/// IRQL: PASSIVE_LEVEL.
#[inline]
pub(crate) fn symbolic_link_create(link: &[u16], target: &[u16]) -> Ntstatus {
    imp::symbolic_link_create(link, target)
}

/// `IoDeleteSymbolicLink(link)`.
///
/// IRQL: PASSIVE_LEVEL.
#[inline]
pub(crate) fn symbolic_link_delete(link: &[u16]) -> Ntstatus {
    imp::symbolic_link_delete(link)
}

/// `DriverObject->MajorFunction[major] = routine`.
///
/// IRQL: PASSIVE_LEVEL (DriverEntry). # Safety: `driver` is the caller's driver object, during
/// DriverEntry.
#[inline]
pub(crate) unsafe fn driver_set_dispatch(
    driver: *mut DriverObject,
    major: usize,
    routine: DispatchFn,
) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::driver_set_dispatch(driver, major, routine) }
}

/// `DriverObject->DriverUnload = routine`.
///
/// IRQL: PASSIVE_LEVEL (DriverEntry). # Safety: as [`driver_set_dispatch`].
#[inline]
pub(crate) unsafe fn driver_set_unload(driver: *mut DriverObject, routine: UnloadFn) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::driver_set_unload(driver, routine) }
}

// ---------------------------------------------------------------------------------------------
// IoStartPacket / StartIo (spec A.11) and the cancel spin lock (spec A.3, A.5).

/// A StartIo routine (`DRIVER_STARTIO`).
pub(crate) type StartIoFn = unsafe extern "system" fn(device: *mut DeviceObject, irp: *mut Irp);

/// The current stack location's `DeviceObject` (the device the IRP was sent to).
///
/// IRQL: any. # Safety: as [`irp_major_function`].
#[inline]
pub(crate) unsafe fn irp_device_object(irp: *mut Irp) -> *mut DeviceObject {
    // SAFETY: forwarded caller contract.
    unsafe { imp::irp_device_object(irp) }
}

/// `Irp->CancelIrql`: the IRQL a cancel routine releases the cancel spin lock to (spec A.4).
///
/// IRQL: any. # Safety: `irp` is a live IRP whose cancel routine is running (the caller).
#[inline]
pub(crate) unsafe fn irp_cancel_irql(irp: *mut Irp) -> Kirql {
    // SAFETY: forwarded caller contract.
    unsafe { imp::irp_cancel_irql(irp) }
}

/// `IoAcquireCancelSpinLock`: raises to DISPATCH_LEVEL; returns the previous IRQL.
///
/// IRQL: <= DISPATCH_LEVEL; the caller must not hold the cancel spin lock.
#[inline]
pub(crate) fn cancel_lock_acquire() -> Kirql {
    imp::cancel_lock_acquire()
}

/// `IoReleaseCancelSpinLock(irql)`.
///
/// IRQL: DISPATCH_LEVEL. # Safety: the caller holds the cancel spin lock (acquired by itself,
/// or handed to its cancel routine by IoCancelIrp/IoStartPacket).
#[inline]
pub(crate) unsafe fn cancel_lock_release(irql: Kirql) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::cancel_lock_release(irql) }
}

/// `KeRaiseIrql(DISPATCH_LEVEL, &old)`: returns the previous IRQL.
///
/// IRQL: <= DISPATCH_LEVEL.
#[inline]
pub(crate) fn irql_raise_to_dispatch() -> Kirql {
    imp::irql_raise_to_dispatch()
}

/// `KeLowerIrql(irql)`.
///
/// IRQL: >= `irql`. # Safety: `irql` is what the matching raise returned, and no spin lock
/// taken since then is still held.
#[inline]
pub(crate) unsafe fn irql_lower(irql: Kirql) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::irql_lower(irql) }
}

/// `KeRemoveEntryDeviceQueue(&Device->DeviceQueue, &Irp->Tail.Overlay.DeviceQueueEntry)`:
/// whether the IRP was queued (spec A.10).
///
/// IRQL: <= DISPATCH_LEVEL. # Safety: `device` is live; `irp` is a live IRP that was given to
/// IoStartPacket for it.
#[inline]
pub(crate) unsafe fn device_queue_remove_irp(device: *mut DeviceObject, irp: *mut Irp) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { imp::device_queue_remove_irp(device, irp) }
}

/// The IRP after `after` in `device`'s device queue (`DeviceQueue.DeviceListHead`, through
/// `Irp->Tail.Overlay.DeviceQueueEntry`), or the first one when `after` is null; null at the
/// end. Oldest first, for a queue filled by `IoStartPacket` without keys.
///
/// IRQL: DISPATCH_LEVEL, holding the cancel spin lock, which every IoStartPacket,
/// IoStartNextPacket(Cancelable = TRUE) and cancel routine of a cancelable StartIo device holds
/// while it changes the queue. # Safety: `device` is live; `after` is null or queued on it.
#[inline]
pub(crate) unsafe fn device_queue_next_irp(device: *mut DeviceObject, after: *mut Irp) -> *mut Irp {
    // SAFETY: forwarded caller contract.
    unsafe { imp::device_queue_next_irp(device, after) }
}

/// `IoStartPacket(device, irp, key, cancel)` (spec A.11.1).
///
/// IRQL: <= DISPATCH_LEVEL. # Safety: `device` is live and its driver has a StartIo; the
/// caller owns `irp`, routed to `device`, marked pending, and gives it up.
#[inline]
pub(crate) unsafe fn start_packet(
    device: *mut DeviceObject,
    irp: *mut Irp,
    key: Option<u32>,
    cancel: DispatchCancelFn,
) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::start_packet(device, irp, key, cancel) }
}

/// `IoStartNextPacket(device, cancelable)` (spec A.11.2).
///
/// IRQL: DISPATCH_LEVEL. # Safety: `device` is live and its driver has a StartIo.
#[inline]
pub(crate) unsafe fn start_next_packet(device: *mut DeviceObject, cancelable: bool) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::start_next_packet(device, cancelable) }
}

/// `IoSetStartIoAttributes(device, deferred, non_cancelable)` (spec A.11.3).
///
/// IRQL: any. # Safety: `device` is a live device object.
#[inline]
pub(crate) unsafe fn set_start_io_attributes(
    device: *mut DeviceObject,
    deferred: bool,
    non_cancelable: bool,
) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::set_start_io_attributes(device, deferred, non_cancelable) }
}

/// `DriverObject->DriverStartIo = routine`.
///
/// IRQL: PASSIVE_LEVEL. # Safety: `driver` is the caller's driver object, and no IRP has been
/// started on its devices yet.
#[inline]
pub(crate) unsafe fn driver_set_start_io(driver: *mut DriverObject, routine: StartIoFn) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::driver_set_start_io(driver, routine) }
}

/// `DeviceObject->DriverObject`.
///
/// IRQL: any. # Safety: `device` is a live device object.
#[inline]
pub(crate) unsafe fn device_driver(device: *mut DeviceObject) -> *mut DriverObject {
    // SAFETY: forwarded caller contract.
    unsafe { imp::device_driver(device) }
}

// ---------------------------------------------------------------------------------------------
// Remove locks (spec A.17). One tag (null) for every acquisition.

/// `IoInitializeRemoveLock(lock, tag, 0, 0)`.
///
/// IRQL: PASSIVE_LEVEL. # Safety: `lock` is valid for writes and never re-initialized.
#[inline]
pub(crate) unsafe fn remove_lock_init(lock: *mut RemoveLockObject, tag: u32) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::remove_lock_init(lock, tag) }
}

/// `IoAcquireRemoveLock(lock, NULL)`: STATUS_SUCCESS or STATUS_DELETE_PENDING.
///
/// IRQL: <= DISPATCH_LEVEL. # Safety: `lock` is initialized.
#[inline]
pub(crate) unsafe fn remove_lock_acquire(lock: *mut RemoveLockObject) -> Ntstatus {
    // SAFETY: forwarded caller contract.
    unsafe { imp::remove_lock_acquire(lock) }
}

/// `IoReleaseRemoveLock(lock, NULL)`.
///
/// IRQL: <= DISPATCH_LEVEL. # Safety: the caller holds an acquisition.
#[inline]
pub(crate) unsafe fn remove_lock_release(lock: *mut RemoveLockObject) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::remove_lock_release(lock) }
}

/// `IoReleaseRemoveLockAndWait(lock, NULL)`.
///
/// IRQL: PASSIVE_LEVEL. # Safety: the caller holds an acquisition and gives it up.
#[inline]
pub(crate) unsafe fn remove_lock_release_and_wait(lock: *mut RemoveLockObject) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::remove_lock_release_and_wait(lock) }
}

// ---------------------------------------------------------------------------------------------
// Kernel image glue (Windows only: `crate::image`).

/// `KeBugCheckEx(code, p1, p2, p3, p4)`: stops the machine.
///
/// IRQL: any.
#[cfg(windows)]
#[inline]
pub(crate) fn bug_check(code: u32, p1: usize, p2: usize, p3: usize, p4: usize) -> ! {
    imp::bug_check(code, p1, p2, p3, p4)
}

/// `ExAllocatePool2` of non-paged pool (zeroed or not): 16-byte aligned, or null.
///
/// IRQL: <= DISPATCH_LEVEL.
#[cfg(windows)]
#[inline]
pub(crate) fn image_pool_alloc(size: usize, tag: u32, zeroed: bool) -> *mut u8 {
    imp::image_pool_alloc(size, tag, zeroed)
}

/// `ExFreePoolWithTag`.
///
/// IRQL: <= DISPATCH_LEVEL. # Safety: `p` came from [`image_pool_alloc`] with `tag` and
/// nothing uses it any more.
#[cfg(windows)]
#[inline]
pub(crate) unsafe fn image_pool_free(p: *mut u8, tag: u32) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::image_pool_free(p, tag) }
}

// ---------------------------------------------------------------------------------------------
// Diagnostics.

/// What a framework-detected driver bug is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DriverBug {
    /// An `Irp` was dropped without completing or handing off the IRP.
    IrpDropped,
    /// A tracked-IRP ticket was dropped without giving it back.
    TicketDropped,
}

/// Reports a driver bug: through the verifier on ntsim, with `DbgPrint` on Windows.
///
/// IRQL: any.
#[inline]
pub(crate) fn report_driver_bug(bug: DriverBug, irp: *mut Irp, message: &str) {
    imp::report_driver_bug(bug, irp, message);
}

/// `DbgPrint("%.*s", message)`.
///
/// IRQL: any.
#[inline]
pub(crate) fn debug_print(message: &str) {
    imp::debug_print(message);
}

/// A test-only control point named `name`, placed in the crate where a test must be able to
/// stop a thread to force a race (spec A.18). On ntsim it is a switch point where a breakpoint
/// at `Point::Named(name)` parks the thread; on Windows it is empty and compiles to nothing.
///
/// IRQL: any.
#[inline(always)]
pub(crate) fn control_point(name: &'static str) {
    imp::control_point(name);
}

// ---------------------------------------------------------------------------------------------
// Pool.

/// `ExAllocatePool2(POOL_FLAG_NON_PAGED, size, tag)`: `size` zeroed bytes of non-paged pool,
/// 16-byte aligned on x64, or NULL when the pool is exhausted.
///
/// IRQL: <= DISPATCH_LEVEL.
#[inline]
pub(crate) fn pool_alloc(size: usize, tag: u32) -> *mut c_void {
    imp::pool_alloc(size, tag)
}

/// `ExFreePoolWithTag`.
///
/// IRQL: <= DISPATCH_LEVEL. # Safety: `p` came from [`pool_alloc`] with `tag` and nothing uses
/// it any more.
#[inline]
pub(crate) unsafe fn pool_free(p: *mut c_void, tag: u32) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::pool_free(p, tag) }
}
