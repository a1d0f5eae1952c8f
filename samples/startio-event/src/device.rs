//! The StartIoEvent device: model S of `docs/timer-event-design.md` on IoStartPacket/StartIo,
//! through `csq`'s StartIo wrapper ([`StartIoQueue`]).
//!
//! - IRP-based registrations go through `IoStartPacket` ([`StartIoQueue::start_packet`]): the
//!   kernel's device queue serializes them device-wide, FIFO across handles (E1).
//! - StartIo arms the device's one timer with the request's due time, as the request enters
//!   service ([`InService::arm_timer`]), and leaves the request cancelable (E2).
//! - The timer DPC relays the expiry to a second DPC (a timer armed with 0), queued behind the
//!   DPCs of every timer that expired at the same instant, so that events due then are set
//!   first (`docs/timer-event-design.md`, "Order of completions at one instant", rule 5).
//!   The relay DPC claims the request in service through the wrapper
//!   ([`StartIoQueue::claim_expired`], the `IoSetCancelRoutine(NULL)` handshake of E2a under the
//!   cancel spin lock); a stale DPC of an earlier arming gets nothing (P5). The DPC completes
//!   STATUS_SUCCESS/0, and the wrapper starts the next packet after the completion.
//! - Cancelling the request in service runs the wrapper's cancel routine: it calls
//!   [`StartIoHandler::cancelled_in_service`] (the timer is cancelled), completes
//!   STATUS_CANCELLED/0 and starts the next packet at that instant, at DISPATCH_LEVEL (P3).
//!   P1 (StartIo racing the cancel routine) and P2 (an IRP cancelled before IoStartPacket) are
//!   handled inside the wrapper; P4 cannot happen: nothing here waits at DISPATCH_LEVEL.
//! - Event-based registrations complete at once and have their own timers (E3(a), [`events`]).
//!
//! [`events`]: crate::events

use csq::pinned_init::{PinInit, pin_data, pin_init};
use csq::{
    DeviceHandler, DispatchLevel, DispatchStatus, FileObject, InService, Interval, Irp, NtStatus,
    ServiceTag, StartIoHandler, StartIoQueue, Timer, TimerCallback, TimerKind, UserEvent,
};

use crate::events::EventRegistrations;
use crate::files::Files;
use crate::interface::{IOCTL_REGISTER_EVENT, Kind, RegisterEvent};

/// The device extension.
#[pin_data]
pub struct StartIoEvent {
    /// Completes the request in service from a second DPC, queued by the timer's own DPC
    /// behind the DPCs of every other timer that expired at the same instant (see
    /// [`TimerCallback::expired`]). First: dropping it refuses further arming and waits for its
    /// DPC, which uses the other fields.
    #[pin]
    relay: Timer<StartIoEvent, 1>,
    /// The timer of the request in service. Dropping it waits for its DPC.
    #[pin]
    timer: Timer<StartIoEvent>,
    /// The StartIo bookkeeping (the device queue itself is the kernel's).
    queue: StartIoQueue,
    /// Event-based registrations, each with its own timer.
    events: EventRegistrations,
    /// One record per open file object (its remove lock).
    files: Files,
}

csq::impl_has_timer!(StartIoEvent, timer);
csq::impl_has_timer!(StartIoEvent, relay, 1);

impl StartIoEvent {
    /// The extension's initializer.
    pub fn new() -> impl PinInit<StartIoEvent> {
        pin_init!(StartIoEvent {
            relay <- Timer::new(TimerKind::Notification),
            timer <- Timer::new(TimerKind::Notification),
            queue: StartIoQueue::new(),
            events: EventRegistrations::new(),
            files: Files::new(),
        })
    }

    /// IOCTL_REGISTER_EVENT, inside the handle's remove lock (spec B.1 dispatch, steps 2–3).
    fn register(&self, irp: Irp) -> DispatchStatus {
        if irp.ioctl_code() != Some(IOCTL_REGISTER_EVENT) {
            return irp.complete(NtStatus::NOT_IMPLEMENTED, 0).into();
        }
        let request = match RegisterEvent::parse(irp.buffered_input()) {
            Ok(r) => r,
            Err(status) => return irp.complete(status, 0).into(),
        };
        match request.kind {
            // Model S: the device queue orders it; StartIo starts its timer.
            Kind::IrpBased => self.queue.start_packet(irp).into(),
            Kind::EventBased { handle } => {
                let status = match UserEvent::for_request(&irp, handle) {
                    Ok(event) => {
                        match self
                            .events
                            .register(irp.file_object(), event, request.delay())
                        {
                            Ok(()) => NtStatus::SUCCESS,
                            Err(status) => status,
                        }
                    }
                    Err(status) => status,
                };
                irp.complete(status, 0).into()
            }
        }
    }

    /// Whether nothing is left: no handle, no registration (what unload expects).
    pub fn is_idle(&self) -> bool {
        self.files.is_empty() && self.events.is_empty() && self.queue.current_tag().is_none()
    }
}

impl DeviceHandler for StartIoEvent {
    fn create(&self, irp: Irp) -> DispatchStatus {
        let status = match irp.file_object().map(|f| self.files.open(f)) {
            Some(Err(status)) => status,
            Some(Ok(())) | None => NtStatus::SUCCESS,
        };
        irp.complete(status, 0).into()
    }

    /// The last reference to a file object is gone: free its record, and let the StartIo
    /// wrapper forget that its cleanup cancelled its requests (`StartIoQueue::file_closed`).
    fn close(&self, irp: Irp) -> DispatchStatus {
        if let Some(file) = irp.file_object() {
            self.queue.file_closed(file);
        }
        self.files.close(irp.file_object());
        irp.complete(NtStatus::SUCCESS, 0).into()
    }

    /// The last handle of a file object was closed: run down the dispatch routines still inside
    /// for it (spec A.17, D-23), then cancel its requests — the one in service first, then its
    /// queued ones oldest first — and drop its event registrations unsignalled, before the
    /// cleanup completes ("order of completions at one instant", rule 2).
    fn cleanup(&self, irp: Irp) -> DispatchStatus {
        let file = irp.file_object();
        self.files.run_down(file);
        self.cancel_requests_of(file);
        self.events.drop_file(file);
        irp.complete(NtStatus::SUCCESS, 0).into()
    }

    fn device_control(&self, irp: Irp) -> DispatchStatus {
        let guard = match self.files.acquire(irp.file_object()) {
            Ok(guard) => guard,
            Err(status) => return irp.complete(status, 0).into(),
        };
        let st = self.register(irp);
        drop(guard);
        st
    }
}

impl StartIoHandler for StartIoEvent {
    fn start_io_queue(&self) -> &StartIoQueue {
        &self.queue
    }

    /// The request enters service: its timer starts now (model S). A due time of 0 has passed
    /// already, so the DPC runs as soon as the IRQL drops and completes it at this instant.
    fn start_io(&self, request: InService<'_>, _level: DispatchLevel<'_>) {
        match RegisterEvent::parse(request.buffered_input()) {
            Ok(r) => {
                request.arm_timer(&self.timer, r.delay());
            }
            // Validated by the dispatch routine; kept for safety.
            Err(status) => request.complete(status, 0),
        }
    }

    /// The request in service is being cancelled: stop its timer. Whether `cancel` finds it
    /// inserted does not matter: the cancel routine owns the IRP already, and a DPC that has
    /// fired finds nothing to claim.
    fn cancelled_in_service(&self, _tag: ServiceTag, _level: DispatchLevel<'_>) {
        self.timer.cancel();
    }
}

impl TimerCallback for StartIoEvent {
    /// The due time of the request in service. The completion is relayed to a second DPC, at
    /// the tail of this CPU's DPC queue: every timer that expired at this instant has queued its
    /// DPC already, so the events of event-based registrations due now are signalled before the
    /// request completes and the next one enters service — the order the worker device gives
    /// naturally, since its thread runs after the DPCs (`docs/timer-event-design.md`, "Order of
    /// completions at one instant", rule 5). The relay runs at this same instant.
    fn expired(&self, _level: DispatchLevel<'_>) {
        self.relay.arm(Interval::ZERO);
    }
}

impl TimerCallback<1> for StartIoEvent {
    /// The relayed expiry: claim the request in service (stale DPCs get nothing, P5), complete
    /// it, and the wrapper starts the next packet.
    fn expired(&self, _level: DispatchLevel<'_>) {
        if let Some(request) = self.queue.claim_expired(&self.timer) {
            request.complete(NtStatus::SUCCESS, 0);
        }
    }
}

impl StartIoEvent {
    /// Cleanup's cancellation of the requests of `file` (see [`DeviceHandler::cleanup`]).
    fn cancel_requests_of(&self, file: Option<FileObject>) {
        let Some(file) = file else { return };
        self.queue.cancel_file(file, |_tag| {
            self.timer.cancel();
        });
    }
}
