//! [`UserEvent`]: an event object that a caller passed by handle (spec A.14, B.1).

use core::ffi::c_void;
use core::fmt;
use core::ptr::NonNull;

use crate::irp::{IrpView, ProcessorMode};
use crate::status::NtStatus;
use crate::sys;
use crate::wait::{Sealed, Waitable};

/// A referenced event object, obtained from a handle with the access checks a user-mode caller
/// is subject to: `ObReferenceObjectByHandle(handle, SYNCHRONIZE | EVENT_MODIFY_STATE,
/// *ExEventObjectType, mode)`. Dropping it releases the reference.
///
/// # Invariants
///
/// `event` is an event object this value holds one reference to.
pub struct UserEvent {
    event: NonNull<sys::KEvent>,
}

// SAFETY: a referenced kernel event may be signaled and released from any thread.
unsafe impl Send for UserEvent {}
// SAFETY: as above.
unsafe impl Sync for UserEvent {}

impl UserEvent {
    /// References the event behind `handle` as the requester of `irp` may: with the IRP's
    /// requestor mode, so that a user-mode caller cannot pass a kernel handle or a handle
    /// without `EVENT_MODIFY_STATE`. Call it in the requester's process context (in the dispatch
    /// routine).
    ///
    /// IRQL: PASSIVE_LEVEL.
    ///
    /// # Errors
    /// `STATUS_INVALID_HANDLE`, `STATUS_OBJECT_TYPE_MISMATCH` (not an event) or
    /// `STATUS_ACCESS_DENIED`.
    pub fn for_request(irp: &IrpView, handle: usize) -> Result<UserEvent, NtStatus> {
        UserEvent::from_handle(handle, irp.requestor_mode())
    }

    /// References the event behind `handle`, checked as for a caller in `mode`.
    ///
    /// IRQL: PASSIVE_LEVEL.
    ///
    /// # Errors
    /// As [`UserEvent::for_request`].
    pub fn from_handle(handle: usize, mode: ProcessorMode) -> Result<UserEvent, NtStatus> {
        let event = sys::event_reference_by_handle(handle, mode.raw()).map_err(NtStatus)?;
        // INVARIANT: ObReferenceObjectByHandle succeeded: one reference, a non-null event.
        Ok(UserEvent {
            event: NonNull::new(event).ok_or(NtStatus::INVALID_HANDLE)?,
        })
    }

    /// Signals the event (`KeSetEvent`); returns whether it was signaled before.
    ///
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn signal(&self) -> bool {
        // SAFETY: a referenced event (type invariant).
        unsafe { sys::event_set(self.event.as_ptr()) }
    }

    /// Whether the event is signaled now.
    ///
    /// IRQL: any.
    pub fn is_set(&self) -> bool {
        // SAFETY: a referenced event (type invariant).
        unsafe { sys::event_read(self.event.as_ptr()) }
    }
}

impl Drop for UserEvent {
    fn drop(&mut self) {
        // SAFETY: our reference (type invariant), given up once.
        unsafe { sys::object_dereference(self.event.as_ptr().cast()) };
    }
}

impl Sealed for UserEvent {}

impl Waitable for UserEvent {
    fn dispatcher_object(&self) -> *mut c_void {
        self.event.as_ptr().cast()
    }
}

impl fmt::Debug for UserEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserEvent").finish_non_exhaustive()
    }
}
