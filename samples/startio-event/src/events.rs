//! Event-based registrations (spec B.5 E3(a)): the IOCTL completes at once, and each
//! registration has its own timer that signals the caller's event at the due time, independent
//! of the serialized IRP-based service.
//!
//! A registration is a pool record on the device's list, with three states: armed, signalled
//! (its DPC ran) and dropped (its handle was cleaned up first). The DPC and the cleanup decide
//! who wins with one compare-exchange, so a dropped registration is never signalled, and a
//! signalled one is not signalled again. Records are freed at PASSIVE_LEVEL only (dropping one
//! cancels its timer and waits for its DPC): by the cleanup of their handle, by the next
//! registration on the same handle once they have been signalled, and at unload.

use core::pin::Pin;
use core::sync::atomic::{AtomicU8, Ordering};

use csq::pinned_init::{pin_data, pin_init};
use csq::{
    DispatchLevel, FileObject, Interval, NtStatus, PoolBox, SpinLock, Timer, TimerCallback,
    TimerKind, UserEvent,
};

use crate::list::{NewNode, PoolList};

/// Pool tag of the registration records ("SioE").
pub const EVENT_TAG: u32 = u32::from_le_bytes(*b"SioE");

const ARMED: u8 = 0;
const SIGNALLED: u8 = 1;
const DROPPED: u8 = 2;

/// One event-based registration.
#[pin_data]
pub struct EventRegistration {
    /// First, so that it is cancelled and its DPC flushed before the event reference goes.
    #[pin]
    timer: Timer<EventRegistration>,
    state: AtomicU8,
    event: UserEvent,
    file: Option<FileObject>,
}

csq::impl_has_timer!(EventRegistration, timer);

impl TimerCallback for EventRegistration {
    /// The due time: signal the event unless the handle was cleaned up first.
    fn expired(&self, _level: DispatchLevel<'_>) {
        if self
            .state
            .compare_exchange(ARMED, SIGNALLED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.event.signal();
        }
    }
}

impl EventRegistration {
    /// Claims the registration for the cleanup: true if its event will now never be signalled.
    fn drop_unsignalled(&self) -> bool {
        self.state
            .compare_exchange(ARMED, DROPPED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn is_signalled(&self) -> bool {
        self.state.load(Ordering::Acquire) == SIGNALLED
    }
}

/// The device's event-based registrations.
pub struct EventRegistrations {
    list: SpinLock<PoolList<Pin<PoolBox<EventRegistration>>>>,
}

impl EventRegistrations {
    /// None.
    pub const fn new() -> EventRegistrations {
        EventRegistrations {
            list: SpinLock::new(PoolList::new()),
        }
    }

    /// Registers `event` (already referenced with the requester's mode) to be signalled after
    /// `delay` (`Interval::ZERO`: at once), on behalf of `file`.
    ///
    /// IRQL: PASSIVE_LEVEL.
    ///
    /// # Errors
    /// `STATUS_INSUFFICIENT_RESOURCES` (spec B.1: the record cannot be allocated); the event
    /// reference is released and nothing is left behind.
    pub fn register(
        &self,
        file: Option<FileObject>,
        event: UserEvent,
        delay: Interval,
    ) -> Result<(), NtStatus> {
        // Free what this handle no longer needs first, so a client that registers in a loop
        // keeps one record.
        self.reap_signalled(file);
        let record = PoolBox::try_pin_init(
            EVENT_TAG,
            pin_init!(EventRegistration {
                timer <- Timer::new(TimerKind::Notification),
                state: AtomicU8::new(ARMED),
                event,
                file,
            }),
        )?;
        let node = NewNode::new(EVENT_TAG, record)?;
        let mut list = self.list.lock();
        list.push_back(node);
        // Armed under the lock, while the record is certainly on the list; a due time of 0 has
        // already passed, so its DPC runs as soon as the lock is released, before the IOCTL
        // completes (spec B.1: KeSetTimer before the dispatch returns).
        if let Some(r) = list.iter().last() {
            r.timer.arm(delay);
        }
        Ok(())
    }

    /// IRP_MJ_CLEANUP: drops every registration of `file` without signalling it, and releases
    /// their event references.
    ///
    /// IRQL: PASSIVE_LEVEL.
    pub fn drop_file(&self, file: Option<FileObject>) {
        let gone = {
            let mut list = self.list.lock();
            let gone = list.take_if(|r| r.file == file);
            for r in gone.iter() {
                // A registration whose DPC won has been signalled already (its due time came
                // before the cleanup, as row R7 of spec B.1).
                r.drop_unsignalled();
            }
            gone
        };
        drop(gone); // cancels the timers and waits for running DPCs, at PASSIVE_LEVEL
    }

    /// Frees the signalled registrations of `file`.
    ///
    /// IRQL: PASSIVE_LEVEL.
    fn reap_signalled(&self, file: Option<FileObject>) {
        let done = self
            .list
            .lock()
            .take_if(|r| r.file == file && r.is_signalled());
        drop(done);
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.list.lock().is_empty()
    }
}

impl Default for EventRegistrations {
    fn default() -> Self {
        EventRegistrations::new()
    }
}
