//! `CsqEventSerial`: model S (spec B.5 E1 "S", `docs/timer-event-design.md`): one IRP-based
//! registration in service at a time, device-wide FIFO across all handles, its timer armed when
//! it enters service; observably identical to the StartIo sample.
//!
//! The worker follows the contract's "Worker" handshake (E2a): a system thread takes the next
//! request from the pending queue and puts it into a second, one-IRP cancel-safe queue while it
//! is in service, so that it stays cancelable; it waits on {the timer, the in-service queue's
//! cancel signal, stop}, never trusts which one woke it, claims the request with `remove_next`
//! on the in-service queue (`None`: a cancel or cleanup completed it first), and always cancels
//! the timer before arming it for the next request.
//!
//! Until `csq::SerialWorker` is merged, this file holds the same worker, written on the csq
//! primitives it is built from (queue, system thread, timer, events); the device's behaviour is
//! the contract's either way.

use core::pin::Pin;

use csq::pinned_init::{PinInit, pin_data, pin_init, try_pin_init};
use csq::{
    CancelSafeQueue, DispatchLevel, DispatchStatus, Event, EventKind, Fifo, FileObject, Interval,
    Irp, IrpView, NtError, NtStatus, Position, QueuePolicy, SystemThread, ThreadMain, Timer,
    TimerCallback, TimerKind, WaitResult, wait_any,
};

use crate::device::IrpService;
use crate::registration;

/// The in-service queue's policy: completes a cancelled request at once, in the canceller's
/// context (contract "order at one instant" rule 1), then wakes the worker.
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
        irp.complete(NtStatus::CANCELLED, 0);
        self.cancelled.signal();
    }
}

/// What the worker thread owns.
#[pin_data]
struct Worker {
    /// The in-service request's deadline. The worker waits on the timer object itself; its DPC
    /// does nothing.
    #[pin]
    timer: Timer<Worker>,
    /// Requests waiting for service, FIFO across all handles.
    #[pin]
    pending: CancelSafeQueue<Fifo>,
    /// The request in service (at most one), cancelable.
    #[pin]
    in_service: CancelSafeQueue<InService>,
    /// A request was queued, or a cleanup finished (synchronization event).
    #[pin]
    wake: Event,
    /// Unload (notification event).
    #[pin]
    stop: Event,
}

csq::impl_has_timer!(Worker, timer);

impl TimerCallback for Worker {
    fn expired(&self, _level: DispatchLevel<'_>) {}
}

impl Worker {
    fn new() -> impl PinInit<Self> {
        pin_init!(Worker {
            timer <- Timer::new(TimerKind::Notification),
            pending <- CancelSafeQueue::new(Fifo),
            in_service <- CancelSafeQueue::new(pin_init!(InService {
                cancelled <- Event::new(EventKind::Synchronization, false),
            })),
            wake <- Event::new(EventKind::Synchronization, false),
            stop <- Event::new(EventKind::Notification, false),
        })
    }

    /// Serves one request until its deadline, its cancellation or stop. Returns false on stop.
    fn serve(&self, irp: Irp) -> bool {
        let due = registration::parse(&irp).map_or(Interval::ZERO, |r| r.due);
        // E2a: cancel before arming for the next request.
        self.timer.cancel();
        // A request cancelled already is completed inside `insert` (spec A.9.3 step 7), which
        // also signals the cancel event: the loop below then sees an empty queue.
        if let Err(refused) = self.in_service.insert(irp, ()) {
            refused.complete();
            return true;
        }
        // The request enters service: its timer starts now (0 expires at once).
        self.timer.arm(due);
        loop {
            let woke = wait_any(
                &[&self.timer, &self.in_service.policy().cancelled, &self.stop],
                None,
            );
            // Never trust which object woke us (E2a): look at the state.
            if self.timer.is_signaled() {
                if let Some(irp) = self.in_service.remove_next() {
                    irp.complete(NtStatus::SUCCESS, 0);
                }
                return true;
            }
            if self.in_service.is_empty() {
                // Cancelled (or flushed by cleanup) and completed by the canceller.
                self.timer.cancel();
                return true;
            }
            if woke == WaitResult::Signaled(2) {
                self.timer.cancel();
                if let Some(irp) = self.in_service.remove_next() {
                    irp.complete(NtStatus::CANCELLED, 0);
                }
                return false;
            }
        }
    }
}

impl ThreadMain for Worker {
    fn run(self: Pin<&Self>) {
        loop {
            if self.stop.is_set() {
                return;
            }
            match self.pending.remove_next() {
                Some(irp) => {
                    if !self.serve(irp) {
                        return;
                    }
                }
                None => {
                    if wait_any(&[&self.wake, &self.stop], None) == WaitResult::Signaled(1) {
                        return;
                    }
                }
            }
        }
    }

    fn request_stop(self: Pin<&Self>) {
        self.stop.signal();
    }
}

/// The model-S service of `CsqEventSerial`.
#[pin_data]
pub(crate) struct Serial {
    #[pin]
    worker: SystemThread<Worker>,
}

impl Serial {
    pub(crate) fn new() -> impl PinInit<Self, NtStatus> {
        try_pin_init!(Serial {
            worker <- SystemThread::new(Worker::new()),
        }? NtStatus)
    }

    fn worker(&self) -> Pin<&Worker> {
        self.worker.data()
    }
}

impl IrpService for Serial {
    fn register(&self, irp: Irp, _file: FileObject, _due: Interval) -> DispatchStatus {
        let w = self.worker();
        match w.pending.insert(irp, ()) {
            Ok(pending) => {
                w.wake.signal();
                pending.into()
            }
            Err(refused) => refused.complete().into(),
        }
    }

    /// Contract "Close": the request in service if it is the handle's, then the handle's queued
    /// requests oldest first. The worker is woken only in [`IrpService::cleanup_done`], after
    /// the handle's event registrations are dropped too.
    fn cancel_file(&self, file: FileObject) {
        let w = self.worker();
        w.in_service.flush_file(file);
        w.pending.flush_file(file);
    }

    fn cleanup_done(&self) {
        let w = self.worker();
        w.in_service.policy().cancelled.signal();
        w.wake.signal();
    }
}
