//! The StartIo wrapper: `IoStartPacket` / `IoStartNextPacket` / StartIo in safe Rust, with the
//! cancel routine and the handshakes of spec A.11.4 and B.5 E2a implemented once, by the crate.
//!
//! A device that uses it is created with
//! [`DriverObject::create_startio_device`](crate::DriverObject::create_startio_device); its
//! extension implements [`StartIoHandler`] and embeds a [`StartIoQueue`]. The dispatch routine
//! hands requests to [`StartIoQueue::start_packet`]; the kernel serializes them through the
//! device queue and calls [`StartIoHandler::start_io`] at DISPATCH_LEVEL with the request as an
//! owned [`InService`] token. The handler either completes it at once
//! ([`InService::complete`]) or leaves it in service, cancelable, until a completion source
//! (typically the device's timer DPC) claims it ([`StartIoQueue::claim_expired`],
//! [`StartIoQueue::claim`]) and completes the [`Claimed`] request. Every completion through
//! this module starts the next packet itself, after the completion (the order of
//! `docs/timer-event-design.md`).
//!
//! # Who owns the request (spec A.3, A.11.4, B.5 E2a)
//!
//! All bookkeeping below is protected by the cancel spin lock, the lock IoCancelIrp holds when
//! it calls the cancel routine, so it is consistent with every `CancelRoutine` exchange.
//!
//! | moment | cancel routine installed | a cancellation is handled by |
//! |---|---|---|
//! | queued in the device queue | yes (IoStartPacket) | the cancel routine: `KeRemoveEntryDeviceQueue`, complete |
//! | current, before StartIo's check | yes | the cancel routine: complete; StartIo then sees it was cancelled and leaves it alone; the later of the two starts the next packet (P1) |
//! | inside [`StartIoHandler::start_io`] | no (StartIo took it) | StartIo: `Irp->Cancel` is checked when the request is left in service |
//! | in service, waiting for its completion source | yes | the cancel routine: [`StartIoHandler::cancelled_in_service`], complete, start next |
//! | claimed by the completion source | no | the claimer ([`Claimed`]) |
//!
//! An IRP cancelled before IoStartPacket installed the routine (IoCancelIrp returned FALSE)
//! reaches StartIo with `Cancel` set and its routine in place: StartIo owns it and completes it
//! with `STATUS_CANCELLED` (P2), instead of leaving it hanging.
//!
//! A request whose handle was cleaned up ([`StartIoQueue::cancel_file`]) after an
//! IoStartNextPacket took it out of the device queue, but before it was put in service, is
//! completed with `STATUS_CANCELLED` by StartIo (or when StartIo leaves it in service), never
//! served: the cleanup records its file object until [`StartIoQueue::file_closed`].
//!
//! The cancel routine tells these moments apart by the wrapper's own state (the request in
//! service) and by the device queue (`KeRemoveEntryDeviceQueue` says whether the IRP was
//! queued), never by comparing the IRP with `DeviceObject->CurrentIrp`: after a completion and
//! until the `IoStartNextPacket` that follows it, `CurrentIrp` names the completed IRP, whose
//! address a new IRP may already have.

use core::cell::UnsafeCell;
use core::fmt;
use core::ops::Deref;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use crate::device::{DeviceHandler, startio_cancel_trampoline};
use crate::irp::{Irp, IrpView, Pending};
use crate::irql::DispatchLevel;
use crate::status::NtStatus;
use crate::sys;
use crate::timer::{Timer, TimerCallback};
use crate::wait::Interval;

/// The StartIo side of a device created with
/// [`DriverObject::create_startio_device`](crate::DriverObject::create_startio_device).
///
/// `start_io` runs at DISPATCH_LEVEL, in an arbitrary thread (spec A.11.1: IoStartPacket raises
/// before calling it, IoStartNextPacket runs at DISPATCH_LEVEL): it must not wait (P4), and the
/// [`DispatchLevel`] token it gets says so to the functions that care.
pub trait StartIoHandler: DeviceHandler {
    /// Whether the request in service is non-cancelable (`IoSetStartIoAttributes(..,
    /// NonCancelable = TRUE)`): a cancellation then waits until the completion source completes
    /// it. Default `false`: the request in service stays cancelable (spec B.5 E2).
    const NON_CANCELABLE: bool = false;

    /// The device's [`StartIoQueue`], embedded in the extension.
    ///
    /// IRQL: any.
    fn start_io_queue(&self) -> &StartIoQueue;

    /// StartIo: the request entering service. Complete it at once with
    /// [`InService::complete`], or start the work and leave it in service with
    /// [`InService::arm_timer`] / [`InService::keep`]; a completion source then claims it.
    ///
    /// IRQL: DISPATCH_LEVEL. It must not wait, nor touch pageable memory.
    fn start_io(&self, request: InService<'_>, level: DispatchLevel<'_>);

    /// The request in service (tagged `tag`) is being cancelled: stop its work (e.g. cancel the
    /// timer; `Timer::cancel`'s result does not matter, ownership was decided already). The
    /// crate then completes the request with `STATUS_CANCELLED` and starts the next packet.
    ///
    /// IRQL: DISPATCH_LEVEL, in the canceller's context, cancel spin lock not held.
    fn cancelled_in_service(&self, tag: ServiceTag, level: DispatchLevel<'_>) {
        let _ = (tag, level);
    }
}

/// The generation of one entry into service: each request StartIo accepts gets a new tag, so a
/// completion source that was armed for an earlier request (a stale DPC, spec B.5 P5) can be
/// told apart.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ServiceTag(u64);

impl ServiceTag {
    /// The generation number (1 for the first request the device served).
    ///
    /// IRQL: any.
    #[must_use]
    pub const fn generation(self) -> u64 {
        self.0
    }
}

/// What the cancel spin lock protects.
struct State {
    /// Generations handed out so far.
    generation: u64,
    /// The request left in service (cancelable), or null.
    in_service: *mut sys::Irp,
    /// Its tag.
    tag: u64,
    /// Whether its timer was armed through [`InService::arm_timer`].
    armed: bool,
    /// The current IRP whose cancel routine took it before StartIo looked at it (P1); null
    /// otherwise. Never dereferenced: it may be completed and freed.
    cancelling: *mut sys::Irp,
    /// While a P1 cancellation is under way: how many of its two parties — the cancel routine
    /// completing the IRP, and StartIo called for it — have not finished yet. Nobody starts a
    /// packet meanwhile, so a StartIo call made then is certainly that IRP's; the last party
    /// starts the next packet.
    p1_parties: u8,
    /// The file objects (addresses; 0 = free slot) whose requests
    /// [`StartIoQueue::cancel_file`] cancelled and whose `IRP_MJ_CLOSE` has not come yet
    /// ([`StartIoQueue::file_closed`]). A request of one of them that reaches StartIo, or is
    /// left in service, is cancelled there: it was taken out of the device queue by an
    /// IoStartNextPacket on another CPU before the cleanup looked (see `cancel_file`).
    cleaned_up: [usize; CLEANED_UP_FILES],
}

/// How many file objects can be between their cleanup and their close at once (see
/// [`StartIoQueue::cancel_file`] for what happens beyond).
const CLEANED_UP_FILES: usize = 8;

impl State {
    /// Whether `irp` (live) was sent on a file object whose cleanup cancelled its requests.
    fn of_cleaned_up_file(&self, irp: *mut sys::Irp) -> bool {
        // SAFETY: a live IRP (the caller holds it, under the cancel spin lock).
        let file = unsafe { sys::irp_file_object(irp) } as usize;
        file != 0 && self.cleaned_up.contains(&file)
    }
}

/// The StartIo bookkeeping of one device: embed it in the device extension (it needs no
/// pinning and allocates nothing) and return it from [`StartIoHandler::start_io_queue`].
///
/// The queue itself is the kernel's device queue (`DeviceObject->DeviceQueue`); this value holds
/// what the crate needs besides: the request in service and its tag, protected by the cancel
/// spin lock.
///
/// # Who owns the request (spec A.3, A.11.4, B.5 E2a)
///
/// All bookkeeping below is protected by the cancel spin lock, the lock IoCancelIrp holds when
/// it calls the cancel routine, so it is consistent with every `CancelRoutine` exchange.
///
/// | moment | cancel routine installed | a cancellation is handled by |
/// |---|---|---|
/// | queued in the device queue | yes (IoStartPacket) | the cancel routine: `KeRemoveEntryDeviceQueue`, complete |
/// | current, before StartIo's check | yes | the cancel routine: complete; StartIo then sees it was cancelled and leaves it alone; the later of the two starts the next packet (P1) |
/// | inside [`StartIoHandler::start_io`] | no (StartIo took it) | StartIo: `Irp->Cancel` is checked when the request is left in service |
/// | in service, waiting for its completion source | yes | the cancel routine: [`StartIoHandler::cancelled_in_service`], complete, start next |
/// | claimed by the completion source | no | the claimer ([`Claimed`]) |
///
/// An IRP cancelled before IoStartPacket installed the routine (IoCancelIrp returned FALSE)
/// reaches StartIo with `Cancel` set and its routine in place: StartIo owns it and completes it
/// with `STATUS_CANCELLED` (P2), instead of leaving it hanging.
pub struct StartIoQueue {
    state: UnsafeCell<State>,
    device: AtomicPtr<sys::DeviceObject>,
    non_cancelable: AtomicBool,
    attributes_set: AtomicBool,
}

// SAFETY: `state` is only accessed with the cancel spin lock held (one CPU at a time); the
// rest is atomic.
unsafe impl Send for StartIoQueue {}
// SAFETY: as above.
unsafe impl Sync for StartIoQueue {}

impl Default for StartIoQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for StartIoQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartIoQueue").finish_non_exhaustive()
    }
}

/// The cancel spin lock, held.
struct CancelLock {
    irql: sys::Kirql,
}

impl CancelLock {
    fn acquire() -> CancelLock {
        CancelLock {
            irql: sys::cancel_lock_acquire(),
        }
    }

    /// The lock a cancel routine is entered with (spec A.5).
    ///
    /// # Safety
    /// The caller is a cancel routine for `irp`, entered with the cancel spin lock held.
    unsafe fn handed_to_cancel_routine(irp: *mut sys::Irp) -> CancelLock {
        CancelLock {
            // SAFETY: caller contract.
            irql: unsafe { sys::irp_cancel_irql(irp) },
        }
    }

    /// Releases the lock back to the IRQL it was taken at.
    fn release(self) {
        // SAFETY: this value stands for the held lock.
        unsafe { sys::cancel_lock_release(self.irql) };
    }

    /// Releases the lock but stays at DISPATCH_LEVEL; returns the IRQL to lower to later.
    fn release_staying_at_dispatch(self) -> sys::Kirql {
        // SAFETY: this value stands for the held lock.
        unsafe { sys::cancel_lock_release(sys::DISPATCH_LEVEL) };
        self.irql
    }
}

impl StartIoQueue {
    /// An empty queue (not yet attached to a device).
    ///
    /// IRQL: any.
    #[must_use]
    pub const fn new() -> StartIoQueue {
        StartIoQueue {
            state: UnsafeCell::new(State {
                generation: 0,
                in_service: ptr::null_mut(),
                tag: 0,
                armed: false,
                cancelling: ptr::null_mut(),
                p1_parties: 0,
                cleaned_up: [0; CLEANED_UP_FILES],
            }),
            device: AtomicPtr::new(ptr::null_mut()),
            non_cancelable: AtomicBool::new(false),
            attributes_set: AtomicBool::new(false),
        }
    }

    /// The state, while `_lock` proves the cancel spin lock is held.
    #[allow(clippy::mut_from_ref)]
    fn state(&self, _lock: &CancelLock) -> &mut State {
        // SAFETY: the cancel spin lock is held (the token), so this CPU is the only one that
        // accesses the state until it is released; callers do not keep two of these at once.
        unsafe { &mut *self.state.get() }
    }

    /// Attaches the queue to its device (by `create_startio_device`).
    pub(crate) fn attach(&self, device: *mut sys::DeviceObject, non_cancelable: bool) {
        self.device.store(device, Ordering::Release);
        self.non_cancelable.store(non_cancelable, Ordering::Release);
        if non_cancelable {
            // SAFETY: a live device of ours. NonCancelable = TRUE must be in place before the
            // first IoStartPacket (spec A.11.1 step 4).
            unsafe { sys::set_start_io_attributes(device, true, true) };
            self.attributes_set.store(true, Ordering::Release);
        }
    }

    fn device(&self) -> *mut sys::DeviceObject {
        let d = self.device.load(Ordering::Acquire);
        assert!(
            !d.is_null(),
            "a StartIoQueue is used by a device created with create_startio_device"
        );
        d
    }

    fn is_non_cancelable(&self) -> bool {
        self.non_cancelable.load(Ordering::Acquire)
    }

    /// Queues `irp` on the device (`IoStartPacket` with the crate's cancel routine), or starts
    /// it at once if the device is idle: StartIo may run inside this call. The IRP is marked
    /// pending first; the returned [`Pending`] is what the dispatch routine returns.
    ///
    /// IRQL: <= DISPATCH_LEVEL. Never fails: a request cancelled before or during the call is
    /// completed with `STATUS_CANCELLED` (by the cancel routine or by StartIo, P2).
    pub fn start_packet(&self, irp: Irp) -> Pending {
        self.start_packet_inner(irp, None)
    }

    /// As [`start_packet`](Self::start_packet), queued in ascending `key` order
    /// (`IoStartPacket(.., &key, ..)`, FIFO among equal keys; spec A.10).
    ///
    /// IRQL: <= DISPATCH_LEVEL. Never fails.
    pub fn start_packet_by_key(&self, irp: Irp, key: u32) -> Pending {
        self.start_packet_inner(irp, Some(key))
    }

    fn start_packet_inner(&self, mut irp: Irp, key: Option<u32>) -> Pending {
        let device = self.device();
        // Spec A.11.1: the caller marks the IRP pending before IoStartPacket.
        let pending = irp.mark_pending();
        let raw = irp.into_sys();
        // SAFETY: our device (attached), whose driver has the crate's StartIo; we own `raw`,
        // routed to it and marked pending, and give it up to the device queue.
        unsafe { sys::start_packet(device, raw, key, startio_cancel_trampoline) };
        pending
    }

    /// The tag of the request in service, if one is waiting for its completion source.
    ///
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn current_tag(&self) -> Option<ServiceTag> {
        let lock = CancelLock::acquire();
        let st = self.state(&lock);
        let tag = (!st.in_service.is_null()).then_some(ServiceTag(st.tag));
        lock.release();
        tag
    }

    /// Claims the request in service if its tag is `tag` (the handshake of spec B.5 E2a: under
    /// the cancel spin lock, `IoSetCancelRoutine(NULL)`). `None`: no request with that tag is in
    /// service any more — it was cancelled (the cancel path completed it and started the next
    /// packet), or claimed already, or `tag` is stale (P5).
    ///
    /// Use this for completion sources that carry their own tag (one DPC per request, a
    /// completion from another thread). For the device's one shared timer, use
    /// [`claim_expired`](Self::claim_expired): a DPC cannot know which arming it belongs to.
    ///
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn claim(&self, tag: ServiceTag) -> Option<Claimed<'_>> {
        let lock = CancelLock::acquire();
        let st = self.state(&lock);
        if st.in_service.is_null() || st.tag != tag.0 {
            lock.release();
            return None;
        }
        self.claim_locked(lock)
    }

    /// Claims the request in service if the timer armed for it with [`InService::arm_timer`]
    /// has expired: what the timer's DPC calls. `None` means there is nothing for this DPC to
    /// do: the request was cancelled (its cancel path completes it and starts the next packet),
    /// or another DPC claimed it, or this DPC is stale — it belongs to an earlier arming and the
    /// timer has since been re-armed for the next request (spec B.5 P5).
    ///
    /// The check is made under the cancel spin lock, which [`InService::arm_timer`] also holds
    /// while it records the tag and arms the timer, so an arming and its tag are never seen
    /// apart.
    ///
    /// IRQL: <= DISPATCH_LEVEL (normally DISPATCH_LEVEL, in the DPC).
    pub fn claim_expired<C: TimerCallback<ID>, const ID: u64>(
        &self,
        timer: &Timer<C, ID>,
    ) -> Option<Claimed<'_>> {
        let lock = CancelLock::acquire();
        let st = self.state(&lock);
        if st.in_service.is_null() || !st.armed || !timer.is_signaled() {
            lock.release();
            return None;
        }
        self.claim_locked(lock)
    }

    /// Takes the request in service out, lock held; releases the lock.
    fn claim_locked(&self, lock: CancelLock) -> Option<Claimed<'_>> {
        let st = self.state(&lock);
        let raw = st.in_service;
        if !self.is_non_cancelable() {
            // SAFETY: the IRP in service is live: only the cancel routine (which needs the lock
            // we hold) or a claimer (likewise) can take it.
            let prev = unsafe { sys::irp_set_cancel_routine(raw, None) };
            if prev.is_none() {
                // Spec A.3: NULL means a cancellation took it; it owns the IRP and starts the
                // next packet. (Cannot happen while we hold the cancel lock; kept for safety.)
                lock.release();
                return None;
            }
        }
        st.in_service = ptr::null_mut();
        st.armed = false;
        lock.release();
        Some(Claimed {
            // SAFETY: we swapped the cancel routine out (or the request is non-cancelable and
            // claims are the only way out): the IRP is ours.
            irp: Some(unsafe { Irp::from_sys(raw) }),
            queue: self,
        })
    }

    /// `IoStartNextPacket(device, Cancelable = TRUE)` at DISPATCH_LEVEL.
    fn start_next(&self) {
        let device = self.device();
        let old = sys::irql_raise_to_dispatch();
        // SAFETY: our device, whose driver has the crate's StartIo; at DISPATCH_LEVEL.
        unsafe { sys::start_next_packet(device, true) };
        // SAFETY: the raise above; no lock taken since is held.
        unsafe { sys::irql_lower(old) };
    }
}

/// The request StartIo hands to [`StartIoHandler::start_io`]: owned (its cancel routine was
/// taken under the cancel spin lock), readable through [`Deref`] to [`IrpView`].
///
/// It ends in one of three ways: [`complete`](Self::complete) (completes, then starts the next
/// packet); [`arm_timer`](Self::arm_timer) or [`keep`](Self::keep) (leaves it in service,
/// cancelable again, for a completion source to claim). Dropping it is the same as `keep`.
#[must_use = "complete the request or leave it in service with arm_timer/keep"]
pub struct InService<'a> {
    irp: Option<Irp>,
    tag: ServiceTag,
    queue: &'a StartIoQueue,
}

impl fmt::Debug for InService<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InService")
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

impl Deref for InService<'_> {
    type Target = IrpView;

    fn deref(&self) -> &IrpView {
        self.irp.as_ref().expect("present until consumed")
    }
}

impl InService<'_> {
    /// This entry into service's tag.
    ///
    /// IRQL: any.
    #[must_use]
    pub fn tag(&self) -> ServiceTag {
        self.tag
    }

    /// Completes the request now, then starts the next packet (nested StartIo is bounded by
    /// DeferredStartIo: depth at most 2, spec A.11.3).
    ///
    /// IRQL: DISPATCH_LEVEL (inside StartIo).
    ///
    /// # Panics
    /// If `status` is `STATUS_PENDING`.
    pub fn complete(mut self, status: NtStatus, information: usize) {
        let irp = self.irp.take().expect("present until consumed");
        irp.complete(status, information);
        self.queue.start_next();
    }

    /// Leaves the request in service, cancelable, and arms `timer` to expire after `due`, both
    /// under the cancel spin lock; the timer's DPC then claims it with
    /// [`StartIoQueue::claim_expired`]. If the request was cancelled while StartIo held it, it
    /// is completed with `STATUS_CANCELLED` now (and the next packet started) and the timer is
    /// not armed. Returns the tag.
    ///
    /// IRQL: DISPATCH_LEVEL (inside StartIo).
    pub fn arm_timer<C: TimerCallback<ID>, const ID: u64>(
        mut self,
        timer: &Timer<C, ID>,
        due: Interval,
    ) -> ServiceTag {
        let irp = self.irp.take().expect("present until consumed");
        self.queue.leave_in_service(
            irp,
            self.tag,
            Some(&|| {
                timer.arm(due);
            }),
        );
        self.tag
    }

    /// Leaves the request in service, cancelable, for a completion source that claims it with
    /// [`StartIoQueue::claim`] and this tag. If the request was cancelled while StartIo held it,
    /// it is completed with `STATUS_CANCELLED` now (and the next packet started).
    ///
    /// IRQL: DISPATCH_LEVEL (inside StartIo).
    pub fn keep(mut self) -> ServiceTag {
        let irp = self.irp.take().expect("present until consumed");
        self.queue.leave_in_service(irp, self.tag, None);
        self.tag
    }
}

impl Drop for InService<'_> {
    fn drop(&mut self) {
        if let Some(irp) = self.irp.take() {
            self.queue.leave_in_service(irp, self.tag, None);
        }
    }
}

impl StartIoQueue {
    /// Puts `irp` in service with `tag`: re-installs the cancel routine under the cancel spin
    /// lock and checks `Irp->Cancel` (as IoCsqInsertIrpEx does, spec A.9.3 steps 5–7), then runs
    /// `arm` under the same lock.
    fn leave_in_service(&self, irp: Irp, tag: ServiceTag, arm: Option<&dyn Fn()>) {
        let raw = irp.into_sys();
        let lock = CancelLock::acquire();
        if !self.is_non_cancelable() && self.state(&lock).of_cleaned_up_file(raw) {
            // Its handle was cleaned up while StartIo held it (`cancel_file` could not see it):
            // cancel it rather than serve it after the cleanup. Nobody else can complete it (no
            // cancel routine installed), so it is ours.
            lock.release();
            // SAFETY: the IRP StartIo owned; not given back to anyone.
            let irp = unsafe { Irp::from_sys(raw) };
            irp.complete(NtStatus::CANCELLED, 0);
            self.start_next();
            return;
        }
        if !self.is_non_cancelable() {
            // SAFETY: we own `raw`; IoStartPacket drivers set the routine under the cancel lock
            // (spec A.3).
            unsafe { sys::irp_set_cancel_routine(raw, Some(startio_cancel_trampoline)) };
            // SAFETY: a live IRP.
            if unsafe { sys::irp_cancel_flag(raw) } {
                // SAFETY: as above.
                if unsafe { sys::irp_set_cancel_routine(raw, None) }.is_some() {
                    // Cancelled while StartIo held it: IoCancelIrp found no routine and returned
                    // FALSE, so it is ours to complete.
                    lock.release();
                    // SAFETY: we took the routine back: ours.
                    let irp = unsafe { Irp::from_sys(raw) };
                    irp.complete(NtStatus::CANCELLED, 0);
                    self.start_next();
                    return;
                }
            }
        }
        let st = self.state(&lock);
        st.in_service = raw;
        st.tag = tag.0;
        st.armed = false;
        if let Some(arm) = arm {
            arm();
            st.armed = true;
        }
        lock.release();
    }
}

/// The request in service, claimed by its completion source: the right to complete it.
/// Completing it also starts the next packet.
#[must_use = "complete the claimed request"]
pub struct Claimed<'a> {
    irp: Option<Irp>,
    queue: &'a StartIoQueue,
}

impl fmt::Debug for Claimed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claimed").finish_non_exhaustive()
    }
}

impl Deref for Claimed<'_> {
    type Target = IrpView;

    fn deref(&self) -> &IrpView {
        self.irp.as_ref().expect("present until consumed")
    }
}

impl Claimed<'_> {
    /// Completes the request, then starts the next packet (`IoStartNextPacket`, raised to
    /// DISPATCH_LEVEL if needed): a timer expiry and the next request's entry into service
    /// happen in that order.
    ///
    /// IRQL: <= DISPATCH_LEVEL, no spin lock held.
    ///
    /// # Panics
    /// If `status` is `STATUS_PENDING`.
    pub fn complete(mut self, status: NtStatus, information: usize) {
        let irp = self.irp.take().expect("present until consumed");
        irp.complete(status, information);
        self.queue.start_next();
    }
}

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        if let Some(irp) = self.irp.take() {
            // The `Irp` drop reports the bug and completes it with STATUS_CANCELLED.
            drop(irp);
            self.queue.start_next();
        }
    }
}

/// The crate's StartIo, called by the kernel at DISPATCH_LEVEL (spec A.11.4, with P1 and P2).
///
/// # Safety
/// Called by the kernel as the StartIo of `device`, whose extension is `e`, for `irp`.
pub(crate) unsafe fn run_start_io<E: StartIoHandler>(
    e: &E,
    device: *mut sys::DeviceObject,
    irp: *mut sys::Irp,
) {
    let q = e.start_io_queue();
    if !q.attributes_set.swap(true, Ordering::AcqRel) {
        // DeferredStartIo bounds StartIo nesting (spec A.11.3). Set here, after the first
        // IoStartPacket registered the cancel routine: NonCancelable = FALSE before that is
        // DDI rule StartIoCancel (spec C.27).
        // SAFETY: the live device StartIo was called for.
        unsafe { sys::set_start_io_attributes(device, true, false) };
    }
    let lock = CancelLock::acquire();
    let st = q.state(&lock);
    if st.p1_parties > 0 {
        // Spec A.11.4 / P1: the cancel routine took this IRP while it was current and before we
        // looked at it, and completes it (it may be freed already, its address even given to a
        // new IRP: it is not touched, nor compared with `CurrentIrp`). Nobody starts a packet
        // while a P1 cancellation is under way, so this call is that IRP's.
        debug_assert_eq!(st.cancelling, irp);
        q.p1_party_done(lock);
        return;
    }
    // SAFETY: the IRP the kernel made current and that no cancel routine took (it would have
    // recorded a P1 cancellation): live until someone completes it, which needs the routine we
    // take now.
    let prev = unsafe { sys::irp_set_cancel_routine(irp, None) };
    if prev.is_none() && !q.is_non_cancelable() {
        // Cannot happen: only a cancel routine takes the routine of a current IRP before
        // StartIo, and it records a P1 cancellation. Leave the IRP alone rather than guess.
        lock.release();
        return;
    }
    // The request was dequeued (by IoStartNextPacket, under the cancel spin lock) before its
    // handle's cleanup walked the device queue, so `cancel_file` did not see it: it is
    // cancelled here, before it enters service (also on a non-cancelable device: it was not in
    // service yet).
    let cleaned_up = st.of_cleaned_up_file(irp);
    st.generation += 1;
    let tag = ServiceTag(st.generation);
    lock.release();
    // SAFETY: we took the cancel routine (or the kernel cleared it, NonCancelable): ours.
    let irp = unsafe { Irp::from_sys(irp) };
    if cleaned_up || irp.is_cancel_requested() {
        // P2: cancelled before IoStartPacket installed the routine (IoCancelIrp returned FALSE),
        // or during IoStartPacket with NonCancelable; or its handle was cleaned up (above):
        // nobody else will complete it.
        irp.complete(NtStatus::CANCELLED, 0);
        q.start_next();
        return;
    }
    // SAFETY: StartIo runs at DISPATCH_LEVEL (spec A.11.1, F-5).
    let level = unsafe { DispatchLevel::assume() };
    e.start_io(
        InService {
            irp: Some(irp),
            tag,
            queue: q,
        },
        level,
    );
}

/// The crate's cancel routine for IRPs given to IoStartPacket (spec A.11.4).
///
/// # Safety
/// Called by IoCancelIrp or IoStartPacket as the cancel routine of `irp`, with the cancel spin
/// lock held, for `device`, whose extension is `e`.
pub(crate) unsafe fn run_cancel<E: StartIoHandler>(
    e: &E,
    device: *mut sys::DeviceObject,
    irp: *mut sys::Irp,
) {
    let q = e.start_io_queue();
    // SAFETY: caller contract.
    let lock = unsafe { CancelLock::handed_to_cancel_routine(irp) };
    let st = q.state(&lock);
    // Spec A.5: the routine was swapped out by the canceller, so the IRP is ours, and live.
    //
    // Where it is is decided by our own state and by the device queue, never by comparing it
    // with `DeviceObject->CurrentIrp`: between the completion of a request and the
    // IoStartNextPacket that follows it, CurrentIrp still names the completed (possibly freed)
    // IRP, and a new IRP at the same address may be queued and cancelled in that window.
    // `in_service` only ever holds a live IRP (it is cleared under this lock before the IRP is
    // completed), so equality with the live `irp` means the same request.
    if irp == st.in_service {
        let tag = ServiceTag(st.tag);
        st.in_service = ptr::null_mut();
        st.armed = false;
        // Spec A.11.4: release the cancel lock but stay at DISPATCH_LEVEL (P3).
        let cancel_irql = lock.release_staying_at_dispatch();
        // SAFETY: at DISPATCH_LEVEL until the lower below.
        let level = unsafe { DispatchLevel::assume() };
        e.cancelled_in_service(tag, level);
        // The cancelled request completes first, then the next one enters service
        // (docs/timer-event-design.md, "order at one instant").
        // SAFETY: ours (spec A.5).
        unsafe { Irp::from_sys(irp) }.complete(NtStatus::CANCELLED, 0);
        // SAFETY: our device, at DISPATCH_LEVEL.
        unsafe { sys::start_next_packet(device, true) };
        // SAFETY: back to the canceller's IRQL; no lock held.
        unsafe { sys::irql_lower(cancel_irql) };
        return;
    }
    // SAFETY: the device's queue, and a live IRP given to IoStartPacket for it: its
    // `DeviceQueueEntry.Inserted` says whether it is queued (spec A.10).
    if unsafe { sys::device_queue_remove_irp(device, irp) } {
        // Queued: out of the device queue now.
        lock.release();
        // SAFETY: ours (spec A.5).
        unsafe { Irp::from_sys(irp) }.complete(NtStatus::CANCELLED, 0);
        return;
    }
    // Neither queued nor in service, yet it still had our routine: the kernel made it current
    // and StartIo has not taken it yet (P1). StartIo is certain to be called for it. We
    // complete it; whichever of us and that StartIo call finishes last starts the next packet,
    // and none is started before, so the StartIo call that comes is this IRP's.
    st.cancelling = irp;
    st.p1_parties = 2;
    lock.release();
    // SAFETY: ours (spec A.5).
    unsafe { Irp::from_sys(irp) }.complete(NtStatus::CANCELLED, 0);
    q.p1_party_done(CancelLock::acquire());
}

impl StartIoQueue {
    /// One party of a P1 cancellation is done (see `State::p1_parties`); the last one starts
    /// the next packet. Releases `lock`.
    fn p1_party_done(&self, lock: CancelLock) {
        let st = self.state(&lock);
        st.p1_parties -= 1;
        let last = st.p1_parties == 0;
        if last {
            st.cancelling = ptr::null_mut();
        }
        lock.release();
        if last {
            self.start_next();
        }
    }
}

impl StartIoQueue {
    /// `IRP_MJ_CLEANUP` of a handle: cancels every request sent on `file` — the one in service
    /// first (unless the device is non-cancelable: then it completes normally), then its queued
    /// ones, oldest first — and only then starts the next packet, so that a request of another
    /// handle enters service after all of them (`docs/timer-event-design.md`, "order of
    /// completions at one instant", rule 2). Each is completed with `STATUS_CANCELLED`/0.
    ///
    /// `stop` runs first, with the tag of the request in service if it was taken: stop its work
    /// (e.g. cancel the timer; as in [`StartIoHandler::cancelled_in_service`], the result does
    /// not decide anything: a DPC that fired finds nothing to claim).
    ///
    /// Everything is taken under the cancel spin lock in one go (the in-service request by
    /// `IoSetCancelRoutine(NULL)`, each queued one by the same exchange and
    /// `KeRemoveEntryDeviceQueue`), so a concurrent cancellation of one of them either ran
    /// before (and completed it) or finds no routine. Returns how many requests were cancelled.
    ///
    /// A request of `file` that an IoStartNextPacket on another CPU has already taken out of the
    /// device queue, but that StartIo has not put in service yet, is in neither place. So
    /// `file` is also recorded, under the same lock, as cleaned up: StartIo completes such a
    /// request with `STATUS_CANCELLED` instead of serving it (and starts the next packet), and
    /// so does [`InService::arm_timer`] / [`InService::keep`] for one that StartIo held while
    /// the cleanup ran. It may therefore complete a moment after this call returns, but it is
    /// never served. The record lasts until [`file_closed`](Self::file_closed), which the
    /// driver must call from its `IRP_MJ_CLOSE`: until then a new file object cannot have the
    /// same address. Up to 8 file objects can be between cleanup and close at once; beyond
    /// that, `file` is not recorded, and such a request (only one can be in that window) is
    /// served as if it had arrived after the cleanup.
    ///
    /// IRQL: <= DISPATCH_LEVEL (normally PASSIVE_LEVEL, in the cleanup dispatch routine). Call
    /// it after the handle's dispatch routines are run down (its remove lock), so that no new
    /// request of `file` arrives meanwhile.
    pub fn cancel_file(
        &self,
        file: crate::irp::FileObject,
        stop: impl FnOnce(ServiceTag),
    ) -> usize {
        let device = self.device();
        let mut taken = core::mem::MaybeUninit::<sys::ListEntry>::uninit();
        let head = taken.as_mut_ptr();
        // SAFETY: a local head that does not move until the end of this function.
        unsafe { sys::list_init(head) };
        let of_file = |irp: *mut sys::Irp| {
            // SAFETY: a live IRP (in service or queued, under the cancel spin lock).
            (unsafe { sys::irp_file_object(irp) }) as usize == file.addr()
        };
        let lock = CancelLock::acquire();
        let st = self.state(&lock);
        if file.addr() != 0 && !st.cleaned_up.contains(&file.addr()) {
            if let Some(slot) = st.cleaned_up.iter_mut().find(|s| **s == 0) {
                *slot = file.addr();
            }
        }
        let mut in_service = None;
        if !st.in_service.is_null() && !self.is_non_cancelable() && of_file(st.in_service) {
            let raw = st.in_service;
            // SAFETY: the request in service is live; we hold the cancel spin lock, so no
            // cancel routine can be running for it (spec A.3).
            if unsafe { sys::irp_set_cancel_routine(raw, None) }.is_some() {
                in_service = Some((raw, ServiceTag(st.tag)));
                st.in_service = ptr::null_mut();
                st.armed = false;
            }
        }
        let mut count = usize::from(in_service.is_some());
        // SAFETY: our device, its queue walked under the cancel spin lock.
        let mut cur = unsafe { sys::device_queue_next_irp(device, ptr::null_mut()) };
        while !cur.is_null() {
            // SAFETY: `cur` is queued on `device` (read before it may be unlinked).
            let next = unsafe { sys::device_queue_next_irp(device, cur) };
            // SAFETY: a queued IRP, given to IoStartPacket with the crate's cancel routine.
            if of_file(cur) && unsafe { sys::irp_set_cancel_routine(cur, None) }.is_some() {
                // SAFETY: queued on `device`; it is ours now (we swapped the routine out).
                unsafe { sys::device_queue_remove_irp(device, cur) };
                // SAFETY: out of the device queue, so its `Tail.Overlay.ListEntry` is ours to
                // use; the local list is protected by being local.
                unsafe { sys::list_insert_tail(head, sys::irp_list_entry(cur)) };
                count += 1;
            }
            cur = next;
        }
        lock.release();
        if let Some((raw, tag)) = in_service {
            stop(tag);
            // SAFETY: we swapped its cancel routine out under the lock: ours.
            unsafe { Irp::from_sys(raw) }.complete(NtStatus::CANCELLED, 0);
        }
        // SAFETY: the local list built above; each entry is an IRP we own.
        while !unsafe { sys::list_is_empty(head) } {
            // SAFETY: as above: the first entry.
            let entry = unsafe { sys::list_next(head) };
            // SAFETY: linked in the local list.
            unsafe { sys::list_remove(entry) };
            // SAFETY: an IRP we took out of the device queue above.
            unsafe { Irp::from_sys(sys::irp_from_list_entry(entry)) }
                .complete(NtStatus::CANCELLED, 0);
        }
        if in_service.is_some() {
            self.start_next();
        }
        count
    }

    /// `IRP_MJ_CLOSE` of `file`: forgets that its requests were cancelled by
    /// [`cancel_file`](Self::cancel_file). Every IRP sent on `file` has completed by then (the
    /// I/O manager sends the close when the last reference to the file object is gone), so no
    /// request can still need that record, and a new file object may now reuse the address.
    /// Calling it for a file whose cleanup did not call `cancel_file` does nothing.
    ///
    /// IRQL: <= DISPATCH_LEVEL (normally PASSIVE_LEVEL, in the close dispatch routine).
    pub fn file_closed(&self, file: crate::irp::FileObject) {
        let lock = CancelLock::acquire();
        let st = self.state(&lock);
        for slot in st.cleaned_up.iter_mut() {
            if *slot == file.addr() {
                *slot = 0;
            }
        }
        lock.release();
    }
}
