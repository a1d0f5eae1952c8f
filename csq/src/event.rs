//! [`Event`]: a kernel event object (spec A.14).

use core::ffi::c_void;
use core::fmt;

use pinned_init::PinInit;

use crate::sys::{self, Opaque};
use crate::wait::{Sealed, Waitable};

/// The kind of an event.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EventKind {
    /// Stays signaled until reset and releases every waiter (`NotificationEvent`).
    Notification,
    /// Releases one waiter and resets itself (`SynchronizationEvent`, an auto-reset event).
    Synchronization,
}

/// A `KEVENT`, built in place (threads wait on it by address) with [`Event::new`].
#[repr(transparent)]
pub struct Event {
    inner: Opaque<sys::KEvent>,
}

// SAFETY: kernel events are designed to be signaled and waited on from any CPU.
unsafe impl Send for Event {}
// SAFETY: as above.
unsafe impl Sync for Event {}

impl Event {
    /// An initializer for an event of `kind`, signaled or not (`KeInitializeEvent`).
    ///
    /// IRQL: any.
    pub fn new(kind: EventKind, signaled: bool) -> impl PinInit<Self> {
        let inner = Opaque::ffi_init(move |e| {
            // SAFETY: `e` is the event's final, writable storage; nobody waits on it yet.
            unsafe { sys::event_init(e, kind == EventKind::Notification, signaled) }
        });
        // SAFETY: `Event` is a `repr(transparent)` wrapper of its only field, which the
        // `Opaque` initializer fully initializes.
        unsafe { pinned_init::cast_pin_init(inner) }
    }

    /// Signals the event (`KeSetEvent`); returns whether it was signaled before.
    ///
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn signal(&self) -> bool {
        // SAFETY: an initialized event.
        unsafe { sys::event_set(self.inner.get()) }
    }

    /// Resets the event to not signaled (`KeResetEvent`); returns whether it was signaled.
    ///
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn reset(&self) -> bool {
        // SAFETY: an initialized event.
        unsafe { sys::event_reset(self.inner.get()) }
    }

    /// Whether the event is signaled now (`KeReadStateEvent`).
    ///
    /// IRQL: any.
    pub fn is_set(&self) -> bool {
        // SAFETY: an initialized event.
        unsafe { sys::event_read(self.inner.get()) }
    }
}

impl Sealed for Event {}

impl Waitable for Event {
    fn dispatcher_object(&self) -> *mut c_void {
        self.inner.get().cast()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}
