//! Kernel events (spec A.14).

use crate::machine::Cx;
use crate::ntdef::{DISPATCH_LEVEL, EVENT_TYPE, KEVENT, KPRIORITY, LONG, PKEVENT};

/// Initializes an event of `event_type` with `state` (non-zero: signalled).
///
/// IRQL: any.
///
/// # Safety
/// `event` must be valid for writes and must not be in use by a wait.
#[allow(non_snake_case)]
pub unsafe fn KeInitializeEvent(event: PKEVENT, event_type: EVENT_TYPE, state: u8) {
    let h = event.cast::<crate::ntdef::DISPATCHER_HEADER>();
    // SAFETY: the caller guarantees `event` is writable; the header is at offset 0 of a KEVENT.
    unsafe {
        crate::object::init_header(
            h,
            event_type as u8,
            size_of::<KEVENT>(),
            i32::from(state != 0),
        )
    };
}

/// Initializes a KEVENT in place (for objects ntsim embeds, like DEVICE_OBJECT.DeviceLock).
///
/// # Safety
/// `event` must be valid for writes.
pub(crate) unsafe fn init_event_object(event: PKEVENT, event_type: EVENT_TYPE, signalled: bool) {
    // SAFETY: forwarded caller contract.
    unsafe { KeInitializeEvent(event, event_type, u8::from(signalled)) };
}

/// Signals `event`; returns its previous state. With `wait` TRUE the IRQL stays at
/// DISPATCH_LEVEL and the next call must be a wait (rule C20).
///
/// IRQL: <= DISPATCH_LEVEL (rule C19).
///
/// # Safety
/// `event` must point to an initialized event.
#[allow(non_snake_case)]
pub unsafe fn KeSetEvent(event: PKEVENT, _increment: KPRIORITY, wait: u8) -> LONG {
    let cx = Cx::get();
    cx.check_irql_at_most("KeSetEvent", DISPATCH_LEVEL);
    let prev = set_event(&cx, event as usize);
    if wait != 0 {
        cx.arm_wait_next("KeSetEvent");
    } else {
        cx.switch_point();
    }
    prev
}

/// Sets an event and satisfies waits; returns the previous state.
pub(crate) fn set_event(cx: &Cx, event: usize) -> LONG {
    let mut g = cx.lock();
    let prev = crate::wait::signal_state(event);
    crate::iomgr::user_event::note_set(&mut g, event, prev);
    crate::wait::set_signal_state(event, 1);
    g.signal_object(event);
    prev
}

/// Resets `event` to not signalled; returns its previous state.
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// `event` must point to an initialized event.
#[allow(non_snake_case)]
pub unsafe fn KeResetEvent(event: PKEVENT) -> LONG {
    let cx = Cx::get();
    cx.check_irql_at_most("KeResetEvent", DISPATCH_LEVEL);
    let _g = cx.lock();
    let prev = crate::wait::signal_state(event as usize);
    crate::wait::set_signal_state(event as usize, 0);
    prev
}

/// Resets `event` to not signalled.
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// `event` must point to an initialized event.
#[allow(non_snake_case)]
pub unsafe fn KeClearEvent(event: PKEVENT) {
    // SAFETY: forwarded caller contract.
    unsafe { KeResetEvent(event) };
}

/// Signals `event`, satisfies what waits it can, and resets it; returns the previous state.
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// `event` must point to an initialized event.
#[allow(non_snake_case)]
pub unsafe fn KePulseEvent(event: PKEVENT, _increment: KPRIORITY, wait: u8) -> LONG {
    let cx = Cx::get();
    cx.check_irql_at_most("KePulseEvent", DISPATCH_LEVEL);
    let prev = set_event(&cx, event as usize);
    crate::wait::set_signal_state(event as usize, 0);
    if wait != 0 {
        cx.arm_wait_next("KePulseEvent");
    } else {
        cx.switch_point();
    }
    prev
}

/// The current state of `event`.
///
/// IRQL: any.
///
/// # Safety
/// `event` must point to an initialized event.
#[allow(non_snake_case)]
pub unsafe fn KeReadStateEvent(event: PKEVENT) -> LONG {
    crate::wait::signal_state(event as usize)
}

impl Cx {
    /// `Wait = TRUE`: stay at DISPATCH_LEVEL; the next call must be a wait.
    pub(crate) fn arm_wait_next(&self, routine: &'static str) {
        let mut g = self.lock();
        let a = g.sched.actor_mut(self.me);
        let irql = a.irql;
        a.irql = irql.max(DISPATCH_LEVEL);
        a.wait_next = Some((routine, irql));
    }
}
