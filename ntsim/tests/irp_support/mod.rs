//! Driver fragments shared by the IRP, cancel, CSQ and completion tests: a handle on an IRP, and
//! a small cancel-safe queue driver (an IO_CSQ embedded first in a Rust struct, a KSPIN_LOCK and
//! a LIST_ENTRY queue through `Tail.Overlay.ListEntry`) whose callbacks record what they did.
#![allow(dead_code)]

use std::cell::UnsafeCell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize, Ordering};

use ntsim::complete::IoCompleteRequest;
use ntsim::csq::*;
use ntsim::ntdef::*;
use ntsim::spinlock::{KeAcquireSpinLock, KeInitializeSpinLock, KeReleaseSpinLock};

/// An IRP the test drives. Methods touch the IRP's memory, so they may be called until the
/// IRP is freed (a completed IRP stays readable: ntsim only poisons it at IoFreeIrp).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Irp(pub PIRP);

// SAFETY: an IRP is shared between emulated threads by design; ntsim serializes them.
unsafe impl Send for Irp {}

impl Irp {
    /// A fresh IRP with `stack` locations, positioned on its first (top) location so that it
    /// looks like an IRP routed to a driver.
    pub fn routed(stack: i8) -> Irp {
        let irp = Irp(ntsim::irp::IoAllocateIrp(stack, 0));
        irp.set_next();
        irp
    }

    /// A fresh IRP exactly as IoAllocateIrp leaves it.
    pub fn raw(stack: i8) -> Irp {
        Irp(ntsim::irp::IoAllocateIrp(stack, 0))
    }

    pub fn addr(self) -> usize {
        self.0 as usize
    }

    pub fn get(self) -> &'static IRP {
        // SAFETY: tests only use an `Irp` while its memory is allocated (see the type doc).
        unsafe { &*self.0 }
    }

    fn get_mut(self) -> &'static mut IRP {
        // SAFETY: as `get`; ntsim runs one emulated thread at a time, so no access overlaps.
        unsafe { &mut *self.0 }
    }

    pub fn cancel_flag(self) -> bool {
        self.get().Cancel != 0
    }

    pub fn has_cancel_routine(self) -> bool {
        self.get().CancelRoutine.is_some()
    }

    pub fn status(self) -> NTSTATUS {
        // SAFETY: the status arm is the one the kernel and drivers use.
        unsafe { self.get().IoStatus.u.Status }
    }

    pub fn set_status(self, status: NTSTATUS) {
        let irp = self.get_mut();
        irp.IoStatus.u.Status = status;
        irp.IoStatus.Information = 0;
    }

    pub fn current_location(self) -> i8 {
        self.get().CurrentLocation
    }

    pub fn stack_count(self) -> i8 {
        self.get().StackCount
    }

    pub fn pending_returned(self) -> bool {
        self.get().PendingReturned != 0
    }

    pub fn driver_context3(self) -> usize {
        // SAFETY: the IRP is allocated (type doc); the slot is pointer-sized.
        unsafe { IRP::driver_context_ptr(self.0, 3).read() as usize }
    }

    pub fn set_driver_context3(self, v: usize) {
        // SAFETY: as above.
        unsafe { IRP::driver_context_ptr(self.0, 3).write(v as PVOID) };
    }

    /// `IoGetCurrentIrpStackLocation(irp)->Control`.
    pub fn current_control(self) -> u8 {
        // SAFETY: the IRP has a current stack location.
        let sl = unsafe { ntsim::irp::IoGetCurrentIrpStackLocation(self.0) };
        // SAFETY: it points into the IRP's stack array.
        unsafe { (*sl).Control }
    }

    pub fn set_next(self) {
        // SAFETY: the IRP is allocated and has a next location (tests size it).
        unsafe { ntsim::irp::IoSetNextIrpStackLocation(self.0) };
    }

    pub fn mark_pending(self) {
        // SAFETY: the IRP is allocated with a current stack location.
        unsafe { ntsim::irp::IoMarkIrpPending(self.0) };
    }

    pub fn set_cancel_routine(self, r: PDRIVER_CANCEL) -> PDRIVER_CANCEL {
        // SAFETY: the IRP is allocated.
        unsafe { ntsim::cancel::IoSetCancelRoutine(self.0, r) }
    }

    pub fn cancel(self) -> bool {
        // SAFETY: the IRP stays allocated during the call.
        unsafe { ntsim::cancel::IoCancelIrp(self.0) != 0 }
    }

    pub fn complete(self, status: NTSTATUS) {
        self.set_status(status);
        // SAFETY: the IRP is allocated; whether the caller may complete it is what the
        // verifier checks.
        unsafe { IoCompleteRequest(self.0, 0) };
    }

    /// Completes with the status already in the IRP.
    pub fn complete_as_is(self) {
        // SAFETY: as `complete`.
        unsafe { IoCompleteRequest(self.0, 0) };
    }

    pub fn free(self) {
        // SAFETY: the IRP came from IoAllocateIrp and is not used afterwards.
        unsafe { ntsim::irp::IoFreeIrp(self.0) };
    }
}

/// How a [`Queue`]'s callbacks misbehave (the wrong driver fragments).
pub mod bug {
    /// CsqPeekNextIrp calls IoCsqRemoveNextIrp on its own queue (rule C31).
    pub const PEEK_REENTERS: u32 = 1;
    /// CsqPeekNextIrp returns the IRP stored in `Queue::foreign` (rule C32).
    pub const PEEK_FOREIGN: u32 = 2;
    /// CsqPeekNextIrp ignores its Irp argument and always returns the head (rule C32).
    pub const PEEK_FROM_HEAD: u32 = 4;
    /// CsqInsertIrp[Ex] writes DriverContext[3] (rule C13).
    pub const INSERT_WRITES_DC3: u32 = 8;
}

/// A cancel-safe queue driver fragment. `csq` comes first so that a `*mut IO_CSQ` is a
/// `*mut Queue` (container-of by cast).
#[repr(C)]
#[derive(Debug)]
pub struct Queue {
    /// Kernel-owned parts sit in `UnsafeCell`s: IoCsq and the spin-lock routines write them
    /// through raw pointers while the callbacks hold `&Queue`.
    pub csq: UnsafeCell<IO_CSQ>,
    pub lock: UnsafeCell<KSPIN_LOCK>,
    pub head: UnsafeCell<LIST_ENTRY>,
    pub log: Mutex<Vec<&'static str>>,
    /// IRPs completed by CsqCompleteCanceledIrp.
    pub canceled: AtomicU32,
    /// What CsqInsertIrpEx returns (after linking the IRP if the status is NT_SUCCESS).
    pub insert_status: AtomicI32,
    /// `bug::*` flags.
    pub bugs: AtomicU32,
    pub foreign: AtomicUsize,
}

/// The address of a [`Queue`], shareable between emulated threads.
#[derive(Clone, Copy, Debug)]
pub struct Q(usize);

fn container(csq: *mut IO_CSQ) -> &'static Queue {
    // SAFETY: every IO_CSQ these callbacks are registered on is the first field of a live
    // `Queue` (repr(C)), so the cast is container-of.
    unsafe { &*(csq.cast::<Queue>()) }
}

fn head_of(csq: *mut IO_CSQ) -> *mut LIST_ENTRY {
    // SAFETY: as `container`; the address is computed without creating a reference.
    unsafe { UnsafeCell::raw_get(&raw const (*csq.cast::<Queue>()).head) }
}

fn lock_of(csq: *mut IO_CSQ) -> *mut KSPIN_LOCK {
    // SAFETY: as `head_of`.
    unsafe { UnsafeCell::raw_get(&raw const (*csq.cast::<Queue>()).lock) }
}

/// Circular doubly linked list routines (the WDK's inline ones).
pub mod list {
    use ntsim::ntdef::LIST_ENTRY;

    pub fn init(head: *mut LIST_ENTRY) {
        write(head, head, head);
    }

    fn write(e: *mut LIST_ENTRY, flink: *mut LIST_ENTRY, blink: *mut LIST_ENTRY) {
        // SAFETY: callers pass entries of live lists, accessed under the queue lock.
        unsafe {
            e.write(LIST_ENTRY {
                Flink: flink,
                Blink: blink,
            })
        };
    }

    pub fn flink(e: *mut LIST_ENTRY) -> *mut LIST_ENTRY {
        // SAFETY: as `write`.
        unsafe { (*e).Flink }
    }

    pub fn blink(e: *mut LIST_ENTRY) -> *mut LIST_ENTRY {
        // SAFETY: as `write`.
        unsafe { (*e).Blink }
    }

    fn set_flink(e: *mut LIST_ENTRY, v: *mut LIST_ENTRY) {
        // SAFETY: as `write`.
        unsafe { (*e).Flink = v };
    }

    fn set_blink(e: *mut LIST_ENTRY, v: *mut LIST_ENTRY) {
        // SAFETY: as `write`.
        unsafe { (*e).Blink = v };
    }

    pub fn insert_tail(head: *mut LIST_ENTRY, e: *mut LIST_ENTRY) {
        let last = blink(head);
        write(e, head, last);
        set_flink(last, e);
        set_blink(head, e);
    }

    pub fn remove(e: *mut LIST_ENTRY) {
        let (f, b) = (flink(e), blink(e));
        set_flink(b, f);
        set_blink(f, b);
    }
}

fn record(csq: *mut IO_CSQ, what: &'static str) {
    container(csq).log.lock().unwrap().push(what);
}

fn link(csq: *mut IO_CSQ, irp: *mut IRP) {
    if container(csq).bugs.load(Ordering::SeqCst) & bug::INSERT_WRITES_DC3 != 0 {
        Irp(irp).set_driver_context3(0x5eed);
    }
    list::insert_tail(head_of(csq), IRP::list_entry_ptr(irp));
}

unsafe extern "system" fn insert_irp(csq: *mut IO_CSQ, irp: *mut IRP) {
    record(csq, "Insert");
    link(csq, irp);
}

unsafe extern "system" fn insert_irp_ex(csq: *mut IO_CSQ, irp: *mut IRP, _ctx: PVOID) -> NTSTATUS {
    record(csq, "InsertEx");
    let status = container(csq).insert_status.load(Ordering::SeqCst);
    if NT_SUCCESS(status) {
        link(csq, irp);
    }
    status
}

unsafe extern "system" fn remove_irp(csq: *mut IO_CSQ, irp: *mut IRP) {
    record(csq, "Remove");
    list::remove(IRP::list_entry_ptr(irp));
}

unsafe extern "system" fn peek_next_irp(csq: *mut IO_CSQ, irp: *mut IRP, ctx: PVOID) -> *mut IRP {
    record(csq, "Peek");
    let q = container(csq);
    let bugs = q.bugs.load(Ordering::SeqCst);
    if bugs & bug::PEEK_REENTERS != 0 {
        // SAFETY: deliberately wrong: re-enters the queue whose lock is held.
        return unsafe { IoCsqRemoveNextIrp(csq, std::ptr::null_mut()) };
    }
    if bugs & bug::PEEK_FOREIGN != 0 {
        return q.foreign.load(Ordering::SeqCst) as *mut IRP;
    }
    let head = head_of(csq);
    let mut e = if irp.is_null() || bugs & bug::PEEK_FROM_HEAD != 0 {
        list::flink(head)
    } else {
        list::flink(IRP::list_entry_ptr(irp))
    };
    while e != head {
        let candidate = IRP::from_list_entry(e);
        // A non-NULL peek context matches only the IRP it points to.
        if ctx.is_null() || ctx == candidate.cast() {
            return candidate;
        }
        e = list::flink(e);
    }
    std::ptr::null_mut()
}

unsafe extern "system" fn acquire_lock(csq: *mut IO_CSQ, irql: *mut KIRQL) {
    record(csq, "Acquire");
    // SAFETY: the queue's lock is initialized; `irql` is IoCsq's out parameter.
    unsafe { KeAcquireSpinLock(lock_of(csq), irql) };
}

unsafe extern "system" fn release_lock(csq: *mut IO_CSQ, irql: KIRQL) {
    record(csq, "Release");
    // SAFETY: held since acquire_lock, which saved `irql`.
    unsafe { KeReleaseSpinLock(lock_of(csq), irql) };
}

unsafe extern "system" fn complete_canceled_irp(csq: *mut IO_CSQ, irp: *mut IRP) {
    record(csq, "CompleteCanceled");
    container(csq).canceled.fetch_add(1, Ordering::SeqCst);
    Irp(irp).complete(STATUS_CANCELLED);
}

impl Q {
    /// A new queue, initialized with IoCsqInitialize (or IoCsqInitializeEx if `ex`).
    pub fn new(ex: bool) -> Q {
        let q = Box::into_raw(Box::new(Queue {
            csq: UnsafeCell::new(IO_CSQ::zeroed()),
            lock: UnsafeCell::new(0),
            head: UnsafeCell::new(LIST_ENTRY {
                Flink: std::ptr::null_mut(),
                Blink: std::ptr::null_mut(),
            }),
            log: Mutex::new(Vec::new()),
            canceled: AtomicU32::new(0),
            insert_status: AtomicI32::new(STATUS_SUCCESS),
            bugs: AtomicU32::new(0),
            foreign: AtomicUsize::new(0),
        }));
        let csq = q.cast::<IO_CSQ>();
        list::init(head_of(csq));
        // SAFETY: the lock word is in the fresh queue.
        unsafe { KeInitializeSpinLock(lock_of(csq)) };
        let status = if ex {
            // SAFETY: the IO_CSQ is in pinned (leaked until `free`) storage; the callbacks
            // follow the IO_CSQ contracts.
            unsafe {
                IoCsqInitializeEx(
                    csq,
                    Some(insert_irp_ex),
                    Some(remove_irp),
                    Some(peek_next_irp),
                    Some(acquire_lock),
                    Some(release_lock),
                    Some(complete_canceled_irp),
                )
            }
        } else {
            // SAFETY: as above.
            unsafe {
                IoCsqInitialize(
                    csq,
                    Some(insert_irp),
                    Some(remove_irp),
                    Some(peek_next_irp),
                    Some(acquire_lock),
                    Some(release_lock),
                    Some(complete_canceled_irp),
                )
            }
        };
        assert_eq!(status, STATUS_SUCCESS);
        Q(q as usize)
    }

    pub fn csq(self) -> PIO_CSQ {
        self.0 as PIO_CSQ
    }

    pub fn queue(self) -> &'static Queue {
        container(self.csq())
    }

    pub fn lock_addr(self) -> usize {
        lock_of(self.csq()) as usize
    }

    pub fn log(self) -> Vec<&'static str> {
        self.queue().log.lock().unwrap().clone()
    }

    pub fn clear_log(self) {
        self.queue().log.lock().unwrap().clear();
    }

    pub fn canceled(self) -> u32 {
        self.queue().canceled.load(Ordering::SeqCst)
    }

    pub fn set_bugs(self, bugs: u32) {
        self.queue().bugs.store(bugs, Ordering::SeqCst);
    }

    pub fn insert(self, irp: Irp, ctx: PIO_CSQ_IRP_CONTEXT) {
        // SAFETY: the queue is initialized; the IRP is routed to the caller; `ctx` is NULL or
        // outlives the IRP's stay in the queue (tests keep contexts to the end).
        unsafe { IoCsqInsertIrp(self.csq(), irp.0, ctx) };
    }

    pub fn insert_ex(self, irp: Irp, ctx: PIO_CSQ_IRP_CONTEXT) -> NTSTATUS {
        // SAFETY: as `insert`.
        unsafe { IoCsqInsertIrpEx(self.csq(), irp.0, ctx, std::ptr::null_mut()) }
    }

    pub fn remove_next(self, peek: PVOID) -> Option<Irp> {
        // SAFETY: the queue is initialized; the fragment's peek takes NULL or an IRP address.
        let irp = unsafe { IoCsqRemoveNextIrp(self.csq(), peek) };
        (!irp.is_null()).then_some(Irp(irp))
    }

    pub fn remove(self, ctx: PIO_CSQ_IRP_CONTEXT) -> Option<Irp> {
        // SAFETY: `ctx` was passed to an insert on this queue and is still valid.
        let irp = unsafe { IoCsqRemoveIrp(self.csq(), ctx) };
        (!irp.is_null()).then_some(Irp(irp))
    }

    /// Acquires the queue lock directly, as the driver's own code would.
    pub fn lock(self) -> KIRQL {
        let mut irql = 0;
        // SAFETY: the lock is initialized.
        unsafe { KeAcquireSpinLock(lock_of(self.csq()), &mut irql) };
        irql
    }

    pub fn unlock(self, irql: KIRQL) {
        // SAFETY: held by the caller.
        unsafe { KeReleaseSpinLock(lock_of(self.csq()), irql) };
    }

    /// Frees the queue (every IRP must be out of it).
    pub fn free(self) {
        // SAFETY: allocated by `new` with Box; no IRP or thread uses it any more.
        drop(unsafe { Box::from_raw(self.0 as *mut Queue) });
    }
}

/// A zeroed IO_CSQ_IRP_CONTEXT in stable storage.
pub fn context() -> Box<IO_CSQ_IRP_CONTEXT> {
    Box::new(IO_CSQ_IRP_CONTEXT::zeroed())
}

/// A context's address for IoCsq calls.
pub fn ctx_ptr(c: &mut IO_CSQ_IRP_CONTEXT) -> PIO_CSQ_IRP_CONTEXT {
    c
}

/// A cancel routine that does what the contract says: release the cancel lock with CancelIrql
/// and complete STATUS_CANCELLED.
pub unsafe extern "system" fn cancel_and_complete(_dev: *mut DEVICE_OBJECT, irp: *mut IRP) {
    // SAFETY: IoCancelIrp passes a live IRP with CancelIrql set.
    let irql = unsafe { (*irp).CancelIrql };
    ntsim::spinlock::IoReleaseCancelSpinLock(irql);
    Irp(irp).complete(STATUS_CANCELLED);
}

/// A cancel routine that releases the lock and does nothing else (the IRP stays with the test).
pub unsafe extern "system" fn cancel_and_keep(_dev: *mut DEVICE_OBJECT, irp: *mut IRP) {
    // SAFETY: as above.
    let irql = unsafe { (*irp).CancelIrql };
    ntsim::spinlock::IoReleaseCancelSpinLock(irql);
}
