//! [`CancelSafeQueue`]: the kernel's cancel-safe IRP queue (`IoCsqInitializeEx` and its six
//! callbacks), with ownership in the types.
//!
//! The kernel's IoCsq routines do the cancel-race work (spec A.9): they set and clear the cancel
//! routine by exchange under the queue lock, mark the IRP pending under that lock, and call
//! `CsqCompleteCanceledIrp` outside it. This module supplies the six callbacks once, generically
//! (container-of from the embedded `IO_CSQ`, whose offset is asserted), and turns the raw
//! protocol into moves of [`Irp`] values:
//!
//! | Event order (spec A.9.7) | Who gets the [`Irp`] |
//! |---|---|
//! | insert, then a removal wins the exchange | the caller of [`CancelSafeQueue::remove_next`] / [`CancelSafeQueue::remove_tracked`] |
//! | insert, then IoCancelIrp wins | [`QueuePolicy::cancelled`] (default: STATUS_CANCELLED) |
//! | `Irp->Cancel` already set at insert | [`QueuePolicy::cancelled`], from inside `insert`, after the lock is released |
//! | the policy refuses | the caller of `insert`, in [`Refused`] |

use core::ffi::c_void;
use core::fmt;
use core::marker::PhantomPinned;
use core::ptr;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use pinned_init::{PinInit, pin_init_from_closure};

use crate::irp::{Completed, FileObject, Irp, IrpView, Pending};
use crate::policy::{Fifo, Position, QueuePolicy};
use crate::status::{NtError, NtStatus};
use crate::sys::{self, Opaque};

/// `DriverContext` slot holding the IRP's order key while it is queued.
const CTX_KEY: usize = 0;
/// `DriverContext` slot holding the IRP's tracking slot (or null) while it is queued.
const CTX_SLOT: usize = 1;

/// Slot state bit: the kernel may still use the slot's `IO_CSQ_IRP_CONTEXT` (its IRP has been
/// neither returned by a removal nor passed to `CsqCompleteCanceledIrp`, spec A.9.5).
const IRP_IN: u8 = 1;
/// Slot state bit: a [`Ticket`] for the slot is out.
const TICKET_OUT: u8 = 2;

// The order key lives in a pointer-sized DriverContext word.
static_assertions::const_assert!(core::mem::size_of::<usize>() == 8);

/// One `IO_CSQ_IRP_CONTEXT` of a queue and who may still use it.
///
/// # Invariants
///
/// The slot is reused only when `state` is 0: the kernel is done with the context (spec A.9.5's
/// lifetime rule) *and* no [`Ticket`] refers to it, so a ticket can never name another IRP.
struct Slot {
    context: Opaque<sys::CsqIrpContext>,
    state: AtomicU8,
}

/// A cancel-safe IRP queue.
///
/// `P` is the insertion policy ([`Fifo`], [`Keyed`](crate::Keyed), or your own
/// [`QueuePolicy`]); `TRACKED` is the number of IRPs that can be queued with a [`Ticket`] at the
/// same time (for [`remove_tracked`](Self::remove_tracked), `IoCsqRemoveIrp`).
///
/// The queue embeds the `IO_CSQ`, its spin lock, its list head and the tracking contexts, all of
/// which the kernel links to by address: it is built in place ([`CancelSafeQueue::new`] returns a
/// [`PinInit`]) in a device extension or other pinned storage, and never moves. It allocates
/// nothing, ever: queueing, removing and cancelling only link and unlink the IRP's own list
/// entry. A worker can own one (it is `Send + Sync`, and its policy can carry the worker's wake
/// event).
///
/// Dropping a queue that still holds IRPs completes them with `STATUS_CANCELLED` (a driver should
/// have flushed it in cleanup or unload). No IoCancelIrp may be running on its IRPs when it is
/// dropped — which holds at unload, since the I/O manager unloads a driver only after all its
/// IRPs completed.
///
/// # Invariants
///
/// `csq` is at offset 0 (`#[repr(C)]`, first field) and was initialized by `IoCsqInitializeEx`
/// with this type's callbacks; `head` links exactly the IRPs accepted by the insert callback and
/// not yet unlinked by the remove callback; `head`, `len` and each queued IRP's `DriverContext`
/// words are only touched with `lock` held.
#[repr(C)]
pub struct CancelSafeQueue<P: QueuePolicy = Fifo, const TRACKED: usize = 0> {
    csq: Opaque<sys::IoCsq>,
    lock: Opaque<sys::KSpinLock>,
    head: Opaque<sys::ListEntry>,
    len: AtomicUsize,
    slots: [Slot; TRACKED],
    policy: P,
    _pin: PhantomPinned,
}

// The callbacks' container-of relies on this (spec A.9.1: the kernel passes back the IO_CSQ).
static_assertions::const_assert_eq!(core::mem::offset_of!(CancelSafeQueue<Fifo, 0>, csq), 0);
static_assertions::const_assert_eq!(core::mem::offset_of!(CancelSafeQueue<Fifo, 4>, csq), 0);

// SAFETY: the queue's kernel objects are designed to be used from any CPU; the list and the
// counters are only changed under the queue's spin lock or atomically, and the policy is
// `Send + Sync`.
unsafe impl<P: QueuePolicy, const N: usize> Send for CancelSafeQueue<P, N> {}
// SAFETY: as above.
unsafe impl<P: QueuePolicy, const N: usize> Sync for CancelSafeQueue<P, N> {}

/// An insert the policy refused: the IRP is back with its owner, not queued, not marked pending
/// (spec A.9.3 step 3).
#[derive(Debug)]
pub struct Refused {
    /// The IRP, still owned by the caller.
    pub irp: Irp,
    /// Why it was refused (an NT error).
    pub status: NtError,
}

impl Refused {
    /// Completes the refused IRP with the refusal status (what a dispatch routine usually does).
    ///
    /// IRQL: <= DISPATCH_LEVEL, no spin lock held.
    pub fn complete(self) -> Completed {
        self.irp.complete(self.status.status(), 0)
    }
}

/// Which queued IRP [`CancelSafeQueue::remove_next_where`] takes: the first one (in queue order)
/// that matches.
#[derive(Clone, Copy)]
pub enum Filter<'a> {
    /// Any IRP.
    Any,
    /// IRPs sent on this file object (one handle's requests).
    File(FileObject),
    /// IRPs for which the predicate returns true. It runs with the queue lock held at
    /// DISPATCH_LEVEL, possibly on IRPs that are being cancelled (spec A.9.4).
    Matching(&'a (dyn Fn(&IrpView) -> bool + Sync)),
}

impl fmt::Debug for Filter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Any => f.write_str("Any"),
            Filter::File(file) => f.debug_tuple("File").field(file).finish(),
            Filter::Matching(_) => f.write_str("Matching(..)"),
        }
    }
}

impl Filter<'_> {
    fn matches(&self, irp: &IrpView) -> bool {
        match self {
            Filter::Any => true,
            Filter::File(file) => irp.file_object() == Some(*file),
            Filter::Matching(pred) => pred(irp),
        }
    }
}

/// The right to ask for one tracked IRP back ([`CancelSafeQueue::remove_tracked`]), and the
/// reason its `IO_CSQ_IRP_CONTEXT` is not reused before that question is settled.
///
/// A ticket is given back by [`CancelSafeQueue::remove_tracked`] or
/// [`CancelSafeQueue::release_ticket`]. Dropping it instead leaks its slot (the queue can track
/// one IRP fewer) and is reported as a driver bug.
#[must_use = "give a ticket back with remove_tracked or release_ticket"]
pub struct Ticket {
    queue: usize,
    slot: usize,
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        sys::report_driver_bug(
            sys::DriverBug::TicketDropped,
            ptr::null_mut(),
            "a cancel-safe queue Ticket was dropped instead of given back; its slot is leaked",
        );
    }
}

impl Ticket {
    fn forget(self) -> (usize, usize) {
        let me = core::mem::ManuallyDrop::new(self);
        (me.queue, me.slot)
    }
}

/// What `insert` passes through `IoCsqInsertIrpEx`'s InsertContext to the insert callback.
struct InsertArgs<'a, A> {
    arg: &'a A,
    slot: *const Slot,
}

impl<P: QueuePolicy, const N: usize> CancelSafeQueue<P, N> {
    /// An initializer for a queue with `policy` (anything that initializes a `P`, e.g. the value
    /// itself): initializes the spin lock, the list head and the tracking contexts in place, then
    /// calls `IoCsqInitializeEx` with this type's six callbacks.
    ///
    /// IRQL: <= DISPATCH_LEVEL. Cannot fail (IoCsqInitializeEx returns STATUS_SUCCESS, spec
    /// A.9.2).
    pub fn new(policy: impl PinInit<P>) -> impl PinInit<Self> {
        let init = move |this: *mut Self| {
            // SAFETY: `this` is valid for writes of a `Self` (PinInit contract).
            unsafe { Self::init_fields(this) };
            // SAFETY: as above; only the address is computed.
            let policy_slot = unsafe { &raw mut (*this).policy };
            // SAFETY: `policy_slot` is valid for writes and pinned with the queue.
            unsafe { policy.__pinned_init(policy_slot) }?;
            // SAFETY: every other field is initialized; `this` does not move any more.
            unsafe { Self::register(this) };
            Ok(())
        };
        // SAFETY: the closure initializes every field in place before returning Ok (the policy
        // last but one, then the `IO_CSQ`, registered with its final address, which the pinning
        // keeps stable); on a policy error nothing was registered with the kernel.
        unsafe { pin_init_from_closure(init) }
    }

    /// Initializes the lock, the list head, the counter and the tracking slots in place.
    ///
    /// # Safety
    /// `this` is valid for writes of a `Self`.
    unsafe fn init_fields(this: *mut Self) {
        // SAFETY: caller contract; address only.
        let lock = unsafe { &raw const (*this).lock };
        // SAFETY: as above.
        let head = unsafe { &raw const (*this).head };
        // SAFETY: the lock's storage is writable.
        unsafe { sys::spin_lock_init(Opaque::raw_get(lock)) };
        // SAFETY: the head's storage is writable and will not move (pinned).
        unsafe { sys::list_init(Opaque::raw_get(head)) };
        // SAFETY: caller contract; address only.
        let len = unsafe { &raw mut (*this).len };
        // SAFETY: writable storage for the counter.
        unsafe { len.write(AtomicUsize::new(0)) };
        // SAFETY: caller contract; address only.
        let slots = unsafe { &raw mut (*this).slots }.cast::<Slot>();
        for i in 0..N {
            // SAFETY: within the array.
            let slot = unsafe { slots.add(i) };
            // SAFETY: a zeroed context is a valid unused one (IoCsqInsertIrpEx initializes it,
            // spec A.9.3 step 1), and `Opaque` accepts any bytes.
            let context = unsafe { core::mem::zeroed() };
            // SAFETY: writable storage for one slot.
            unsafe {
                slot.write(Slot {
                    context,
                    state: AtomicU8::new(0),
                })
            };
        }
    }

    /// `IoCsqInitializeEx` with this type's callbacks.
    ///
    /// # Safety
    /// `this` points to a `Self` whose other fields are initialized and that never moves again.
    unsafe fn register(this: *mut Self) {
        // SAFETY: caller contract; address only.
        let csq = Opaque::raw_get(unsafe { &raw const (*this).csq });
        // SAFETY: the IO_CSQ's storage is writable, non-paged and pinned.
        let status = unsafe {
            sys::csq_initialize_ex(
                csq,
                sys::CsqCallbacks {
                    insert: Self::cb_insert,
                    remove: Self::cb_remove,
                    peek_next: Self::cb_peek_next,
                    acquire_lock: Self::cb_acquire_lock,
                    release_lock: Self::cb_release_lock,
                    complete_canceled: Self::cb_complete_canceled,
                },
            )
        };
        debug_assert_eq!(status, sys::STATUS_SUCCESS, "IoCsqInitializeEx cannot fail");
    }

    /// The queue's policy.
    ///
    /// IRQL: any.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// How many IRPs are queued (a snapshot: other CPUs may change it at once). IRPs whose
    /// cancellation is in progress count until their cancel routine unlinks them.
    ///
    /// IRQL: any.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether no IRP is queued (a snapshot).
    ///
    /// IRQL: any.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn csq_ptr(&self) -> *mut sys::IoCsq {
        self.csq.get()
    }

    /// Queues `irp` where the policy says (`IoCsqInsertIrpEx`).
    ///
    /// On success the IRP was marked pending under the queue lock and belongs to the queue; the
    /// returned [`Pending`] is what the dispatch routine returns. If the IRP had already been
    /// cancelled, it is already completed by [`QueuePolicy::cancelled`] when this returns (spec
    /// A.9.3 step 7), and the dispatch routine still returns `Pending`.
    ///
    /// IRQL: <= DISPATCH_LEVEL.
    ///
    /// # Errors
    /// [`Refused`] with the policy's NT error (e.g. `STATUS_INSUFFICIENT_RESOURCES` from
    /// [`Bounded`](crate::Bounded)); the caller keeps the IRP.
    pub fn insert(&self, irp: Irp, arg: P::Arg) -> Result<Pending, Refused> {
        self.insert_with(irp, &arg, None)
    }

    /// Queues `irp` like [`insert`](Self::insert), tracked by a context so that it can be asked
    /// back by identity with [`remove_tracked`](Self::remove_tracked) (`IoCsqRemoveIrp`).
    ///
    /// The context (one of the queue's `TRACKED` slots) is not reused until the kernel is done
    /// with it *and* the [`Ticket`] is given back: this is spec A.9.5's lifetime rule, enforced.
    ///
    /// IRQL: <= DISPATCH_LEVEL.
    ///
    /// # Errors
    /// [`Refused`] with the policy's NT error, or `STATUS_INSUFFICIENT_RESOURCES` when every
    /// tracking slot is in use.
    pub fn insert_tracked(&self, irp: Irp, arg: P::Arg) -> Result<(Pending, Ticket), Refused> {
        let Some(index) = self.slots.iter().position(|s| {
            s.state
                .compare_exchange(0, IRP_IN | TICKET_OUT, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        }) else {
            return Err(Refused {
                irp,
                status: NtError::INSUFFICIENT_RESOURCES,
            });
        };
        match self.insert_with(irp, &arg, Some(index)) {
            Ok(pending) => Ok((
                pending,
                Ticket {
                    queue: self as *const Self as usize,
                    slot: index,
                },
            )),
            Err(refused) => {
                // Spec A.9.3 step 3: not queued; the context is stale and unused.
                self.slots[index].state.store(0, Ordering::Release);
                Err(refused)
            }
        }
    }

    fn insert_with(&self, irp: Irp, arg: &P::Arg, slot: Option<usize>) -> Result<Pending, Refused> {
        let (context, slot_ptr) = match slot {
            Some(i) => (self.slots[i].context.get(), &raw const self.slots[i]),
            None => (ptr::null_mut(), ptr::null()),
        };
        let mut args = InsertArgs {
            arg,
            slot: slot_ptr,
        };
        let raw = irp.into_sys();
        // SAFETY: the queue is initialized; we own `raw` and hand it over; the context (if any)
        // is reserved for this IRP until the kernel is done with it (slot invariant); the insert
        // context is the `InsertArgs` the insert callback expects, alive for the call.
        let status = unsafe {
            sys::csq_insert_irp_ex(
                self.csq_ptr(),
                raw,
                context,
                (&raw mut args).cast::<c_void>(),
            )
        };
        match NtError::from_status(NtStatus(status)) {
            // Spec A.9.3 step 3: refused; the IRP is ours again, unmarked, with no cancel
            // routine.
            Some(status) => Err(Refused {
                // SAFETY: the insert was refused, so ownership never left us.
                irp: unsafe { Irp::from_sys(raw) },
                status,
            }),
            // Accepted (our callback only returns STATUS_SUCCESS or an error): marked pending
            // under the lock, possibly completed already; `raw` must not be touched.
            None => Ok(Pending::new(raw)),
        }
    }

    /// Takes the first queued IRP (`IoCsqRemoveNextIrp`). It is no longer cancelable and belongs
    /// to the caller; IRPs whose cancellation is in progress are skipped (their cancel routine
    /// completes them).
    ///
    /// IRQL: <= DISPATCH_LEVEL. Returns `None` when no IRP is available.
    pub fn remove_next(&self) -> Option<Irp> {
        self.remove_next_where(Filter::Any)
    }

    /// Takes the first queued IRP sent on `file` (for `IRP_MJ_CLEANUP`).
    ///
    /// IRQL: <= DISPATCH_LEVEL. Returns `None` when none is available.
    pub fn remove_next_for_file(&self, file: FileObject) -> Option<Irp> {
        self.remove_next_where(Filter::File(file))
    }

    /// Takes the first queued IRP that `filter` matches (`IoCsqRemoveNextIrp` with a peek
    /// context).
    ///
    /// IRQL: <= DISPATCH_LEVEL. Returns `None` when none is available.
    pub fn remove_next_where(&self, filter: Filter<'_>) -> Option<Irp> {
        let peek = match filter {
            Filter::Any => ptr::null_mut(),
            _ => (&raw const filter).cast_mut().cast::<c_void>(),
        };
        // SAFETY: the queue is initialized; the peek context is null or a `Filter` alive for the
        // call, which is what the peek callback expects.
        let raw = unsafe { sys::csq_remove_next_irp(self.csq_ptr(), peek) };
        if raw.is_null() {
            return None;
        }
        // SAFETY: IoCsqRemoveNextIrp returned the IRP (spec A.9.4 step 5): it is out of the
        // queue, its cancel routine is NULL, and it belongs to us now.
        Some(unsafe { self.take_back(raw) })
    }

    /// Takes back the IRP of `ticket` if it is still queued (`IoCsqRemoveIrp`), and gives the
    /// ticket back.
    ///
    /// `None` means the IRP already left the queue: removed by
    /// [`remove_next`](Self::remove_next), or cancelled (its cancellation may still be running;
    /// [`QueuePolicy::cancelled`] completes it, spec A.9.5 step 3).
    ///
    /// IRQL: <= DISPATCH_LEVEL.
    ///
    /// # Panics
    /// If `ticket` belongs to another queue.
    pub fn remove_tracked(&self, ticket: Ticket) -> Option<Irp> {
        let slot = self.check_ticket(ticket);
        // SAFETY: the slot's context was passed to IoCsqInsertIrpEx for this queue, and it is
        // not reused while the ticket was out (slot invariant), so it still names that IRP or
        // has been cleared to NULL.
        let raw = unsafe { sys::csq_remove_irp(self.csq_ptr(), slot.context.get()) };
        let irp = if raw.is_null() {
            None
        } else {
            // SAFETY: IoCsqRemoveIrp returned the IRP: dequeued, not cancelable, ours.
            Some(unsafe { self.take_back(raw) })
        };
        slot.state.fetch_and(!TICKET_OUT, Ordering::AcqRel);
        irp
    }

    /// Gives a ticket back without asking for its IRP (e.g. after the IRP was removed by
    /// [`remove_next`](Self::remove_next)). The IRP, if still queued, stays queued untracked.
    ///
    /// IRQL: any.
    ///
    /// # Panics
    /// If `ticket` belongs to another queue.
    pub fn release_ticket(&self, ticket: Ticket) {
        let slot = self.check_ticket(ticket);
        slot.state.fetch_and(!TICKET_OUT, Ordering::AcqRel);
    }

    fn check_ticket(&self, ticket: Ticket) -> &Slot {
        let (queue, index) = ticket.forget();
        assert!(
            queue == self as *const Self as usize && index < N,
            "a Ticket was given to a queue it does not belong to"
        );
        &self.slots[index]
    }

    /// Completes every queued IRP sent on `file` with `STATUS_CANCELLED`, one at a time, outside
    /// the queue lock: what `IRP_MJ_CLEANUP` does for the handle being closed (spec A.8). IRPs
    /// whose cancellation is in progress are completed by their cancel routine instead.
    ///
    /// IRQL: <= DISPATCH_LEVEL. Returns how many IRPs it completed.
    pub fn flush_file(&self, file: FileObject) -> usize {
        self.flush_where(Filter::File(file), NtStatus::CANCELLED)
    }

    /// Completes every queued IRP with `STATUS_CANCELLED` (e.g. at unload or surprise removal).
    ///
    /// IRQL: <= DISPATCH_LEVEL. Returns how many IRPs it completed.
    pub fn cancel_all(&self) -> usize {
        self.flush_where(Filter::Any, NtStatus::CANCELLED)
    }

    /// Completes every queued IRP that `filter` matches with `status`.
    ///
    /// IRQL: <= DISPATCH_LEVEL. Returns how many IRPs it completed.
    ///
    /// # Panics
    /// If `status` is `STATUS_PENDING`.
    pub fn flush_where(&self, filter: Filter<'_>, status: NtStatus) -> usize {
        let mut n = 0;
        while let Some(irp) = self.remove_next_where(filter) {
            irp.complete(status, 0);
            n += 1;
        }
        n
    }

    /// Takes ownership of an IRP that IoCsq handed back, releasing its tracking slot (the kernel
    /// is done with the context once the IRP is returned, spec A.9.5).
    ///
    /// # Safety
    /// `raw` was returned by IoCsqRemoveNextIrp/IoCsqRemoveIrp on this queue.
    unsafe fn take_back(&self, raw: *mut sys::Irp) -> Irp {
        // SAFETY: the IRP is ours (caller contract), so its DriverContext words are too.
        unsafe { Self::release_slot_of(raw) };
        // SAFETY: caller contract: dequeued, cancel routine NULL, owned.
        unsafe { Irp::from_sys(raw) }
    }

    /// Clears `IRP_IN` on the IRP's tracking slot, if any, and clears the queue's words.
    ///
    /// # Safety
    /// The caller owns `raw` (it left the queue and the kernel is done with its context).
    unsafe fn release_slot_of(raw: *mut sys::Irp) {
        let slot_word = Irp::context_word(raw, CTX_SLOT);
        // SAFETY: caller contract: the IRP's DriverContext is ours.
        let slot = unsafe { slot_word.read() }.cast::<Slot>().cast_const();
        // SAFETY: as above.
        unsafe { slot_word.write(ptr::null_mut()) };
        // SAFETY: as above.
        unsafe { Irp::context_word(raw, CTX_KEY).write(ptr::null_mut()) };
        if !slot.is_null() {
            // SAFETY: the slot pointer was stored by the insert callback and points into the
            // queue, which outlives its IRPs.
            unsafe { &*slot }.state.fetch_and(!IRP_IN, Ordering::AcqRel);
        }
    }

    // -----------------------------------------------------------------------------------------
    // The six IoCsq callbacks (spec A.9.1). The kernel calls them with the `IO_CSQ` pointer it
    // was initialized with; all but `cb_complete_canceled` run with the queue lock held.

    /// Container-of: the queue that embeds `csq`.
    ///
    /// # Safety
    /// `csq` is the `IO_CSQ` of a live `Self`.
    unsafe fn from_csq<'a>(csq: *mut sys::IoCsq) -> &'a Self {
        const { assert!(core::mem::offset_of!(Self, csq) == 0) };
        // SAFETY: `csq` is the first field of a `#[repr(C)]` `Self` (type invariant, asserted
        // above), so the addresses coincide; the caller guarantees the queue is alive.
        unsafe { &*csq.cast::<Self>() }
    }

    /// The key stored for a queued IRP (`u64::MAX` for IRPs queued at the back).
    ///
    /// # Safety
    /// `irp` is queued here and the lock is held.
    unsafe fn key_of(irp: *mut sys::Irp) -> u64 {
        // SAFETY: caller contract: the queue owns the IRP's DriverContext words.
        unsafe { Irp::context_word(irp, CTX_KEY).read() as usize as u64 }
    }

    unsafe extern "system" fn cb_insert(
        csq: *mut sys::IoCsq,
        irp: *mut sys::Irp,
        insert_context: *mut c_void,
    ) -> sys::Ntstatus {
        // SAFETY: the kernel passes back our IO_CSQ.
        let this = unsafe { Self::from_csq(csq) };
        // SAFETY: `insert_with` passed an `InsertArgs<P::Arg>` that lives across the call.
        let args = unsafe { &*insert_context.cast::<InsertArgs<'_, P::Arg>>() };
        // SAFETY: the IRP is being inserted by its owner; live for the callback.
        let view = unsafe { IrpView::from_raw(irp) };
        let position = match this.policy.admit(view, args.arg, this.len()) {
            Ok(p) => p,
            // Spec A.9.3 "Ex status convention": only an NT error means "not queued".
            Err(e) => return e.status().0,
        };
        let key = match position {
            Position::Back => u64::MAX,
            Position::Key(k) => k,
        };
        // SAFETY: the lock is held and the IRP is becoming ours; its DriverContext[0..3] are
        // free for the queue (slot 3 is IoCsq's).
        unsafe { Irp::context_word(irp, CTX_KEY).write(key as usize as *mut c_void) };
        // SAFETY: as above.
        unsafe { Irp::context_word(irp, CTX_SLOT).write(args.slot.cast_mut().cast()) };
        let head = this.head.get();
        let entry = sys::irp_list_entry(irp);
        // Insert before the first IRP with a larger key: ascending, FIFO among equals.
        // SAFETY: the list is initialized and protected by the held lock.
        let mut before = unsafe { sys::list_next(head) };
        if position != Position::Back {
            while before != head {
                // SAFETY: `before` is a queued IRP's entry, under the lock.
                if unsafe { Self::key_of(sys::irp_from_list_entry(before)) } > key {
                    break;
                }
                // SAFETY: as above.
                before = unsafe { sys::list_next(before) };
            }
        } else {
            before = head;
        }
        // SAFETY: `before` is linked in our list (or is its head); `entry` is unlinked.
        unsafe { sys::list_insert_before(before, entry) };
        this.len.fetch_add(1, Ordering::Relaxed);
        sys::STATUS_SUCCESS
    }

    unsafe extern "system" fn cb_remove(csq: *mut sys::IoCsq, irp: *mut sys::Irp) {
        // SAFETY: the kernel passes back our IO_CSQ.
        let this = unsafe { Self::from_csq(csq) };
        // SAFETY: the kernel only removes IRPs we queued, with the lock held.
        unsafe { sys::list_remove(sys::irp_list_entry(irp)) };
        this.len.fetch_sub(1, Ordering::Relaxed);
    }

    unsafe extern "system" fn cb_peek_next(
        csq: *mut sys::IoCsq,
        irp: *mut sys::Irp,
        peek_context: *mut c_void,
    ) -> *mut sys::Irp {
        // SAFETY: the kernel passes back our IO_CSQ.
        let this = unsafe { Self::from_csq(csq) };
        let filter = if peek_context.is_null() {
            Filter::Any
        } else {
            // SAFETY: `remove_next_where` passed a `Filter` that lives across the call.
            unsafe { *peek_context.cast::<Filter<'_>>() }
        };
        let head = this.head.get();
        // Spec A.9.4: start after `irp` (still linked, even if being cancelled), or at the head.
        let start = if irp.is_null() {
            head
        } else {
            sys::irp_list_entry(irp)
        };
        // SAFETY: `start` is our head or a queued IRP's entry, under the lock.
        let mut e = unsafe { sys::list_next(start) };
        while e != head {
            let candidate = sys::irp_from_list_entry(e);
            // SAFETY: a queued IRP, kept alive by the queue while the lock is held.
            if filter.matches(unsafe { IrpView::from_raw(candidate) }) {
                return candidate;
            }
            // SAFETY: as above.
            e = unsafe { sys::list_next(e) };
        }
        ptr::null_mut()
    }

    unsafe extern "system" fn cb_acquire_lock(csq: *mut sys::IoCsq, irql: *mut sys::Kirql) {
        // SAFETY: the kernel passes back our IO_CSQ.
        let this = unsafe { Self::from_csq(csq) };
        // SAFETY: our initialized lock; IoCsq never nests it.
        let old = unsafe { sys::spin_lock_acquire(this.lock.get()) };
        // SAFETY: the kernel passes a writable KIRQL.
        unsafe { irql.write(old) };
    }

    unsafe extern "system" fn cb_release_lock(csq: *mut sys::IoCsq, irql: sys::Kirql) {
        // SAFETY: the kernel passes back our IO_CSQ.
        let this = unsafe { Self::from_csq(csq) };
        // SAFETY: IoCsq releases the lock it acquired with the IRQL that acquire returned.
        unsafe { sys::spin_lock_release(this.lock.get(), irql) };
    }

    unsafe extern "system" fn cb_complete_canceled(csq: *mut sys::IoCsq, irp: *mut sys::Irp) {
        // SAFETY: the kernel passes back our IO_CSQ.
        let this = unsafe { Self::from_csq(csq) };
        // Spec A.9.6 step 4 / A.9.3 step 7: the IRP was unlinked, its cancel routine is taken,
        // the lock is released, and the kernel is done with its context: it is ours to complete.
        // SAFETY: as just said.
        unsafe { Self::release_slot_of(irp) };
        // SAFETY: as above.
        let irp = unsafe { Irp::from_sys(irp) };
        this.policy.cancelled(irp);
    }
}

impl<P: QueuePolicy, const N: usize> Drop for CancelSafeQueue<P, N> {
    fn drop(&mut self) {
        let left = self.cancel_all();
        if left != 0 {
            sys::debug_print("csq: a CancelSafeQueue was dropped with IRPs queued; cancelled them");
        }
    }
}

impl<P: QueuePolicy + fmt::Debug, const N: usize> fmt::Debug for CancelSafeQueue<P, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelSafeQueue")
            .field("len", &self.len())
            .field("tracked", &N)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}
