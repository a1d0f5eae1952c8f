//! A bare `IoCsq` queue written the C way: the `IO_CSQ`, its spin lock and its list head in one
//! `#[repr(C)]` block, and six hand-written callbacks (container-of by field offset, a doubly
//! linked list through `Tail.Overlay.ListEntry`). It is the baseline `csq` is compared with, in
//! the no-allocation test and in the benchmarks: the same kernel calls, without the crate.

use ntsim::ntdef::*;

#[repr(C)]
struct Bare {
    csq: IO_CSQ,
    lock: KSPIN_LOCK,
    head: LIST_ENTRY,
    context: IO_CSQ_IRP_CONTEXT,
}

/// `*p`.
///
/// # Safety
/// `p` is valid for reads.
unsafe fn get<T: Copy>(p: *const T) -> T {
    // SAFETY: caller contract.
    unsafe { p.read() }
}

/// `*p = v`.
///
/// # Safety
/// `p` is valid for writes.
unsafe fn set<T>(p: *mut T, v: T) {
    // SAFETY: caller contract.
    unsafe { p.write(v) }
}

fn flink(e: *mut LIST_ENTRY) -> *mut *mut LIST_ENTRY {
    e.cast()
}

fn blink(e: *mut LIST_ENTRY) -> *mut *mut LIST_ENTRY {
    e.cast::<*mut LIST_ENTRY>().wrapping_add(1)
}

fn head_of(csq: PIO_CSQ) -> *mut LIST_ENTRY {
    csq.wrapping_byte_add(std::mem::offset_of!(Bare, head))
        .cast()
}

fn lock_of(csq: PIO_CSQ) -> *mut KSPIN_LOCK {
    csq.wrapping_byte_add(std::mem::offset_of!(Bare, lock))
        .cast()
}

unsafe extern "system" fn bare_insert(csq: PIO_CSQ, irp: PIRP, _ctx: PVOID) -> NTSTATUS {
    let (head, entry) = (head_of(csq), IRP::list_entry_ptr(irp));
    // SAFETY: our queue, lock held; the IRP's list entry is free.
    let last = unsafe { get(blink(head)) };
    // SAFETY: as above, for each link.
    unsafe { set(flink(entry), head) };
    // SAFETY: as above.
    unsafe { set(blink(entry), last) };
    // SAFETY: as above.
    unsafe { set(flink(last), entry) };
    // SAFETY: as above.
    unsafe { set(blink(head), entry) };
    STATUS_SUCCESS
}

unsafe extern "system" fn bare_remove(_csq: PIO_CSQ, irp: PIRP) {
    let entry = IRP::list_entry_ptr(irp);
    // SAFETY: a queued IRP, lock held.
    let f = unsafe { get(flink(entry)) };
    // SAFETY: as above.
    let b = unsafe { get(blink(entry)) };
    // SAFETY: as above.
    unsafe { set(flink(b), f) };
    // SAFETY: as above.
    unsafe { set(blink(f), b) };
}

unsafe extern "system" fn bare_peek(csq: PIO_CSQ, irp: PIRP, _ctx: PVOID) -> PIRP {
    let head = head_of(csq);
    let start = if irp.is_null() {
        head
    } else {
        IRP::list_entry_ptr(irp)
    };
    // SAFETY: our queue, lock held.
    let next = unsafe { get(flink(start)) };
    if next == head {
        std::ptr::null_mut()
    } else {
        IRP::from_list_entry(next)
    }
}

unsafe extern "system" fn bare_acquire(csq: PIO_CSQ, irql: *mut KIRQL) {
    // SAFETY: our lock.
    let old = unsafe { ntsim::spinlock::KeAcquireSpinLockRaiseToDpc(lock_of(csq)) };
    // SAFETY: the kernel passes a writable KIRQL.
    unsafe { set(irql, old) };
}

unsafe extern "system" fn bare_release(csq: PIO_CSQ, irql: KIRQL) {
    // SAFETY: our lock, held.
    unsafe { ntsim::spinlock::KeReleaseSpinLock(lock_of(csq), irql) };
}

/// Sets the IRP's status and completes it (`IoCompleteRequest`).
pub fn complete_with(irp: PIRP, status: NTSTATUS) {
    let iosb = irp
        .wrapping_byte_add(std::mem::offset_of!(IRP, IoStatus))
        .cast();
    // SAFETY: the IRP is ours to complete.
    unsafe { set(iosb, IO_STATUS_BLOCK::new(status, 0)) };
    // SAFETY: as above.
    unsafe { ntsim::complete::IoCompleteRequest(irp, 0) };
}

unsafe extern "system" fn bare_complete_canceled(_csq: PIO_CSQ, irp: PIRP) {
    complete_with(irp, STATUS_CANCELLED);
}

/// The queue (boxed: the kernel links to it by address, and the box never moves it).
pub struct BareCsq(Box<Bare>);

impl Default for BareCsq {
    fn default() -> Self {
        Self::new()
    }
}

impl BareCsq {
    /// `IoCsqInitializeEx` with the hand-written callbacks.
    pub fn new() -> BareCsq {
        // SAFETY: all-zero is a valid Bare (plain data).
        let mut b: Box<Bare> = Box::new(unsafe { std::mem::zeroed() });
        let head = &raw mut b.head;
        // SAFETY: the Box does not move.
        unsafe {
            set(
                head,
                LIST_ENTRY {
                    Flink: head,
                    Blink: head,
                },
            )
        };
        // SAFETY: the callbacks have the IoCsq signatures.
        unsafe {
            ntsim::csq::IoCsqInitializeEx(
                &raw mut b.csq,
                Some(bare_insert),
                Some(bare_remove),
                Some(bare_peek),
                Some(bare_acquire),
                Some(bare_release),
                Some(bare_complete_canceled),
            );
        }
        BareCsq(b)
    }

    /// The `IO_CSQ`.
    pub fn csq(&self) -> PIO_CSQ {
        (&raw const self.0.csq).cast_mut()
    }

    /// The one `IO_CSQ_IRP_CONTEXT` embedded in the queue.
    pub fn context(&self) -> PIO_CSQ_IRP_CONTEXT {
        (&raw const self.0.context).cast_mut()
    }

    /// `IoCsqInsertIrpEx(csq, irp, ctx, NULL)`.
    ///
    /// # Safety
    /// The caller owns `irp` (live, with a current stack location) and gives it to the queue;
    /// `ctx` is NULL or a context that stays valid (and unused by any other IRP) until the IRP
    /// leaves the queue.
    pub unsafe fn insert(&self, irp: PIRP, ctx: PIO_CSQ_IRP_CONTEXT) -> NTSTATUS {
        // SAFETY: an initialized queue; the rest is the caller's contract.
        unsafe { ntsim::csq::IoCsqInsertIrpEx(self.csq(), irp, ctx, std::ptr::null_mut()) }
    }

    /// `IoCsqRemoveNextIrp(csq, NULL)`.
    pub fn remove_next(&self) -> PIRP {
        // SAFETY: an initialized queue.
        unsafe { ntsim::csq::IoCsqRemoveNextIrp(self.csq(), std::ptr::null_mut()) }
    }

    /// `IoCsqRemoveIrp(csq, ctx)`.
    ///
    /// # Safety
    /// `ctx` was passed to [`BareCsq::insert`] on this queue and not reused since.
    pub unsafe fn remove(&self, ctx: PIO_CSQ_IRP_CONTEXT) -> PIRP {
        // SAFETY: caller contract.
        unsafe { ntsim::csq::IoCsqRemoveIrp(self.csq(), ctx) }
    }
}

/// The size of the queue's in-place block (`IO_CSQ`, lock, list head; without the embedded
/// context).
pub const BARE_QUEUE_SIZE: usize = std::mem::offset_of!(Bare, context);
