//! `CsqEventSerial`: model S (spec B.5 E1 "S", `docs/timer-event-design.md`): one IRP-based
//! registration in service at a time, device-wide FIFO across all handles, its timer armed when
//! it enters service; observably identical to the StartIo sample.
//!
//! The requests go into csq's [`SerialWorker`] (one worker thread). The contract's "Worker"
//! handshake (E2a) is the worker's: the request in service stays in a cancel-safe queue under a
//! tracked context, the worker waits on {the timer, its cancel signal, stop}, never trusts which
//! one woke it, claims the request with `IoCsqRemoveIrp` first, and calls
//! [`SerialHandler::stop`] — which cancels the timer — before the next request starts, so the
//! timer is always cancelled before it is armed again. This file only says what service is:
//! arm the device's timer with the request's due time, and complete with STATUS_SUCCESS/0 when
//! it fires.

use csq::pinned_init::{PinInit, pin_data, pin_init, try_pin_init};
use csq::{
    DispatchLevel, DispatchStatus, Fifo, FileObject, Interval, Irp, IrpView, NtStatus,
    SerialHandler, SerialWorker, Service, Timer, TimerCallback, TimerKind,
};

use crate::device::IrpService;
use crate::registration;

/// What the worker calls: the device's one timer, armed for the request in service.
#[pin_data]
struct TimerService {
    /// The in-service request's deadline. The worker waits on the timer object itself; its DPC
    /// does nothing.
    #[pin]
    timer: Timer<TimerService>,
}

csq::impl_has_timer!(TimerService, timer);

impl TimerCallback for TimerService {
    fn expired(&self, _level: DispatchLevel<'_>) {}
}

impl TimerService {
    fn new() -> impl PinInit<Self> {
        pin_init!(TimerService {
            timer <- Timer::new(TimerKind::Notification),
        })
    }
}

impl SerialHandler for TimerService {
    /// The request enters service: its timer starts now. A due time of 0 arms the timer with 0
    /// too, which signals it at once: the worker completes the request at this instant, after
    /// the request before it (contract "order at one instant", rules 1 and 3), and a
    /// cancellation that raced with the start still wins, as on the StartIo device.
    fn start(&self, request: &IrpView, _worker: usize) -> Service<'_> {
        // Validated by the dispatch routine; 0 (at once) if it were not.
        let due = registration::parse(request).map_or(Interval::ZERO, |r| r.due);
        self.timer.arm(due);
        Service::Until {
            source: &self.timer,
            status: NtStatus::SUCCESS,
            information: 0,
        }
    }

    /// The request left service (expired, cancelled or flushed): stop its timer. Its result
    /// does not matter: the worker decided who completes the request already.
    fn stop(&self, _worker: usize) {
        self.timer.cancel();
    }
}

/// The model-S service of `CsqEventSerial`. Dropping it (unload deletes the device) shuts the
/// worker down: its thread is joined, then the timer is cancelled and its DPC flushed.
#[pin_data]
pub(crate) struct Serial {
    #[pin]
    worker: SerialWorker<TimerService, Fifo>,
}

impl Serial {
    pub(crate) fn new() -> impl PinInit<Self, NtStatus> {
        try_pin_init!(Serial {
            worker <- SerialWorker::new(TimerService::new(), Fifo),
        }? NtStatus)
    }
}

impl IrpService for Serial {
    fn register(&self, irp: Irp, _file: FileObject, _due: Interval) -> DispatchStatus {
        match self.worker.insert(irp, ()) {
            Ok(pending) => pending.into(),
            Err(refused) => refused.complete().into(),
        }
    }

    /// Contract "Close": the request in service if it is the handle's, then the handle's queued
    /// requests oldest first (`flush_file`); the device then drops the handle's event
    /// registrations.
    fn cancel_file(&self, file: FileObject) {
        self.worker.flush_file(file);
    }
}
