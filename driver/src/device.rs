//! The dispatch routines both devices share: create/close, validation, event-based
//! registrations, and cleanup with the handle's rundown. What differs between the devices —
//! how IRP-based registrations are served — is an [`IrpService`].

use csq::pinned_init::{PinInit, pin_data, try_pin_init};
use csq::{DeviceHandler, DispatchStatus, FileObject, Interval, Irp, NtStatus};

use crate::events::EventRegistrations;
use crate::files::Files;
use crate::registration::{self, Kind};

/// How a device serves IRP-based registrations (model S or C, spec B.5 E1).
pub(crate) trait IrpService: Send + Sync + 'static {
    /// Takes `irp` (a valid IRP-based registration due after `due`) and returns what the
    /// dispatch routine returns.
    ///
    /// IRQL: PASSIVE_LEVEL, in the requester's context.
    fn register(&self, irp: Irp, file: FileObject, due: Interval) -> DispatchStatus;

    /// `IRP_MJ_CLEANUP`: completes every pending request of `file` with STATUS_CANCELLED
    /// before returning.
    ///
    /// IRQL: PASSIVE_LEVEL.
    fn cancel_file(&self, file: FileObject);
}

/// The extension of a timer-event device.
#[pin_data]
pub(crate) struct EventDevice<S> {
    #[pin]
    files: Files,
    #[pin]
    events: EventRegistrations,
    #[pin]
    service: S,
}

impl<S: IrpService> EventDevice<S> {
    pub(crate) fn new<E: From<core::convert::Infallible>>(
        service: impl PinInit<S, E>,
    ) -> impl PinInit<Self, E> {
        try_pin_init!(EventDevice {
            files <- Files::new(),
            events <- EventRegistrations::new(),
            service <- service,
        }? E)
    }

    /// `IOCTL_REGISTER_EVENT`, once the handle's remove lock is held.
    fn register(&self, irp: Irp, file: FileObject) -> DispatchStatus {
        let registration = match registration::parse(&irp) {
            Ok(r) => r,
            Err(status) => return irp.complete(status, 0).into(),
        };
        match registration.kind {
            Kind::IrpBased => self.service.register(irp, file, registration.due),
            Kind::EventBased { handle } => {
                // spec B.5 E3(a): the IOCTL completes at once, not pending.
                let status = match self.events.register(&irp, file, handle, registration.due) {
                    Ok(()) => NtStatus::SUCCESS,
                    Err(status) => status,
                };
                irp.complete(status, 0).into()
            }
        }
    }
}

impl<S: IrpService> DeviceHandler for EventDevice<S> {
    fn create(&self, irp: Irp) -> DispatchStatus {
        let status = match irp.file_object() {
            Some(file) => match self.files.open(file) {
                Ok(()) => NtStatus::SUCCESS,
                Err(status) => status,
            },
            None => NtStatus::SUCCESS,
        };
        irp.complete(status, 0).into()
    }

    fn close(&self, irp: Irp) -> DispatchStatus {
        if let Some(file) = irp.file_object() {
            self.files.close(file);
        }
        irp.complete(NtStatus::SUCCESS, 0).into()
    }

    fn device_control(&self, irp: Irp) -> DispatchStatus {
        let Some(file) = irp.file_object() else {
            return irp.complete(NtStatus::INVALID_PARAMETER, 0).into();
        };
        let Some(context) = self.files.get(file) else {
            return irp.complete(NtStatus::INVALID_DEVICE_STATE, 0).into();
        };
        // spec A.17: hold the handle's remove lock while dispatching, so that cleanup waits
        // for this routine; after cleanup started, refuse with STATUS_DELETE_PENDING.
        let guard = match context.enter() {
            Ok(guard) => guard,
            Err(status) => return irp.complete(status, 0).into(),
        };
        let status = self.register(irp, file);
        // Released before returning, also when the request stays pending (spec A.17).
        drop(guard);
        status
    }

    fn cleanup(&self, irp: Irp) -> DispatchStatus {
        if let Some(file) = irp.file_object() {
            // D-23: wait for the dispatch routines in progress on this handle first, so that a
            // request they are queueing is cancelled too.
            if let Some(context) = self.files.get(file) {
                context.run_down();
            }
            // timer-event-design.md "Close": the handle's IRP-based requests first, then its
            // event registrations, dropped unsignalled.
            self.service.cancel_file(file);
            self.events.drop_file(file);
        }
        irp.complete(NtStatus::SUCCESS, 0).into()
    }
}
