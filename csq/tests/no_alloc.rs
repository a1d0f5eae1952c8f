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
use support::bare::{BareCsq, complete_with};
use support::{RawIrp, machine};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
/// When set, only allocations of threads that have [`HERE`] set count: the threads of an
/// earlier machine still winding down (or the test harness) must not add noise to a count
/// that is compared exactly.
static THIS_THREAD_ONLY: AtomicBool = AtomicBool::new(false);

std::thread_local! {
    static HERE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn counts_here() -> bool {
    COUNTING.load(Ordering::Relaxed)
        && (!THIS_THREAD_ONLY.load(Ordering::Relaxed) || HERE.with(std::cell::Cell::get))
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counts_here() {
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
        if counts_here() {
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

/// Counts the host allocations `f` makes, on every thread.
fn count(f: impl FnOnce()) -> usize {
    ALLOCS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    f();
    COUNTING.store(false, Ordering::SeqCst);
    ALLOCS.load(Ordering::SeqCst)
}

/// Counts the host allocations `f` makes on the calling thread only: for sequences that run
/// entirely on one emulated thread (a cancel routine runs inline in IoCancelIrp's caller).
fn count_here(f: impl FnOnce()) -> usize {
    HERE.with(|h| h.set(true));
    THIS_THREAD_ONLY.store(true, Ordering::SeqCst);
    let n = count(f);
    THIS_THREAD_ONLY.store(false, Ordering::SeqCst);
    HERE.with(|h| h.set(false));
    n
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

// ---- a bare IoCsq queue written the C way (support/bare.rs) -------------------------------------

struct WithBare(BareCsq);

impl WithBare {
    fn new() -> WithBare {
        WithBare(BareCsq::new())
    }
}

impl Ops for WithBare {
    fn insert(&self, irp: RawIrp) {
        // SAFETY: an IRP we own, untracked.
        unsafe { self.0.insert(irp.ptr(), std::ptr::null_mut()) };
    }

    fn insert_tracked(&self, irp: RawIrp) {
        // SAFETY: an IRP we own; the context lives in the queue and tracks only this IRP.
        unsafe { self.0.insert(irp.ptr(), self.0.context()) };
    }

    fn remove_next_and_complete(&self) {
        let irp = self.0.remove_next();
        assert!(!irp.is_null());
        complete_with(irp, STATUS_SUCCESS);
    }

    fn remove_tracked_and_complete(&self) {
        // SAFETY: the context was used for an IRP of this queue.
        let irp = unsafe { self.0.remove(self.0.context()) };
        assert!(!irp.is_null());
        complete_with(irp, STATUS_SUCCESS);
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
    assert_eq!(count_here(|| drop(std::hint::black_box(Box::new(1u8)))), 1);
    let bare = machine()
        .run(|| {
            let q = WithBare::new();
            // Warm up (first-use costs of the host and of ntsim's tables), then count.
            let warm = irps();
            sequence(&q, &warm);
            let irps = irps();
            let n = count_here(|| sequence(&q, &irps));
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
            let n = count_here(|| sequence(&q, &irps));
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
