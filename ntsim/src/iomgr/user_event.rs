//! Events (and a semaphore, the usual "wrong type" handle) created by user mode, by handle
//! (spec A.14), with a log of every time something set them — the `{"event": …}` lines of
//! eventctl.

use std::collections::HashMap;

use crate::machine::{Cx, World};
use crate::ntdef::{
    EVENT_ALL_ACCESS, EVENT_MODIFY_STATE, KEVENT, KSEMAPHORE, LONG, NTSTATUS, NotificationEvent,
    PVOID, SEMAPHORE_ALL_ACCESS, STATUS_ACCESS_DENIED, STATUS_INVALID_HANDLE,
    STATUS_OBJECT_TYPE_MISMATCH, SynchronizationEvent, UserMode,
};
use crate::object::ObjectKind;

use super::{Handle, Process};

/// One KeSetEvent/SetEvent (or I/O completion) on a logged event.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct EventSet {
    /// Interrupt time of the set.
    pub time: u64,
    /// The state before: 0 means this set was a not-signalled → signalled transition.
    pub previous: LONG,
    /// Its place in the machine-wide order of completions and sets ([`super::sequence`]).
    pub seq: u64,
}

/// Logs of the events created by user mode, by object address.
#[derive(Debug, Default)]
pub(crate) struct EventTable {
    logs: HashMap<usize, Vec<EventSet>>,
}

impl EventTable {
    /// Objects created through this module (events and semaphores) that may still exist.
    pub(crate) fn objects(&self) -> impl Iterator<Item = usize> + '_ {
        self.logs.keys().copied()
    }
}

/// Hook of KeSetEvent: records a set of a logged event.
pub(crate) fn note_set(g: &mut World, event: usize, previous: LONG) {
    let time = g.clock.now();
    if g.iomgr.events.logs.contains_key(&event) {
        let seq = g.iomgr.next_seq();
        if let Some(log) = g.iomgr.events.logs.get_mut(&event) {
            log.push(EventSet {
                time,
                previous,
                seq,
            });
        }
    }
}

/// Sets an event with the World held (the I/O manager's completion signals the user's event).
pub(crate) fn signal_locked(g: &mut World, event: usize) {
    let prev = crate::wait::signal_state(event);
    note_set(g, event, prev);
    crate::wait::set_signal_state(event, 1);
    g.signal_object(event);
}

/// CreateEvent in the calling thread's process: a manual-reset (notification) or auto-reset
/// (synchronization) event, initially signalled or not, with a handle granting
/// EVENT_ALL_ACCESS. Every set of it is logged ([`event_log`]).
pub fn create_event(manual_reset: bool, initially_signalled: bool) -> Handle {
    let cx = Cx::get();
    let mut g = cx.lock();
    let obj = g.create_object(ObjectKind::Event, size_of::<KEVENT>(), None);
    let ty = if manual_reset {
        NotificationEvent
    } else {
        SynchronizationEvent
    };
    // SAFETY: fresh storage of KEVENT size.
    unsafe { crate::event::init_event_object(obj as *mut KEVENT, ty, initially_signalled) };
    g.iomgr.events.logs.insert(obj, Vec::new());
    let pid = g.threads.process_of(cx.me);
    Handle(g.insert_handle(pid, obj, EVENT_ALL_ACCESS) as usize)
}

/// CreateSemaphore in the calling thread's process (SEMAPHORE_ALL_ACCESS): a waitable object
/// that is not an event, for tests of ObReferenceObjectByHandle's type check.
pub fn create_semaphore(initial: LONG, maximum: LONG) -> Handle {
    let cx = Cx::get();
    let mut g = cx.lock();
    let obj = g.create_object(ObjectKind::Semaphore, size_of::<KSEMAPHORE>(), None);
    // SAFETY: fresh storage of KSEMAPHORE size.
    unsafe { crate::semaphore::KeInitializeSemaphore(obj as *mut KSEMAPHORE, initial, maximum) };
    let pid = g.threads.process_of(cx.me);
    Handle(g.insert_handle(pid, obj, SEMAPHORE_ALL_ACCESS) as usize)
}

/// References the event behind `h` in the caller's process for EVENT_MODIFY_STATE.
fn reference_event(cx: &Cx, h: Handle) -> Result<usize, NTSTATUS> {
    let mut g = cx.lock();
    let pid = g.threads.process_of(cx.me);
    let mode = g.requestor_mode(cx.me);
    let e = g
        .lookup_handle(pid, h.raw(), mode)
        .ok_or(STATUS_INVALID_HANDLE)?;
    if g.object_kind(e.object) != Some(ObjectKind::Event) {
        return Err(STATUS_OBJECT_TYPE_MISMATCH);
    }
    if mode == UserMode && e.access & EVENT_MODIFY_STATE == 0 {
        return Err(STATUS_ACCESS_DENIED);
    }
    g.reference(e.object);
    Ok(e.object)
}

fn dereference(cx: &Cx, obj: usize) {
    let mut g = cx.lock();
    let who = g.who(cx.me);
    g.dereference(obj, who);
}

/// SetEvent: returns the previous state, or STATUS_INVALID_HANDLE /
/// STATUS_OBJECT_TYPE_MISMATCH / STATUS_ACCESS_DENIED.
pub fn set_event(h: Handle) -> Result<LONG, NTSTATUS> {
    let cx = Cx::get();
    let obj = reference_event(&cx, h)?;
    let prev = crate::event::set_event(&cx, obj);
    dereference(&cx, obj);
    cx.switch_point();
    Ok(prev)
}

/// ResetEvent: returns the previous state, or the errors of [`set_event`].
pub fn reset_event(h: Handle) -> Result<LONG, NTSTATUS> {
    let cx = Cx::get();
    let obj = reference_event(&cx, h)?;
    let prev = crate::wait::signal_state(obj);
    crate::wait::set_signal_state(obj, 0);
    dereference(&cx, obj);
    Ok(prev)
}

/// The object behind handle `h` of `process` (for reference-count checks with
/// [`crate::object::object_reference_count`]).
pub fn event_object(process: Process, h: Handle) -> Option<PVOID> {
    let cx = Cx::get();
    let g = cx.lock();
    g.lookup_handle(process.id(), h.raw(), crate::ntdef::KernelMode)
        .map(|e| e.object as PVOID)
}

/// Every set of the event behind handle `h` of `process`, oldest first (empty for an unknown
/// handle). Entries with `previous == 0` are the not-signalled → signalled transitions.
pub fn event_log(process: Process, h: Handle) -> Vec<EventSet> {
    let cx = Cx::get();
    let g = cx.lock();
    g.lookup_handle(process.id(), h.raw(), crate::ntdef::KernelMode)
        .and_then(|e| g.iomgr.events.logs.get(&e.object).cloned())
        .unwrap_or_default()
}

/// The log of an event object (also after its handles were closed, while its address is not
/// reused by another logged event).
pub fn event_log_of(object: PVOID) -> Vec<EventSet> {
    let cx = Cx::get();
    let g = cx.lock();
    g.iomgr
        .events
        .logs
        .get(&(object as usize))
        .cloned()
        .unwrap_or_default()
}
