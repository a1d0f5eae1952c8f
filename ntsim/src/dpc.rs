//! DPCs (spec A.13).
//!
//! A queued DPC sits in its CPU's queue (`Cpu::dpc_queue`) and `KDPC.DpcData` is non-NULL while
//! it is queued, as on Windows; the CPU's interrupt actor runs it at DISPATCH_LEVEL once no
//! thread of that CPU is at DISPATCH_LEVEL or above. DpcData is cleared before the routine runs,
//! so a DPC may be queued again while it runs.

use std::collections::{HashMap, HashSet};

use crate::breakpoint::Point;
use crate::machine::{Cx, World};
use crate::ntdef::{
    DISPATCH_LEVEL, DpcObject, HighImportance, KDPC, MediumImportance, PKDEFERRED_ROUTINE, PKDPC,
    PVOID,
};
use crate::sched::{ActorId, Status};
use crate::verifier::Rule;

/// DPC bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct DpcTable {
    /// Queued DPCs and their CPU.
    pub(crate) queued: HashMap<usize, usize>,
    /// DPCs whose routine is running now, with the actors running it (a DPC can run on two
    /// CPUs at once).
    pub(crate) running: HashMap<usize, Vec<ActorId>>,
    /// DPCs ever passed to KeSetTimer, and to KeInsertQueueDpc (rule C26).
    pub(crate) used_by_timer: HashSet<usize>,
    pub(crate) used_by_queue: HashSet<usize>,
    /// Threads in KeFlushQueuedDpcs.
    pub(crate) flush_waiters: Vec<ActorId>,
}

impl World {
    /// Queues `dpc` on `cpu` (KeInsertQueueDpc's work); false if it was already queued.
    pub(crate) fn queue_dpc(&mut self, dpc: usize, cpu: usize, a1: PVOID, a2: PVOID) -> bool {
        let d = dpc as *mut KDPC;
        // SAFETY: `dpc` is a live, initialized KDPC passed to a kernel routine.
        let k = unsafe { d.read() };
        if !k.DpcData.is_null() {
            return false;
        }
        // SAFETY: as above; the baton holder is the only writer.
        unsafe {
            d.write(KDPC {
                SystemArgument1: a1,
                SystemArgument2: a2,
                DpcData: (cpu + 1) as PVOID,
                ..k
            })
        };
        let q = &mut self.cpus[cpu].dpc_queue;
        if k.Importance == HighImportance {
            q.push_front(dpc);
        } else {
            q.push_back(dpc);
        }
        self.dpcs.queued.insert(dpc, cpu);
        self.request_dispatch_interrupt(cpu);
        true
    }

    /// Whether a DPC in `[start, start+len)` is queued or running (rules C24, C25).
    #[allow(dead_code, reason = "the unload checks (rule C25) use it")]
    pub(crate) fn active_dpc_in(&self, start: usize, len: usize) -> Option<usize> {
        self.active_dpc_in_except(start, len, None)
    }

    /// As [`World::active_dpc_in`], not counting invocations run by `except` (a DPC routine
    /// looking at its own memory).
    pub(crate) fn active_dpc_in_except(
        &self,
        start: usize,
        len: usize,
        except: Option<ActorId>,
    ) -> Option<usize> {
        let inside = |d: usize| d >= start && d < start + len;
        let queued = self.dpcs.queued.keys().copied().find(|&d| inside(d));
        queued.or_else(|| {
            self.dpcs
                .running
                .iter()
                .find(|(d, by)| inside(**d) && by.iter().any(|&a| Some(a) != except))
                .map(|(d, _)| *d)
        })
    }

    fn dpc_started(&mut self, dpc: usize, by: ActorId) {
        self.dpcs.running.entry(dpc).or_default().push(by);
    }

    fn dpc_finished(&mut self, dpc: usize, by: ActorId) {
        if let Some(v) = self.dpcs.running.get_mut(&dpc) {
            if let Some(i) = v.iter().position(|&a| a == by) {
                v.swap_remove(i);
            }
            if v.is_empty() {
                self.dpcs.running.remove(&dpc);
            }
        }
        self.wake_dpc_flushers();
    }

    /// Releases KeFlushQueuedDpcs callers once no DPC is queued or running.
    fn wake_dpc_flushers(&mut self) {
        if self.dpcs.queued.is_empty() && self.dpcs.running.is_empty() {
            for w in std::mem::take(&mut self.dpcs.flush_waiters) {
                self.sched.make_ready(w);
            }
        }
    }
}

/// Calls a DPC routine with `a1`/`a2` at DISPATCH_LEVEL on the running (interrupt) actor and
/// checks that it returns at DISPATCH_LEVEL (rule C21). The arguments are parameters, not read
/// from the KDPC here: a timer's direct call (spec A.12.3) passes the expiry time without
/// touching the KDPC, which may be queued with arguments of its own (rule C26's case).
pub(crate) fn call_routine(cx: &Cx, dpc: usize, a1: PVOID, a2: PVOID) {
    let d = dpc as *mut KDPC;
    // SAFETY: `dpc` is a live, initialized KDPC.
    let k = unsafe { d.read() };
    let (routine, context) = (k.DeferredRoutine, k.DeferredContext);
    {
        let mut g = cx.lock();
        g.dpc_started(dpc, cx.me);
    }
    cx.point(Point::DpcStart, dpc);
    let apc_before = cx.lock().sched.actor(cx.me).apc_disable;
    if let Some(f) = routine {
        // SAFETY: the routine and its context were registered together by KeInitializeDpc;
        // calling it at DISPATCH_LEVEL with the KDPC and its arguments is its contract.
        unsafe { crate::abi::call_dpc_fn(f, d, context, a1, a2) };
    }
    let mut g = cx.lock();
    let a = g.sched.actor(cx.me);
    let (irql, locks, apc_after) = (a.irql, a.held_locks.len(), a.apc_disable);
    if irql != DISPATCH_LEVEL || locks != 0 {
        let who = g.who(cx.me);
        g.report(
            Rule::IrqlChanged,
            format!(
                "DPC routine {routine:?} returned at IRQL {irql} holding {locks} spin lock(s); it must return at DISPATCH_LEVEL with none"
            ),
            vec![who],
        );
    } else if apc_after != apc_before {
        let who = g.who(cx.me);
        g.report(
            Rule::CriticalRegion,
            format!("DPC routine {routine:?} changed the APC-disable count (0xC7/4,5)"),
            vec![who],
        );
    }
    g.dpc_finished(dpc, cx.me);
}

/// The interrupt actor runs a DPC taken from its queue.
pub(crate) fn run_queued(cx: &Cx, dpc: usize) {
    let d = dpc as *mut KDPC;
    let k = {
        let mut g = cx.lock();
        g.dpcs.queued.remove(&dpc);
        // SAFETY: `dpc` is a live KDPC (rule C24 guards its memory while queued).
        let k = unsafe { d.read() };
        // SAFETY: as above; DpcData is cleared before the routine runs (spec A.13), so the
        // routine may queue its DPC again.
        unsafe { (*d).DpcData = std::ptr::null_mut() };
        k
    };
    call_routine(cx, dpc, k.SystemArgument1, k.SystemArgument2);
}

/// Initializes a DPC with its routine and context (Importance Medium, current CPU).
///
/// IRQL: any. A NULL `dpc` faults on Windows; ntsim reports a fatal stop.
///
/// # Safety
/// `dpc` must be valid for writes and not queued.
#[allow(non_snake_case)]
pub unsafe fn KeInitializeDpc(dpc: PKDPC, routine: PKDEFERRED_ROUTINE, context: PVOID) {
    // Outside a machine (a layout test, say) there is no bookkeeping to update.
    let Some(cx) = Cx::try_get() else {
        assert!(!dpc.is_null(), "KeInitializeDpc(NULL): access violation");
        // SAFETY: forwarded caller contract.
        unsafe { init_fields(dpc, routine, context) };
        return;
    };
    let mut g = cx.lock();
    if dpc.is_null() {
        let who = g.who(cx.me);
        g.report(
            Rule::BugCheck,
            "KeInitializeDpc(NULL): access violation in kernel mode (KMODE_EXCEPTION_NOT_HANDLED)"
                .to_string(),
            vec![who],
        );
        drop(cx.stop_if_halted(g));
        return;
    }
    // Initializing makes a new DPC: what the storage was used for before no longer counts for
    // rule C26 (pool and stack memory get reused at the same addresses).
    g.dpcs.used_by_timer.remove(&(dpc as usize));
    g.dpcs.used_by_queue.remove(&(dpc as usize));
    drop(g);
    // SAFETY: forwarded caller contract.
    unsafe { init_fields(dpc, routine, context) };
}

/// Writes a fresh KDPC (spec A.13: DpcObject, Medium importance, current CPU, not queued).
///
/// # Safety
/// `dpc` must be valid for writes.
unsafe fn init_fields(dpc: PKDPC, routine: PKDEFERRED_ROUTINE, context: PVOID) {
    // SAFETY: the caller guarantees `dpc` is writable; every field is plain data.
    unsafe {
        dpc.write(KDPC {
            Type: DpcObject,
            Importance: MediumImportance,
            DeferredRoutine: routine,
            DeferredContext: context,
            ..KDPC::zeroed()
        })
    };
}

/// Queues `dpc` on the current CPU; FALSE (0) if it was already queued (the new arguments are
/// then ignored).
///
/// IRQL: any.
///
/// # Safety
/// `dpc` must point to an initialized DPC that stays valid until it has run or been removed.
#[allow(non_snake_case)]
pub unsafe fn KeInsertQueueDpc(dpc: PKDPC, a1: PVOID, a2: PVOID) -> u8 {
    let cx = Cx::get();
    let inserted = {
        let mut g = cx.lock();
        let cpu = g.sched.actor(cx.me).cpu;
        g.dpcs.used_by_queue.insert(dpc as usize);
        if g.dpcs.used_by_timer.contains(&(dpc as usize)) {
            let who = g.who(cx.me);
            g.report(
                Rule::DpcTimerAndQueue,
                format!(
                    "KDPC {:#x} passed to KeInsertQueueDpc is also used by a timer",
                    dpc as usize
                ),
                vec![who],
            );
        }
        g.queue_dpc(dpc as usize, cpu, a1, a2)
    };
    cx.switch_point();
    u8::from(inserted)
}

/// Removes `dpc` from its queue; TRUE (1) if it was queued (it will then not run for that
/// insertion), FALSE if it was not queued (never queued, running, or finished).
///
/// IRQL: any.
///
/// # Safety
/// `dpc` must point to an initialized DPC.
#[allow(non_snake_case)]
pub unsafe fn KeRemoveQueueDpc(dpc: PKDPC) -> u8 {
    let cx = Cx::get();
    let mut g = cx.lock();
    let Some(cpu) = g.dpcs.queued.remove(&(dpc as usize)) else {
        return 0;
    };
    g.cpus[cpu].dpc_queue.retain(|&d| d != dpc as usize);
    // SAFETY: the caller guarantees `dpc` is a live KDPC.
    unsafe { (*dpc).DpcData = std::ptr::null_mut() };
    g.wake_dpc_flushers();
    1
}

/// Returns once every DPC queued on any CPU at the time of the call has run.
///
/// IRQL: PASSIVE_LEVEL (rule C19).
#[allow(non_snake_case)]
pub fn KeFlushQueuedDpcs() {
    let cx = Cx::get();
    cx.check_irql_at_most("KeFlushQueuedDpcs", crate::ntdef::PASSIVE_LEVEL);
    loop {
        let mut g = cx.lock();
        if g.dpcs.queued.is_empty() && g.dpcs.running.is_empty() {
            return;
        }
        g.dpcs.flush_waiters.push(cx.me);
        drop(cx.block(g, Status::Waiting));
    }
}
