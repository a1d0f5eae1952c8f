//! Event-based registrations, the same on both devices (spec B.5 E3(a)): the IOCTL completes at
//! once with STATUS_SUCCESS, and an independent timer signals the client's event at the due
//! time. Closing the handle first drops the registration unsignalled and releases the event
//! reference (D-24).

use csq::pinned_init::{PinInit, pin_data, pin_init};
use csq::{
    DispatchLevel, FileObject, Interval, IrpView, NtStatus, PoolArc, SpinLock, Timer,
    TimerCallback, TimerKind, UserEvent,
};

use crate::slots::Slots;

/// The most event-based registrations pending on one device at a time.
pub(crate) const MAX_EVENT_REGISTRATIONS: usize = 1024;

/// Pool tag of the event records ("CsqE").
pub const EVENT_RECORD_TAG: u32 = u32::from_le_bytes(*b"CsqE");

/// One event-based registration: its own timer and the referenced event.
#[pin_data]
struct EventRecord {
    // First: its drop (cancel + wait for a running DPC) happens before the event goes.
    #[pin]
    timer: Timer<EventRecord>,
    file: FileObject,
    /// The referenced event until it is signalled or the registration is dropped; whoever takes
    /// it out under the lock is the only one who may signal it.
    event: SpinLock<Option<UserEvent>>,
}

csq::impl_has_timer!(EventRecord, timer);

impl TimerCallback for EventRecord {
    fn expired(&self, _level: DispatchLevel<'_>) {
        let event = self.event.lock().take();
        if let Some(event) = event {
            event.signal();
            // The reference goes now (ObDereferenceObject is fine at DISPATCH_LEVEL).
            drop(event);
        }
    }
}

impl EventRecord {
    /// Whether the registration is over (signalled or dropped): nothing is left to do but free
    /// the record.
    fn is_finished(&self) -> bool {
        self.event.lock().is_none()
    }
}

/// The event-based registrations of one device.
#[pin_data]
pub(crate) struct EventRegistrations {
    records: SpinLock<Slots<PoolArc<EventRecord>, MAX_EVENT_REGISTRATIONS>>,
}

impl EventRegistrations {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(EventRegistrations {
            records: SpinLock::new(Slots::new()),
        })
    }

    /// Registers the event behind `handle` to be signalled after `due`.
    ///
    /// IRQL: PASSIVE_LEVEL, in the requester's context (the handle is the requester's).
    ///
    /// # Errors
    /// `ObReferenceObjectByHandle`'s status for a bad handle (STATUS_INVALID_HANDLE,
    /// STATUS_OBJECT_TYPE_MISMATCH, STATUS_ACCESS_DENIED); STATUS_INSUFFICIENT_RESOURCES when
    /// the record cannot be allocated or too many are pending. Nothing is left behind.
    pub(crate) fn register(
        &self,
        request: &IrpView,
        file: FileObject,
        handle: usize,
        due: Interval,
    ) -> Result<(), NtStatus> {
        self.reap();
        // spec B.5 E3: the requester's mode, EVENT_MODIFY_STATE | SYNCHRONIZE, the event type.
        let event = UserEvent::for_request(request, handle)?;
        // On failure the initializer, and the event reference it holds, are dropped.
        let record = PoolArc::pin_init(
            pin_init!(EventRecord {
                timer <- Timer::new(TimerKind::Notification),
                file,
                event: SpinLock::new(Some(event)),
            }),
            EVENT_RECORD_TAG,
        )?;
        let armed = record.clone();
        let pushed = self.records.lock().push(record);
        // A refused record is dropped here, outside the lock, with its event reference.
        pushed.map_err(|_refused| NtStatus::INSUFFICIENT_RESOURCES)?;
        armed.timer.arm(due);
        Ok(())
    }

    /// `IRP_MJ_CLEANUP`: drops the registrations of `file`, oldest first, without signalling
    /// their events (unless a timer already expired and its DPC took the event first).
    ///
    /// IRQL: PASSIVE_LEVEL.
    pub(crate) fn drop_file(&self, file: FileObject) {
        loop {
            let record = self.records.lock().take_first(|r| r.file == file);
            let Some(record) = record else { break };
            let event = record.event.lock().take();
            drop(event);
            // The last reference: cancels the timer and waits for a DPC in progress.
            drop(record);
        }
        self.reap();
    }

    /// Frees the records whose event was signalled.
    ///
    /// IRQL: PASSIVE_LEVEL.
    pub(crate) fn reap(&self) {
        loop {
            let record = self.records.lock().take_first(|r| r.is_finished());
            let Some(record) = record else { break };
            drop(record);
        }
    }
}
