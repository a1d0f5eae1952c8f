//! Queueing, removing and cancelling allocate nothing.
//!
//! Three facts, from strongest to most concrete:
//! - the crate is `#![no_std]` without `extern crate alloc`, and its seam (`sys/`) has no pool
//!   routine, so it *cannot* allocate;
//! - with every pool allocation made to fail, the operations still succeed;
//! - counted with a global allocator, the host allocations during a sequence of inserts,
//!   removals and cancels through `csq` equal those of the same sequence on a bare `IoCsq`
//!   queue with hand-written C-style callbacks: whatever allocates there is ntsim's own
//!   bookkeeping, and `csq` adds nothing to it.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ::csq::pinned_init::InPlaceInit;
use ::csq::{CancelSafeQueue, Fifo, NtStatus};
use ntsim::ntdef::*;
use support::{RawIrp, machine};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded caller contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded caller contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded caller contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The counter is global: tests of this binary run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Counts the host allocations `f` makes.
fn count(f: impl FnOnce()) -> usize {
    ALLOCS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    f();
    COUNTING.store(false, Ordering::SeqCst);
    ALLOCS.load(Ordering::SeqCst)
}

const FILE: usize = 0xF11E;

/// The sequence: 4 inserts (one tracked), 2 removals completed by the remover, 1 cancel, and a
/// removal by context.
trait Ops {
    fn insert(&self, irp: RawIrp);
    fn insert_tracked(&self, irp: RawIrp);
    fn remove_next_and_complete(&self);
    fn remove_tracked_and_complete(&self);
}

fn sequence(q: &dyn Ops, irps: &[RawIrp; 4]) {
    q.insert(irps[0]);
    q.insert(irps[1]);
    q.insert(irps[2]);
    q.insert_tracked(irps[3]);
    q.remove_next_and_complete();
    irps[1].cancel();
    q.remove_next_and_complete();
    q.remove_tracked_and_complete();
}

// ---- the crate ---------------------------------------------------------------------------------

struct WithCsq {
    q: std::pin::Pin<Box<CancelSafeQueue<Fifo, 1>>>,
    ticket: std::cell::RefCell<Option<::csq::Ticket>>,
}

impl Ops for WithCsq {
    fn insert(&self, irp: RawIrp) {
        let _pending = self.q.insert(irp.take(), ()).expect("accepted");
    }

    fn insert_tracked(&self, irp: RawIrp) {
        let (_pending, t) = self.q.insert_tracked(irp.take(), ()).expect("accepted");
        // Replacing a `None` stores in place: no allocation.
        *self.ticket.borrow_mut() = Some(t);
    }

    fn remove_next_and_complete(&self) {
        self.q
            .remove_next()
            .expect("queued")
            .complete(NtStatus::SUCCESS, 0);
    }

    fn remove_tracked_and_complete(&self) {
        let t = self.ticket.borrow_mut().take().expect("ticket");
        self.q
            .remove_tracked(t)
            .expect("queued")
            .complete(NtStatus::SUCCESS, 0);
    }
}

// ---- a bare IoCsq queue written the C way --------------------------------------------------------

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
    // SAFETY: address arithmetic inside a LIST_ENTRY.
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

fn complete_with(irp: PIRP, status: NTSTATUS) {
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

fn bare_complete(irp: PIRP) {
    complete_with(irp, STATUS_SUCCESS);
}

struct WithBare(Box<Bare>);

impl WithBare {
    fn new() -> WithBare {
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
        WithBare(b)
    }

    fn csq(&self) -> PIO_CSQ {
        (&raw const self.0.csq).cast_mut()
    }
}

impl Ops for WithBare {
    fn insert(&self, irp: RawIrp) {
        // SAFETY: an initialized queue and an IRP we own.
        unsafe {
            ntsim::csq::IoCsqInsertIrpEx(
                self.csq(),
                irp.ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
    }

    fn insert_tracked(&self, irp: RawIrp) {
        let ctx = (&raw const self.0.context).cast_mut();
        // SAFETY: as above; the context lives in the queue.
        unsafe { ntsim::csq::IoCsqInsertIrpEx(self.csq(), irp.ptr(), ctx, std::ptr::null_mut()) };
    }

    fn remove_next_and_complete(&self) {
        // SAFETY: an initialized queue.
        let irp = unsafe { ntsim::csq::IoCsqRemoveNextIrp(self.csq(), std::ptr::null_mut()) };
        assert!(!irp.is_null());
        bare_complete(irp);
    }

    fn remove_tracked_and_complete(&self) {
        let ctx = (&raw const self.0.context).cast_mut();
        // SAFETY: the context was used for an IRP of this queue.
        let irp = unsafe { ntsim::csq::IoCsqRemoveIrp(self.csq(), ctx) };
        assert!(!irp.is_null());
        bare_complete(irp);
    }
}

fn irps() -> [RawIrp; 4] {
    [0; 4].map(|_| RawIrp::new(IRP_MJ_READ, FILE))
}

#[test]
fn csq_adds_no_host_allocation_to_the_kernels_own() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The counter sees an allocation when there is one (a check that cannot fail is no check).
    assert_eq!(count(|| drop(std::hint::black_box(Box::new(1u8)))), 1);
    let bare = machine()
        .run(|| {
            let q = WithBare::new();
            // Warm up (first-use costs of the host and of ntsim's tables), then count.
            let warm = irps();
            sequence(&q, &warm);
            let irps = irps();
            let n = count(|| sequence(&q, &irps));
            irps.iter().chain(&warm).for_each(|r| r.free());
            n
        })
        .expect_clean();
    let with_csq = machine()
        .run(|| {
            let q = WithCsq {
                q: Box::pin_init(CancelSafeQueue::new(Fifo)).unwrap(),
                ticket: std::cell::RefCell::new(None),
            };
            let warm = irps();
            sequence(&q, &warm);
            warm.iter().for_each(|r| r.free());
            let irps = irps();
            let n = count(|| sequence(&q, &irps));
            for r in &irps {
                assert!(r.completed());
            }
            assert_eq!(irps[1].status(), STATUS_CANCELLED);
            irps.iter().for_each(|r| r.free());
            n
        })
        .expect_clean();
    assert_eq!(
        with_csq,
        bare,
        "csq made {} host allocations more than the bare IoCsq queue",
        with_csq as isize - bare as isize
    );
}

#[test]
fn queueing_and_cancelling_work_with_every_pool_allocation_failing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let out = machine().run(|| {
        let q = Box::pin_init(CancelSafeQueue::<Fifo, 1>::new(Fifo)).unwrap();
        let irps = irps();
        let (live_before, _) = ntsim::pool::pool_usage();
        ntsim::pool::fail_allocations(u32::MAX, None);
        let with = WithCsq {
            q,
            ticket: std::cell::RefCell::new(None),
        };
        sequence(&with, &irps);
        ntsim::pool::fail_allocations(0, None);
        assert_eq!(ntsim::pool::pool_usage().0, live_before);
        for r in &irps {
            assert!(r.completed());
        }
        irps.iter().for_each(|r| r.free());
    });
    out.expect_clean();
}

// ---- the worker ------------------------------------------------------------------------------

/// Waits on a notification event that nobody signals: the request stays in service.
#[::csq::pinned_init::pin_data]
struct Hold {
    #[pin]
    never: ::csq::Event,
}

impl ::csq::SerialHandler for Hold {
    fn start(&self, _request: &::csq::IrpView, _worker: usize) -> ::csq::Service<'_> {
        ::csq::Service::Until {
            source: &self.never,
            status: NtStatus::SUCCESS,
            information: 0,
        }
    }
}

/// Three inserts, two of them cancelled while queued, behind a request in service.
fn three() -> [RawIrp; 3] {
    [0; 3].map(|_| RawIrp::new(IRP_MJ_READ, FILE))
}

fn worker_sequence(insert: &dyn Fn(RawIrp), irps: &[RawIrp; 3]) {
    for r in irps {
        insert(*r);
    }
    assert!(irps[0].cancel());
    assert!(irps[2].cancel());
}

#[test]
fn the_worker_adds_no_host_allocation_to_queueing_and_cancelling() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Baseline: the same kernel calls without the worker: a queue insert and a semaphore
    // release per request, then the cancels.
    let bare = machine()
        .run(|| {
            let q = Box::pin_init(CancelSafeQueue::<Fifo>::new(Fifo)).unwrap();
            let sem = Box::pin_init(::csq::Semaphore::new(0, i32::MAX as u32)).unwrap();
            let insert = |r: RawIrp| {
                let _p = q.insert(r.take(), ()).expect("accepted");
                sem.release(1);
            };
            let warm = three();
            worker_sequence(&insert, &warm);
            let irps = three();
            let n = count(|| worker_sequence(&insert, &irps));
            q.cancel_all();
            n
        })
        .expect_clean();
    let with_worker = machine()
        .run(|| {
            ::csq::pinned_init::stack_try_pin_init!(let w: ::csq::SerialWorker<Hold> =
            ::csq::SerialWorker::new(
                ::csq::pinned_init::pin_init!(Hold {
                    never <- ::csq::Event::new(::csq::EventKind::Notification, false),
                }),
                Fifo,
            ));
            let w = w.unwrap();
            let gate = RawIrp::new(IRP_MJ_READ, FILE);
            let _p = w.insert(gate.take(), ()).expect("accepted");
            // Let the worker take the gate into service and block on its source.
            ::csq::sleep(::csq::Interval::from_millis(1));
            assert_eq!(w.queued(), 0);
            let insert = |r: RawIrp| {
                let _p = w.insert(r.take(), ()).expect("accepted");
            };
            let warm = three();
            worker_sequence(&insert, &warm);
            let irps = three();
            let n = count(|| worker_sequence(&insert, &irps));
            assert_eq!(irps[0].status(), STATUS_CANCELLED);
            assert_eq!(irps[2].status(), STATUS_CANCELLED);
            w.shutdown(); // unload: the gate and the queued ones end STATUS_CANCELLED
            assert_eq!(gate.status(), STATUS_CANCELLED);
            assert_eq!(irps[1].status(), STATUS_CANCELLED);
            n
        })
        .expect_clean();
    // Whatever allocates here is ntsim's own bookkeeping (its tables grow differently in the two
    // machines); the worker adds nothing to it.
    assert!(
        with_worker <= bare,
        "the worker made {} host allocations more than queue + semaphore",
        with_worker as isize - bare as isize
    );
}
