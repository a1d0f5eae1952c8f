//! Waits on dispatcher objects, and delays (spec A.16).
//!
//! Signal states live in the objects' real `DISPATCHER_HEADER.SignalState`, so code that reads
//! them (KeReadStateEvent, a driver peeking at a header) sees what Windows would. Who waits on
//! what is ntsim's side table. Waking follows the object type: a notification object releases
//! every waiter and stays signalled; a synchronization event, a synchronization timer and a
//! semaphore are consumed by each satisfied wait.

use std::collections::BTreeMap;

use crate::breakpoint::Point;
use crate::clock::{Deadline, DeadlineKey};
use crate::machine::{Cx, World};
use crate::ntdef::{
    APC_LEVEL, DISPATCH_LEVEL, DISPATCHER_HEADER, EventSynchronizationObject, KPROCESSOR_MODE,
    LARGE_INTEGER, NTSTATUS, PVOID, STATUS_SUCCESS, STATUS_TIMEOUT, STATUS_WAIT_0, SemaphoreObject,
    TimerSynchronizationObject,
};
use crate::sched::{ActorId, Status};
use crate::verifier::Rule;

/// `WAIT_TYPE`.
pub const WaitAll: u32 = 0;
/// `WAIT_TYPE`.
pub const WaitAny: u32 = 1;

#[derive(Debug)]
struct WaitBlock {
    actor: ActorId,
    objects: Vec<usize>,
    wait_all: bool,
    timeout: Option<DeadlineKey>,
    /// A delay (no objects) ends with STATUS_SUCCESS rather than STATUS_TIMEOUT.
    delay: bool,
}

/// Who waits on what, in the order the waits began (FIFO wake-up order).
#[derive(Debug, Default)]
pub(crate) struct WaitTable {
    blocks: BTreeMap<u64, WaitBlock>,
    next: u64,
}

fn header(obj: usize) -> *mut DISPATCHER_HEADER {
    obj as *mut DISPATCHER_HEADER
}

/// Reads an object's signal state.
pub(crate) fn signal_state(obj: usize) -> i32 {
    // SAFETY: `obj` is a live dispatcher object the caller passed to a kernel routine; the
    // header is at offset 0 of every dispatcher object.
    unsafe { (*header(obj)).SignalState }
}

/// Writes an object's signal state.
pub(crate) fn set_signal_state(obj: usize, value: i32) {
    // SAFETY: as in `signal_state`; the baton holder is the only writer.
    unsafe { (*header(obj)).SignalState = value };
}

fn object_type(obj: usize) -> u8 {
    // SAFETY: as in `signal_state`.
    unsafe { (*header(obj)).Type }
}

/// Takes one unit of `obj`'s signal for a satisfied wait.
fn consume(obj: usize) {
    match object_type(obj) {
        EventSynchronizationObject | TimerSynchronizationObject => set_signal_state(obj, 0),
        SemaphoreObject => set_signal_state(obj, signal_state(obj) - 1),
        _ => {}
    }
}

/// The status a wait would return now, without consuming anything; `None` if it must block.
fn satisfiable(objects: &[usize], wait_all: bool) -> Option<NTSTATUS> {
    if objects.is_empty() {
        return None;
    }
    if wait_all {
        objects
            .iter()
            .all(|&o| signal_state(o) > 0)
            .then_some(STATUS_SUCCESS)
    } else {
        objects
            .iter()
            .position(|&o| signal_state(o) > 0)
            .map(|i| STATUS_WAIT_0 + i as NTSTATUS)
    }
}

/// Consumes the signals a satisfied wait took.
fn satisfy(objects: &[usize], wait_all: bool, status: NTSTATUS) {
    if wait_all {
        objects.iter().for_each(|&o| consume(o));
    } else {
        consume(objects[(status - STATUS_WAIT_0) as usize]);
    }
}

impl World {
    /// `obj` became signalled: satisfy the waits it can, oldest first, while it stays signalled.
    pub(crate) fn signal_object(&mut self, obj: usize) {
        let candidates: Vec<u64> = self
            .waits
            .blocks
            .iter()
            .filter(|(_, b)| b.objects.contains(&obj))
            .map(|(&k, _)| k)
            .collect();
        for key in candidates {
            if signal_state(obj) <= 0 {
                break;
            }
            let b = &self.waits.blocks[&key];
            if let Some(status) = satisfiable(&b.objects, b.wait_all) {
                let b = self.waits.blocks.remove(&key).expect("block exists");
                satisfy(&b.objects, b.wait_all, status);
                self.finish_wait(b, status);
            }
        }
    }

    fn finish_wait(&mut self, b: WaitBlock, status: NTSTATUS) {
        if let Some(k) = b.timeout {
            self.clock.remove(k);
        }
        self.sched.actor_mut(b.actor).wake_status = Some(status);
        self.sched.make_ready(b.actor);
    }

    /// A wait's timeout fired.
    pub(crate) fn wait_timed_out(&mut self, actor: ActorId, generation: u64) {
        if let Some(b) = self.waits.blocks.remove(&generation) {
            debug_assert_eq!(b.actor, actor);
            let status = if b.delay {
                STATUS_SUCCESS
            } else {
                STATUS_TIMEOUT
            };
            let b = WaitBlock { timeout: None, ..b };
            self.finish_wait(b, status);
        }
    }

    /// Whether `actor` is blocked in a wait that includes `obj`.
    #[allow(
        dead_code,
        reason = "for checks that need to know who waits on an object"
    )]
    pub(crate) fn is_waiting_on(&self, actor: ActorId, obj: usize) -> bool {
        self.waits
            .blocks
            .values()
            .any(|b| b.actor == actor && b.objects.contains(&obj))
    }
}

/// The checks every wait makes (rule C16, C20), and the IRQL it returns at.
fn check_wait(cx: &Cx, routine: &str, poll: bool) -> bool {
    let mut g = cx.lock();
    let me = cx.me;
    let a = g.sched.actor(me);
    // After KeSetEvent/KeReleaseSemaphore(Wait = TRUE) the thread is at DISPATCH_LEVEL only
    // because of that call: the wait is judged at the IRQL it returns to (spec A.14), so an
    // infinite wait after Wait = TRUE from DISPATCH_LEVEL is as illegal as without it.
    let irql = a.wait_next.map_or(a.irql, |(_, saved)| saved);
    let holds = !a.held_locks.is_empty();
    let max = if poll { DISPATCH_LEVEL } else { APC_LEVEL };
    if holds {
        let who = g.who(me);
        g.report(
            Rule::IllegalWait,
            format!("{routine} while holding a spin lock"),
            vec![who],
        );
        drop(cx.reschedule(g));
        return false;
    }
    if irql > max {
        let who = g.who(me);
        g.report(
            Rule::IllegalWait,
            format!(
                "{routine} at IRQL {irql} with a {} timeout; it requires IRQL <= {max}",
                if poll { "zero" } else { "non-zero or infinite" }
            ),
            vec![who],
        );
        drop(cx.reschedule(g));
        return false;
    }
    true
}

/// The core of every wait: `objects` (addresses of dispatcher headers), all or any, and a
/// kernel timeout (`None` = infinite; `Some(0)` = poll; negative relative; positive absolute).
pub(crate) fn wait_objects(
    routine: &str,
    objects: Vec<usize>,
    wait_all: bool,
    timeout: Option<i64>,
) -> NTSTATUS {
    wait_objects_ex(routine, objects, wait_all, timeout, false)
}

/// [`wait_objects`]; with `settled`, the timeout fires only once the machine has settled at
/// its time (`Clock::add_settled`).
pub(crate) fn wait_objects_ex(
    routine: &str,
    objects: Vec<usize>,
    wait_all: bool,
    timeout: Option<i64>,
    settled: bool,
) -> NTSTATUS {
    let cx = Cx::get();
    let poll = timeout == Some(0);
    if !check_wait(&cx, routine, poll) {
        return STATUS_TIMEOUT;
    }
    let mut g = cx.lock();
    // A wait after KeSetEvent(Wait = TRUE) returns to the IRQL from before that call; the
    // thread gives up its CPU at that IRQL if it blocks.
    if let Some((_, irql)) = g.sched.actor_mut(cx.me).wait_next.take() {
        g.sched.actor_mut(cx.me).irql = irql;
    }
    let status = if let Some(status) = satisfiable(&objects, wait_all) {
        satisfy(&objects, wait_all, status);
        status
    } else if poll && !objects.is_empty() {
        STATUS_TIMEOUT
    } else {
        g.waits.next += 1;
        let generation = g.waits.next;
        let timeout_key = timeout.map(|t| {
            let at = g.clock.due_to_interrupt_time(t);
            let d = Deadline::Timeout {
                actor: cx.me,
                generation,
            };
            if settled {
                g.clock.add_settled(at, d)
            } else {
                g.clock.add(at, d)
            }
        });
        let delay = objects.is_empty();
        g.waits.blocks.insert(
            generation,
            WaitBlock {
                actor: cx.me,
                objects: objects.clone(),
                wait_all,
                timeout: timeout_key,
                delay,
            },
        );
        let (g2, wake) = cx.block(g, Status::Waiting);
        g = g2;
        wake.unwrap_or(STATUS_TIMEOUT)
    };
    drop(g);
    cx.point(Point::WaitReturn, objects.first().copied().unwrap_or(0));
    status
}

fn read_timeout(timeout: *mut LARGE_INTEGER) -> Option<i64> {
    if timeout.is_null() {
        None
    } else {
        // SAFETY: a non-NULL timeout points to a LARGE_INTEGER the caller owns.
        Some(unsafe { timeout.read() })
    }
}

/// Waits until `object` is signalled or the timeout passes.
///
/// IRQL: <= APC_LEVEL; <= DISPATCH_LEVEL when `timeout` points to 0 (rule C16).
/// Returns STATUS_SUCCESS or STATUS_TIMEOUT.
///
/// # Safety
/// `object` must point to a live dispatcher object; `timeout` is NULL or points to a
/// LARGE_INTEGER.
#[allow(non_snake_case)]
pub unsafe fn KeWaitForSingleObject(
    object: PVOID,
    _wait_reason: u32,
    _wait_mode: KPROCESSOR_MODE,
    _alertable: u8,
    timeout: *mut LARGE_INTEGER,
) -> NTSTATUS {
    wait_objects(
        "KeWaitForSingleObject",
        vec![object as usize],
        false,
        read_timeout(timeout),
    )
}

/// Waits for any or all of `count` objects.
///
/// IRQL: as [`KeWaitForSingleObject`]. Returns STATUS_WAIT_0 + index (WaitAny),
/// STATUS_SUCCESS (WaitAll) or STATUS_TIMEOUT.
///
/// # Safety
/// `objects` must point to `count` pointers to live dispatcher objects; `timeout` is NULL or
/// points to a LARGE_INTEGER.
#[allow(non_snake_case, clippy::too_many_arguments)] // the export's own signature
pub unsafe fn KeWaitForMultipleObjects(
    count: u32,
    objects: *const PVOID,
    wait_type: u32,
    _wait_reason: u32,
    _wait_mode: KPROCESSOR_MODE,
    _alertable: u8,
    timeout: *mut LARGE_INTEGER,
    _wait_block_array: PVOID,
) -> NTSTATUS {
    // SAFETY: the caller guarantees `objects` holds `count` pointers.
    let list = unsafe { std::slice::from_raw_parts(objects, count as usize) };
    wait_objects(
        "KeWaitForMultipleObjects",
        list.iter().map(|&p| p as usize).collect(),
        wait_type == WaitAll,
        read_timeout(timeout),
    )
}

/// Puts the current thread to sleep for `interval` (negative: relative, 100 ns).
///
/// IRQL: <= APC_LEVEL (rule C16). Returns STATUS_SUCCESS.
///
/// # Safety
/// `interval` must point to a LARGE_INTEGER.
#[allow(non_snake_case)]
pub unsafe fn KeDelayExecutionThread(
    _wait_mode: KPROCESSOR_MODE,
    _alertable: u8,
    interval: *mut LARGE_INTEGER,
) -> NTSTATUS {
    // SAFETY: the caller guarantees `interval` is readable.
    let t = unsafe { interval.read() };
    let cx = Cx::get();
    if !check_wait(&cx, "KeDelayExecutionThread", false) {
        return STATUS_SUCCESS;
    }
    drop(cx);
    wait_objects("KeDelayExecutionThread", Vec::new(), false, Some(t))
}
