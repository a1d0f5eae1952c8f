//! [`SerialWorker`]: a cancel-safe queue served by dedicated system threads, the replacement for
//! StartIo serialization (spec B.2's polling thread, with the request in service kept cancelable
//! as spec B.5 E2/E2a require).
//!
//! Dispatch inserts the request and returns `STATUS_PENDING`. A worker thread takes one request
//! at a time at PASSIVE_LEVEL and asks the driver's [`SerialHandler`] to start it. A request that
//! does not complete at once stays *in service* inside a second cancel-safe queue (one per
//! worker thread), under a tracked context, so it stays cancelable. The worker then waits on
//! three objects: the handler's completion source, its own "cancelled" signal, and the
//! queue's attention event (purge, shutdown). It never trusts which of them woke it: it claims
//! the request with `IoCsqRemoveIrp` first (spec A.9.5). `None` means the request was cancelled
//! and completed by `CsqCompleteCanceledIrp` in the canceller's context. Otherwise it looks at
//! the source's state and at the queue's state to decide, and it puts the request back in
//! service after a stale wake. Whatever happened, [`SerialHandler::stop`] runs before the next
//! request starts, so the handler always cancels its timer before it arms it again.
//!
//! Wake accounting (spec B.2): each accepted insert releases the worker semaphore once, and each
//! wake consumes one unit and takes at most one request. A request cancelled before a worker
//! woke for it costs exactly one empty wake: K inserts of which J were cancelled give at most K
//! wakes, never a busy loop.

use core::fmt;
use core::marker::PhantomPinned;
use core::pin::Pin;
use core::ptr;
use core::sync::atomic::{AtomicI32, AtomicU8, AtomicUsize, Ordering};

use pinned_init::{PinInit, pin_data, pin_init, pin_init_array_from_fn, pin_init_from_closure};

use crate::event::{Event, EventKind};
use crate::irp::{FileObject, Irp, IrpView, Pending};
use crate::policy::{Fifo, Position, QueuePolicy};
use crate::queue::{CancelSafeQueue, Filter, Refused};
use crate::semaphore::Semaphore;
use crate::status::{NtError, NtStatus};
use crate::sys;
use crate::thread::{SystemThread, ThreadMain};
use crate::wait::{Interval, WaitResult, Waitable, wait_any};

/// What a [`SerialWorker`] does with the requests it serves: implemented by the driver.
///
/// Both methods run on a worker thread at PASSIVE_LEVEL; they may wait, but a long wait in
/// [`start`](SerialHandler::start) delays every request behind it, and cancellation of the
/// request being started is only noticed once `start` has returned.
pub trait SerialHandler: Sync + Send {
    /// The request entering service on worker `worker` (0-based, below the worker's thread
    /// count). Start its work and say how it ends: [`Service::Complete`] completes it now;
    /// [`Service::Until`] keeps it in service, cancelable, until the given dispatcher object is
    /// signaled (e.g. a [`Timer`](crate::Timer) armed here with the request's due time).
    ///
    /// IRQL: PASSIVE_LEVEL.
    fn start(&self, request: &IrpView, worker: usize) -> Service<'_>;

    /// The request of `worker` left service (completed, cancelled, flushed or purged): stop its
    /// work, e.g. cancel the timer (`KeCancelTimer`; its result does not matter, ownership was
    /// decided already). Always called before the next request starts on that worker.
    ///
    /// IRQL: PASSIVE_LEVEL.
    fn stop(&self, worker: usize) {
        let _ = worker;
    }
}

/// How a request that [`SerialHandler::start`] started ends.
#[derive(Clone, Copy)]
pub enum Service<'a> {
    /// Complete it now with this status and information (e.g. a due time of 0).
    Complete(NtStatus, usize),
    /// Keep it in service, cancelable, until `source` is signaled, then complete it with
    /// `status` and `information`. `source` should stay signaled once signaled (a notification
    /// timer or event): the worker checks its state after every wake.
    Until {
        /// The completion source.
        source: &'a dyn Waitable,
        /// The status to complete with when it is signaled.
        status: NtStatus,
        /// The information to complete with.
        information: usize,
    },
}

impl fmt::Debug for Service<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Service::Complete(s, i) => f.debug_tuple("Complete").field(s).field(i).finish(),
            Service::Until {
                status,
                information,
                ..
            } => f
                .debug_struct("Until")
                .field("status", status)
                .field("information", information)
                .finish_non_exhaustive(),
        }
    }
}

/// The test-only control point in `Counted::done_one`, between the count reaching 0 and the
/// idle signal (`ntsim::breakpoint::Point::Named` on ntsim; nothing on Windows).
const IDLE_SIGNAL_POINT: &str = "csq.worker.idle_signal";

/// Queue states.
const RUNNING: u8 = 0;
const STOPPED: u8 = 1;
const PURGED: u8 = 2;
const SHUT_DOWN: u8 = 3;

/// The policy of the pending queue: the driver's policy, plus the queue state's refusals and
/// the count of requests not yet finished (for `drain` and `purge`).
#[pin_data]
struct Counted<P> {
    inner: P,
    /// 0, or the NT error inserts are refused with.
    refuse: AtomicI32,
    /// Requests accepted and not yet completed (queued or in service).
    outstanding: AtomicUsize,
    /// Signaled while `outstanding` is 0.
    #[pin]
    idle: Event,
}

impl<P: QueuePolicy> Counted<P> {
    fn done_one(&self) {
        if self.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
            // A test parks a completion here to let an `admit` on another CPU count a new
            // request and reset `idle` before this signal (the race `wait_idle` survives).
            sys::control_point(IDLE_SIGNAL_POINT);
            self.idle.signal();
        }
    }

    /// Waits until no request is outstanding. The event alone cannot be trusted: a `done_one`
    /// on one CPU may signal it just after an `admit` on another CPU counted a new request and
    /// reset it, leaving it signalled while a request is outstanding. So the count decides;
    /// the event only says when to look again, and is reset (then the count re-read) before
    /// each wait, so a stale signal costs one extra look, never an early return or a busy loop.
    fn wait_idle(&self) {
        loop {
            if self.outstanding.load(Ordering::Acquire) == 0 {
                return;
            }
            self.idle.reset();
            if self.outstanding.load(Ordering::Acquire) == 0 {
                // The last request finished between the two reads; its signal may have come
                // before our reset, so the event cannot be waited on.
                return;
            }
            self.idle.wait(None);
        }
    }
}

impl<P: QueuePolicy> QueuePolicy for Counted<P> {
    type Arg = P::Arg;

    fn admit(&self, irp: &IrpView, arg: &P::Arg, queued: usize) -> Result<Position, NtError> {
        if let Some(e) = NtError::from_status(NtStatus(self.refuse.load(Ordering::Acquire))) {
            return Err(e);
        }
        let position = self.inner.admit(irp, arg, queued)?;
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        self.idle.reset();
        Ok(position)
    }

    fn cancelled(&self, irp: Irp) {
        self.inner.cancelled(irp);
        self.done_one();
    }
}

/// The policy of a worker's in-service queue: FIFO; a cancellation completes the request with
/// `STATUS_CANCELLED` (in the canceller's context) and then wakes the worker.
#[pin_data]
struct InService {
    #[pin]
    cancelled: Event,
}

impl QueuePolicy for InService {
    type Arg = ();

    fn admit(&self, _irp: &IrpView, _arg: &(), _queued: usize) -> Result<Position, NtError> {
        Ok(Position::Back)
    }

    fn cancelled(&self, irp: Irp) {
        // The cancelled request completes first; the worker wakes after (the order of
        // docs/timer-event-design.md).
        irp.complete(NtStatus::CANCELLED, 0);
        self.cancelled.signal();
    }
}

/// Everything the worker threads use; dropped only after they were joined.
#[pin_data]
struct Core<H, P: QueuePolicy, const THREADS: usize> {
    #[pin]
    pending: CancelSafeQueue<Counted<P>>,
    #[pin]
    in_service: [CancelSafeQueue<InService, 1>; THREADS],
    #[pin]
    handler: H,
    /// One unit per accepted insert.
    #[pin]
    work: Semaphore,
    /// Notification: set once, at shutdown.
    #[pin]
    shutdown: Event,
    /// Notification: set while running.
    #[pin]
    running: Event,
    /// Notification: set by purge and shutdown, reset by resume; requests in service are
    /// cancelled when it is set.
    #[pin]
    attention: Event,
    state: AtomicU8,
    /// The file object whose requests `flush_file` is completing (0: none).
    flushing: AtomicUsize,
    /// Semaphore wakes so far (diagnostics, spec B.2 accounting).
    wakes: AtomicUsize,
}

impl<H: SerialHandler, P: QueuePolicy, const THREADS: usize> Core<H, P, THREADS> {
    fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// The worker thread's loop.
    fn run(&self, index: usize) {
        loop {
            match self.state() {
                SHUT_DOWN => return,
                RUNNING => {}
                _ => {
                    wait_any(&[&self.shutdown, &self.running], None);
                    continue;
                }
            }
            if wait_any(&[&self.shutdown, &self.work], None) != WaitResult::Signaled(1) {
                continue;
            }
            self.wakes.fetch_add(1, Ordering::Relaxed);
            if self.state() != RUNNING {
                // Stopped, purged or shutting down after we were woken: give the unit back
                // for a later resume.
                self.work.release(1);
                continue;
            }
            // A request cancelled before we woke has spent its unit: nothing to do (spec B.2).
            if let Some(irp) = self.take_next() {
                self.serve(index, irp);
            }
        }
    }

    /// The next pending request, skipping the file object being flushed.
    fn take_next(&self) -> Option<Irp> {
        let flushing = self.flushing.load(Ordering::Acquire);
        if flushing == 0 {
            return self.pending.remove_next();
        }
        let other_file =
            move |irp: &IrpView| irp.file_object().map(FileObject::addr) != Some(flushing);
        self.pending
            .remove_next_where(Filter::Matching(&other_file))
    }

    /// Serves one request on worker `index`.
    fn serve(&self, index: usize, irp: Irp) {
        let slot = &self.in_service[index];
        match self.handler.start(&irp, index) {
            Service::Complete(status, information) => {
                irp.complete(status, information);
            }
            Service::Until {
                source,
                status,
                information,
            } => self.wait_in_service(slot, irp, source, status, information),
        }
        self.handler.stop(index);
        self.pending.policy().done_one();
    }

    /// Keeps `irp` in service (cancelable) until its source fires, it is cancelled, or the
    /// queue is purged or shut down (spec B.5 E2a).
    fn wait_in_service(
        &self,
        slot: &CancelSafeQueue<InService, 1>,
        irp: Irp,
        source: &dyn Waitable,
        status: NtStatus,
        information: usize,
    ) {
        let mut irp = irp;
        loop {
            let ticket = match slot.insert_tracked(irp, ()) {
                // The request was marked pending at dispatch already; if it was cancelled in the
                // meantime the insert completed it (spec A.9.3 step 7) and the claim below
                // returns None.
                Ok((_pending, ticket)) => ticket,
                Err(refused) => {
                    // Cannot happen (one free slot, a policy that never refuses); fail safe.
                    refused.irp.complete(NtStatus::CANCELLED, 0);
                    return;
                }
            };
            wait_any(&[&self.attention, &slot.policy().cancelled, source], None);
            // Never trust which object woke us: claim first.
            let Some(claimed) = slot.remove_tracked(ticket) else {
                // Cancelled (completed by CsqCompleteCanceledIrp) or flushed.
                return;
            };
            if source.wait(Some(Interval::ZERO)) == WaitResult::Signaled(0) {
                claimed.complete(status, information);
                return;
            }
            if matches!(self.state(), PURGED | SHUT_DOWN) {
                claimed.complete(NtStatus::CANCELLED, 0);
                return;
            }
            // A stale wake (an earlier request's cancel signal): back in service.
            irp = claimed;
        }
    }
}

/// A worker thread's data: where the core is and which worker it is.
struct WorkerMain<H, P: QueuePolicy, const THREADS: usize> {
    core: *const Core<H, P, THREADS>,
    index: usize,
}

// SAFETY: the core is `Sync` (queues, kernel objects, atomics, a `Sync` handler) and outlives the
// thread (the `SerialWorker` joins its threads before the core is dropped).
unsafe impl<H: Sync, P: QueuePolicy, const THREADS: usize> Send for WorkerMain<H, P, THREADS> {}
// SAFETY: as above.
unsafe impl<H: Sync, P: QueuePolicy, const THREADS: usize> Sync for WorkerMain<H, P, THREADS> {}

impl<H: SerialHandler, P: QueuePolicy, const THREADS: usize> WorkerMain<H, P, THREADS> {
    fn core(&self) -> &Core<H, P, THREADS> {
        // SAFETY: the core lives until every worker thread was joined (type invariant of
        // `SerialWorker`).
        unsafe { &*self.core }
    }
}

impl<H: SerialHandler, P: QueuePolicy, const THREADS: usize> ThreadMain
    for WorkerMain<H, P, THREADS>
{
    fn run(self: Pin<&Self>) {
        self.core().run(self.index);
    }

    fn request_stop(self: Pin<&Self>) {
        let core = self.core();
        core.state.store(SHUT_DOWN, Ordering::Release);
        core.attention.signal();
        core.shutdown.signal();
    }
}

/// A cancel-safe queue served by `THREADS` dedicated system threads (default 1: requests are
/// serialized, like StartIo). The crate's guide "Moving a driver from StartIo to the worker"
/// shows it in a driver.
///
/// A worker thread takes one request at a time and asks the [`SerialHandler`] to start it. A
/// request that does not complete at once stays *in service* in a per-thread cancel-safe queue
/// under a tracked context, so it stays cancelable (spec B.5 E2): a cancellation completes it
/// with `STATUS_CANCELLED` at once, in the canceller's context, and wakes the worker, which
/// takes the next request at that instant. The worker waits on the handler's completion
/// source, its cancel signal and the queue's attention event (purge, shutdown); it never trusts
/// which one woke it, but claims the request with `IoCsqRemoveIrp` first (spec B.5 E2a), and
/// [`SerialHandler::stop`] always runs before the next request starts.
///
/// Wake accounting (spec B.2): each accepted insert releases the worker semaphore once; each
/// wake consumes one unit and takes at most one request, so K inserts of which J were
/// cancelled before a worker woke cost K wakes (J of them empty), never a busy loop.
///
/// - Dispatch: [`insert`](Self::insert) (returns [`Pending`]).
/// - Service: the threads call the [`SerialHandler`] `H` it owns, one request per thread at a
///   time, at PASSIVE_LEVEL; a request in service stays cancelable.
/// - Control, like a KMDF queue: [`stop`](Self::stop), [`resume`](Self::resume),
///   [`purge`](Self::purge), [`drain`](Self::drain).
/// - Cleanup: [`flush_file`](Self::flush_file). Unload: [`shutdown`](Self::shutdown) or drop.
///
/// It allocates nothing: it is built in place ([`SerialWorker::new`]) in the device extension.
///
/// # Invariants
///
/// `core` is initialized before the threads start and dropped after they were joined.
pub struct SerialWorker<H: SerialHandler, P: QueuePolicy = Fifo, const THREADS: usize = 1> {
    // Declared first: dropped (joined) before the core.
    threads: [SystemThread<WorkerMain<H, P, THREADS>>; THREADS],
    core: Core<H, P, THREADS>,
    _pin: PhantomPinned,
}

// SAFETY: shared access only reaches the core (`Sync` parts) and the thread handles (atomic).
unsafe impl<H: SerialHandler, P: QueuePolicy, const THREADS: usize> Sync
    for SerialWorker<H, P, THREADS>
{
}
// SAFETY: as above; the value is pinned and never actually moves between threads.
unsafe impl<H: SerialHandler, P: QueuePolicy, const THREADS: usize> Send
    for SerialWorker<H, P, THREADS>
{
}

impl<H: SerialHandler, P: QueuePolicy, const THREADS: usize> SerialWorker<H, P, THREADS> {
    /// An initializer: builds the queues, the events, the semaphore and the handler in place,
    /// then starts `THREADS` worker threads (`PsCreateSystemThread`).
    ///
    /// IRQL: PASSIVE_LEVEL.
    ///
    /// # Errors
    /// What `PsCreateSystemThread` fails with (e.g. `STATUS_INSUFFICIENT_RESOURCES`); the
    /// threads already started are stopped and joined again.
    pub fn new(handler: impl PinInit<H>, policy: P) -> impl PinInit<Self, NtStatus> {
        const { assert!(THREADS >= 1 && THREADS <= 64, "1 to 64 worker threads") };
        let core_init = pin_init!(Core::<H, P, THREADS> {
            pending <- CancelSafeQueue::new(pin_init!(Counted::<P> {
                inner: policy,
                refuse: AtomicI32::new(0),
                outstanding: AtomicUsize::new(0),
                idle <- Event::new(EventKind::Notification, true),
            })),
            in_service <- pin_init_array_from_fn(|_| CancelSafeQueue::new(pin_init!(InService {
                cancelled <- Event::new(EventKind::Synchronization, false),
            }))),
            handler <- handler,
            work <- Semaphore::new(0, i32::MAX as u32),
            shutdown <- Event::new(EventKind::Notification, false),
            running <- Event::new(EventKind::Notification, true),
            attention <- Event::new(EventKind::Notification, false),
            state: AtomicU8::new(RUNNING),
            flushing: AtomicUsize::new(0),
            wakes: AtomicUsize::new(0),
        });
        let init = move |this: *mut Self| {
            // SAFETY: `this` is valid for writes (PinInit contract); addresses only.
            let core = unsafe { &raw mut (*this).core };
            // SAFETY: as above.
            let threads = unsafe { &raw mut (*this).threads };
            // SAFETY: `core` is writable and pinned with `Self`.
            let Ok(()) = unsafe { core_init.__pinned_init(core) };
            let core_ptr = core.cast_const();
            let threads_init = pin_init_array_from_fn(|index| {
                SystemThread::new(WorkerMain {
                    core: core_ptr,
                    index,
                })
            });
            // SAFETY: `threads` is writable and pinned; each thread borrows the initialized
            // core, which stays until they are joined (drop order, and the error path below).
            if let Err(e) = unsafe { threads_init.__pinned_init(threads) } {
                // The threads already started were joined by the array initializer's cleanup.
                // SAFETY: initialized above, used by no thread any more.
                unsafe { ptr::drop_in_place(core) };
                return Err(e);
            }
            Ok(())
        };
        // SAFETY: on Ok every field is initialized (the marker is zero-sized); on Err nothing is.
        unsafe { pin_init_from_closure(init) }
    }

    /// The handler the workers call.
    ///
    /// IRQL: any.
    pub fn handler(&self) -> Pin<&H> {
        // SAFETY: structurally pinned: `Self` is `!Unpin` and never moves the core.
        unsafe { Pin::new_unchecked(&self.core.handler) }
    }

    /// Queues a request for the workers and wakes one (dispatch side). The returned
    /// [`Pending`] is what the dispatch routine returns (`STATUS_PENDING`). If the request was
    /// already cancelled it is completed with `STATUS_CANCELLED` inside the call, and the
    /// dispatch routine still returns `Pending` (spec A.9.3).
    ///
    /// IRQL: <= DISPATCH_LEVEL.
    ///
    /// # Errors
    /// [`Refused`] (the caller keeps the IRP, usually to complete it with the status):
    /// `STATUS_INVALID_DEVICE_STATE` after [`purge`](Self::purge) until
    /// [`resume`](Self::resume) (what KMDF returns for a purged queue; `STATUS_DEVICE_BUSY` is
    /// a warning, which IoCsqInsertIrpEx must not be given, spec A.9.3),
    /// `STATUS_DELETE_PENDING` after [`shutdown`](Self::shutdown), or the policy's own error.
    pub fn insert(&self, irp: Irp, arg: P::Arg) -> Result<Pending, Refused> {
        let pending = self.core.pending.insert(irp, arg)?;
        self.core.work.release(1);
        Ok(pending)
    }

    /// How many requests wait in the queue (not counting those in service). A snapshot.
    ///
    /// IRQL: any.
    pub fn queued(&self) -> usize {
        self.core.pending.len()
    }

    /// How many requests were accepted and not yet completed (queued or in service). A
    /// snapshot.
    ///
    /// IRQL: any.
    pub fn outstanding(&self) -> usize {
        self.core
            .pending
            .policy()
            .outstanding
            .load(Ordering::Acquire)
    }

    /// How many times a worker was woken for a request so far (diagnostics: at most one per
    /// accepted insert, plus one per unit given back while stopped).
    ///
    /// IRQL: any.
    pub fn wake_count(&self) -> usize {
        self.core.wakes.load(Ordering::Relaxed)
    }

    /// Stops handing requests to the handler: new requests are still accepted and queued;
    /// requests in service continue. Undo with [`resume`](Self::resume).
    ///
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn stop(&self) {
        let c = &self.core;
        if c.state
            .compare_exchange(RUNNING, STOPPED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            c.running.reset();
        }
    }

    /// Starts handing requests to the handler again, after [`stop`](Self::stop) or
    /// [`purge`](Self::purge) (which it also ends: inserts are accepted again). Does nothing
    /// after [`shutdown`](Self::shutdown).
    ///
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn resume(&self) {
        let c = &self.core;
        let mut state = c.state();
        while state != SHUT_DOWN && state != RUNNING {
            match c
                .state
                .compare_exchange(state, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    c.pending.policy().refuse.store(0, Ordering::Release);
                    c.attention.reset();
                    c.running.signal();
                    return;
                }
                Err(now) => state = now,
            }
        }
    }

    /// Cancels every request, queued and in service, with `STATUS_CANCELLED`, and waits until
    /// none is left; until [`resume`](Self::resume), new inserts are refused with
    /// `STATUS_INVALID_DEVICE_STATE`. Requests in service are completed by their worker (after
    /// [`SerialHandler::stop`]), queued ones by this call, oldest first.
    ///
    /// IRQL: PASSIVE_LEVEL (it waits). Must not be called from the handler (it would wait for
    /// itself).
    pub fn purge(&self) {
        let c = &self.core;
        if c.state() == SHUT_DOWN {
            return;
        }
        c.pending
            .policy()
            .refuse
            .store(NtStatus::INVALID_DEVICE_STATE.0, Ordering::Release);
        c.state.store(PURGED, Ordering::Release);
        c.running.reset();
        c.attention.signal();
        self.cancel_queued();
        c.pending.policy().wait_idle();
    }

    /// Waits until no request is queued or in service. Requests inserted meanwhile are waited
    /// for too; on a stopped queue with requests queued it waits until someone resumes it.
    ///
    /// IRQL: PASSIVE_LEVEL. Must not be called from the handler.
    pub fn drain(&self) {
        self.core.pending.policy().wait_idle();
    }

    /// Completes with `STATUS_CANCELLED` every request sent on `file`: first the one in service
    /// if it belongs to `file`, then the queued ones, oldest first (the order of
    /// `docs/timer-event-design.md`); workers do not take `file`'s requests meanwhile. What
    /// `IRP_MJ_CLEANUP` does. Returns how many it completed.
    ///
    /// IRQL: <= DISPATCH_LEVEL. Concurrent flushes of different files are correct, but only one
    /// of them at a time keeps the workers away from its requests.
    pub fn flush_file(&self, file: FileObject) -> usize {
        let c = &self.core;
        let marked = c
            .flushing
            .compare_exchange(0, file.addr(), Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        let mut woken: u64 = 0;
        let mut n = 0;
        for (i, q) in c.in_service.iter().enumerate() {
            if let Some(irp) = q.remove_next_for_file(file) {
                irp.complete(NtStatus::CANCELLED, 0);
                woken |= 1 << i;
                n += 1;
            }
        }
        while let Some(irp) = c.pending.remove_next_for_file(file) {
            irp.complete(NtStatus::CANCELLED, 0);
            c.pending.policy().done_one();
            n += 1;
        }
        if marked {
            c.flushing.store(0, Ordering::Release);
        }
        // Only now may the workers take the next request (of another handle).
        for (i, q) in c.in_service.iter().enumerate() {
            if woken & (1 << i) != 0 {
                q.policy().cancelled.signal();
            }
        }
        n
    }

    /// Stops for good: refuses new requests (`STATUS_DELETE_PENDING`), cancels the requests in
    /// service (their workers complete them with `STATUS_CANCELLED`), waits on each thread
    /// object until its thread has ended, then cancels the queued requests, oldest first.
    /// Idempotent; the drop calls it. Afterwards nothing of the worker runs or waits.
    ///
    /// IRQL: PASSIVE_LEVEL (it waits). Must not be called from the handler.
    pub fn shutdown(&self) {
        let c = &self.core;
        c.pending
            .policy()
            .refuse
            .store(NtStatus::DELETE_PENDING.0, Ordering::Release);
        c.state.store(SHUT_DOWN, Ordering::Release);
        c.attention.signal();
        c.shutdown.signal();
        c.running.signal();
        for t in &self.threads {
            t.stop();
        }
        self.cancel_queued();
    }

    /// Completes every queued request with `STATUS_CANCELLED`, oldest first.
    fn cancel_queued(&self) {
        let c = &self.core;
        while let Some(irp) = c.pending.remove_next() {
            irp.complete(NtStatus::CANCELLED, 0);
            c.pending.policy().done_one();
        }
    }
}

impl<H: SerialHandler, P: QueuePolicy, const THREADS: usize> Drop for SerialWorker<H, P, THREADS> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl<H: SerialHandler, P: QueuePolicy, const THREADS: usize> fmt::Debug
    for SerialWorker<H, P, THREADS>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SerialWorker")
            .field("threads", &THREADS)
            .field("queued", &self.queued())
            .field("outstanding", &self.outstanding())
            .finish_non_exhaustive()
    }
}
