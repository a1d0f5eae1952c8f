//! Timers (spec A.12).
//!
//! KTIMER's real fields hold what Windows keeps there (signal state, due time, DPC, period);
//! whether the timer is inserted and which setting is current live in `TimerTable`. A timer
//! expires on the CPU that set it: the clock hands it to that CPU's interrupt actor, which marks
//! it signalled, releases its waiters and calls its DPC routine *directly* (not through the DPC
//! queue, so KeRemoveQueueDpc cannot stop it) — except when KeSetTimer finds the due time
//! already passed, which queues the DPC (spec A.12.2, F-8).

use std::collections::HashMap;

use crate::breakpoint::Point;
use crate::clock::{Deadline, DeadlineKey};
use crate::machine::{Cx, World};
use crate::ntdef::{
    DISPATCH_LEVEL, KTIMER, LARGE_INTEGER, LONG, NotificationTimer, PKDPC, PKTIMER, PVOID,
    TIMER_TYPE, TimerNotificationObject,
};

#[derive(Debug)]
struct TimerState {
    /// The clock entry of the current setting, while inserted.
    deadline: Option<DeadlineKey>,
    /// Incremented by every set and cancel, so a stale clock entry is ignored.
    generation: u64,
    /// The CPU that set it (where it expires).
    cpu: usize,
    /// Handed to the CPU's expiry queue, not processed yet (still counts as inserted).
    expiring: bool,
}

/// Timer bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct TimerTable {
    timers: HashMap<usize, TimerState>,
}

impl TimerTable {
    fn is_inserted(&self, timer: usize) -> bool {
        self.timers
            .get(&timer)
            .is_some_and(|t| t.deadline.is_some() || t.expiring)
    }

    /// An inserted timer in `[start, start+len)` (rules C24, C25).
    pub(crate) fn inserted_in(&self, start: usize, len: usize) -> Option<usize> {
        self.timers
            .keys()
            .copied()
            .find(|&t| t >= start && t < start + len && self.is_inserted(t))
    }
}

fn ktimer(timer: usize) -> *mut KTIMER {
    timer as *mut KTIMER
}

impl World {
    /// Removes `timer` from the timer table; true if it was inserted.
    fn remove_timer(&mut self, timer: usize) -> bool {
        let Some(t) = self.timers.timers.get_mut(&timer) else {
            return false;
        };
        let was = t.deadline.is_some() || t.expiring;
        if let Some(k) = t.deadline.take() {
            self.clock.remove(k);
        }
        t.expiring = false;
        t.generation += 1;
        if was {
            let cpu = t.cpu;
            self.cpus[cpu].expired_timers.retain(|&x| x != timer);
        }
        was
    }

    /// Signals `timer` and releases its waiters.
    fn signal_timer(&mut self, timer: usize) {
        crate::wait::set_signal_state(timer, 1);
        self.signal_object(timer);
    }

    /// Inserts `timer` to expire at interrupt time `at`.
    fn insert_timer(&mut self, timer: usize, at: u64, cpu: usize) {
        let t = self.timers.timers.entry(timer).or_insert(TimerState {
            deadline: None,
            generation: 0,
            cpu,
            expiring: false,
        });
        t.generation += 1;
        t.cpu = cpu;
        let generation = t.generation;
        let key = self.clock.add(at, Deadline::Timer { timer, generation });
        self.timers
            .timers
            .get_mut(&timer)
            .expect("just inserted")
            .deadline = Some(key);
        // SAFETY: `timer` is a live KTIMER; the baton holder is the only writer.
        unsafe { (*ktimer(timer)).DueTime = at };
    }

    /// The clock reached a timer's due time: hand it to its CPU's interrupt actor.
    pub(crate) fn timer_due(&mut self, timer: usize, generation: u64) {
        let Some(t) = self.timers.timers.get_mut(&timer) else {
            return;
        };
        if t.generation != generation || t.deadline.is_none() {
            return;
        }
        t.deadline = None;
        t.expiring = true;
        let cpu = t.cpu;
        self.cpus[cpu].expired_timers.push_back(timer);
        self.request_dispatch_interrupt(cpu);
    }
}

/// Expiry processing of one timer on the running interrupt actor (spec A.12.3).
pub(crate) fn expire(cx: &Cx, timer: usize) {
    let dpc = {
        let mut g = cx.lock();
        let Some(t) = g.timers.timers.get_mut(&timer) else {
            return;
        };
        if !t.expiring {
            return; // cancelled between the clock tick and now
        }
        t.expiring = false;
        t.generation += 1;
        let cpu = t.cpu;
        g.signal_timer(timer);
        // SAFETY: `timer` is a live KTIMER.
        let k = unsafe { ktimer(timer).read() };
        let (period, dpc) = (k.Period, k.Dpc);
        if period != 0 {
            let at = g.clock.now() + u64::from(period) * crate::clock::TICKS_PER_MS;
            g.insert_timer(timer, at, cpu);
        }
        dpc
    };
    cx.point(Point::TimerExpiry, timer);
    if !dpc.is_null() {
        // Spec A.12.3: SystemArgument1/2 are the low and high parts of the system time.
        let now = cx.lock().clock.system_time();
        crate::dpc::call_routine(
            cx,
            dpc as usize,
            (now & 0xFFFF_FFFF) as usize as PVOID,
            (now >> 32) as usize as PVOID,
        );
    }
}

/// Initializes a notification timer.
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// `timer` must be valid for writes and not inserted.
#[allow(non_snake_case)]
pub unsafe fn KeInitializeTimer(timer: PKTIMER) {
    // SAFETY: forwarded caller contract.
    unsafe { KeInitializeTimerEx(timer, NotificationTimer) };
}

/// Initializes a timer of `timer_type`: not signalled, not inserted, due time and period 0.
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// `timer` must be valid for writes and not inserted.
#[allow(non_snake_case)]
pub unsafe fn KeInitializeTimerEx(timer: PKTIMER, timer_type: TIMER_TYPE) {
    // A new timer: whatever an earlier timer at this address left in the table (its memory
    // reused) is forgotten, so a stale setting can neither fire nor count for rule C24.
    if let Some(cx) = Cx::try_get() {
        let mut g = cx.lock();
        g.remove_timer(timer as usize);
        g.timers.timers.remove(&(timer as usize));
    }
    // SAFETY: the caller guarantees `timer` is writable; all fields are plain data.
    unsafe { timer.write(KTIMER::zeroed()) };
    // SAFETY: as above; the header is at offset 0 of a KTIMER.
    unsafe {
        crate::object::init_header(
            timer.cast(),
            TimerNotificationObject + timer_type as u8,
            size_of::<KTIMER>(),
            0,
        )
    };
}

/// `KeSetTimerEx(timer, due, 0, dpc)`.
///
/// IRQL: <= DISPATCH_LEVEL. Returns TRUE (1) if the timer was already set.
///
/// # Safety
/// As [`KeSetTimerEx`].
#[allow(non_snake_case)]
pub unsafe fn KeSetTimer(timer: PKTIMER, due: LARGE_INTEGER, dpc: PKDPC) -> u8 {
    // SAFETY: forwarded caller contract.
    unsafe { KeSetTimerEx(timer, due, 0, dpc) }
}

/// Sets `timer` to expire at `due` (negative: relative 100 ns; positive: absolute system time;
/// 0 or past: at once), every `period` ms after that if non-zero, calling `dpc` at expiry.
/// Setting an inserted timer cancels its pending expiry first.
///
/// IRQL: <= DISPATCH_LEVEL (rule C19). Returns TRUE (1) iff the timer was already set.
///
/// # Safety
/// `timer` (and `dpc`, if not NULL) must be initialized and stay valid while inserted.
#[allow(non_snake_case)]
pub unsafe fn KeSetTimerEx(timer: PKTIMER, due: LARGE_INTEGER, period: LONG, dpc: PKDPC) -> u8 {
    let cx = Cx::get();
    cx.check_irql_at_most("KeSetTimer", DISPATCH_LEVEL);
    let was_set = {
        let mut g = cx.lock();
        let addr = timer as usize;
        let was_set = g.remove_timer(addr);
        // SAFETY: the caller guarantees `timer` is a live, initialized KTIMER.
        unsafe { (*timer).Dpc = dpc };
        // SAFETY: as above.
        unsafe { (*timer).Period = period as u32 };
        if !dpc.is_null() {
            g.dpcs.used_by_timer.insert(dpc as usize);
            if g.dpcs.used_by_queue.contains(&(dpc as usize)) {
                let who = g.who(cx.me);
                g.report(
                    crate::verifier::Rule::DpcTimerAndQueue,
                    format!(
                        "KDPC {:#x} passed to KeSetTimer is also queued with KeInsertQueueDpc",
                        dpc as usize
                    ),
                    vec![who],
                );
            }
        }
        let at = g.clock.due_to_interrupt_time(due);
        let cpu = g.sched.actor(cx.me).cpu;
        crate::wait::set_signal_state(addr, 0);
        if at <= g.clock.now() {
            // Already due: signalled at once and the DPC is queued (spec A.12.2).
            g.signal_timer(addr);
            if period != 0 {
                let next = g.clock.now() + period as u64 * crate::clock::TICKS_PER_MS;
                g.insert_timer(addr, next, cpu);
            }
            if !dpc.is_null() {
                let now = g.clock.system_time();
                g.queue_dpc(
                    dpc as usize,
                    cpu,
                    (now & 0xFFFF_FFFF) as usize as _,
                    (now >> 32) as usize as _,
                );
            }
        } else {
            g.insert_timer(addr, at, cpu);
        }
        was_set
    };
    cx.switch_point();
    u8::from(was_set)
}

/// Cancels `timer`. TRUE (1): it was inserted and its expiry (and DPC) will not happen for that
/// setting. FALSE: never set, already cancelled, or already expired — its DPC may be pending,
/// running or done (spec A.12.4).
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// `timer` must point to an initialized timer.
#[allow(non_snake_case)]
pub unsafe fn KeCancelTimer(timer: PKTIMER) -> u8 {
    let cx = Cx::get();
    cx.check_irql_at_most("KeCancelTimer", DISPATCH_LEVEL);
    let removed = cx.lock().remove_timer(timer as usize);
    cx.switch_point();
    u8::from(removed)
}

/// The timer's signal state.
///
/// IRQL: any.
///
/// # Safety
/// `timer` must point to an initialized timer.
#[allow(non_snake_case)]
pub unsafe fn KeReadStateTimer(timer: PKTIMER) -> u8 {
    u8::from(crate::wait::signal_state(timer as usize) != 0)
}
