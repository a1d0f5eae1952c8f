//! Cancel-safe IRP queues: IoCsqInitialize(Ex), IoCsqInsertIrp(Ex), IoCsqRemoveIrp,
//! IoCsqRemoveNextIrp and the internal CSQ cancel routine, in WRK's order of operations
//! (spec A.9), with the CSQ verifier rules C13 and C30–C33.
//!
//! The queue itself is the driver's: ntsim only calls its six callbacks. What ntsim learns by
//! watching them is kept in `CsqTable`: which IRPs are linked (between the Insert and the
//! Remove callback), what IoCsq stored in each IRP's `DriverContext[3]`, which spin lock the
//! driver's CsqAcquireLock takes, and which queue locks each thread holds through IoCsq.

use std::collections::HashMap;

use crate::breakpoint::Point;
use crate::cancel::exchange_cancel_routine;
use crate::machine::{Cx, World};
use crate::ntdef::{
    DEVICE_OBJECT, DISPATCH_LEVEL, IO_TYPE_CSQ, IO_TYPE_CSQ_EX, IO_TYPE_CSQ_IRP_CONTEXT, IRP,
    KIRQL, NT_SUCCESS, NTSTATUS, PIO_CSQ, PIO_CSQ_ACQUIRE_LOCK, PIO_CSQ_COMPLETE_CANCELED_IRP,
    PIO_CSQ_INSERT_IRP, PIO_CSQ_INSERT_IRP_EX, PIO_CSQ_IRP_CONTEXT, PIO_CSQ_PEEK_NEXT_IRP,
    PIO_CSQ_RELEASE_LOCK, PIO_CSQ_REMOVE_IRP, PIRP, PVOID, STATUS_SUCCESS, STATUS_UNSUCCESSFUL,
};
use crate::sched::ActorId;
use crate::verifier::Rule;

/// What ntsim knows about one IO_CSQ.
#[derive(Debug, Default)]
struct QueueInfo {
    /// The spin lock the driver's CsqAcquireLock takes, once seen (rule C8).
    lock: Option<usize>,
}

/// What IoCsq stored in an IRP's `DriverContext[3]` (rule C13) and where the IRP is queued.
#[derive(Debug)]
struct Stamp {
    csq: usize,
    /// The IO_CSQ_IRP_CONTEXT, or 0.
    context: usize,
    /// The value stored (the context or the queue).
    value: usize,
    reported: bool,
}

/// Side table of the cancel-safe queues of a machine.
#[derive(Debug, Default)]
pub(crate) struct CsqTable {
    queues: HashMap<usize, QueueInfo>,
    /// IRP → the queue it is linked in, from its Insert callback to its Remove callback.
    linked: HashMap<usize, usize>,
    /// IRP → what IoCsq wrote in its DriverContext[3] (from A.9.3 step 1 until it is cleared).
    stamps: HashMap<usize, Stamp>,
    /// Per thread: the queues whose lock it holds through IoCsq (CsqAcquireLock called and
    /// CsqReleaseLock not yet), innermost last. A CSQ callback runs inside this (rule C31).
    inside: HashMap<ActorId, Vec<usize>>,
}

/// The queue `irp` is linked in, if any (rule C5).
pub(crate) fn queue_of_linked(g: &World, irp: usize) -> Option<usize> {
    g.csq.linked.get(&irp).copied()
}

/// Rule C8 for queued IRPs: `Some(reason)` if `irp` is linked in a queue whose lock `me` does
/// not hold. Silent when ntsim does not know the queue's lock (it then cannot tell).
pub(crate) fn mark_pending_unprotected(g: &World, me: ActorId, irp: usize) -> Option<String> {
    let q = *g.csq.linked.get(&irp)?;
    if g.csq.inside.get(&me).is_some_and(|v| v.contains(&q)) {
        return None;
    }
    let lock = g.csq.queues.get(&q)?.lock?;
    (!g.spin.holds(me, lock)).then(|| {
        format!(
            "it is linked in cancel-safe queue {q:#x} and the queue lock {lock:#x} is not held, so a remover or the cancel routine may complete it at any moment"
        )
    })
}

// ---- raw field access (one unsafe operation each) -------------------------------------------

fn read_dc3(irp: PIRP) -> usize {
    // SAFETY: `irp` is a live IRP; DriverContext[3] is a pointer-sized field.
    unsafe { IRP::driver_context_ptr(irp, 3).read() as usize }
}

fn write_dc3(irp: PIRP, value: usize) {
    // SAFETY: `irp` is a live IRP that IoCsq currently routes.
    unsafe { IRP::driver_context_ptr(irp, 3).write(value as PVOID) };
}

fn read_cancel(irp: PIRP) -> bool {
    // SAFETY: `irp` is a live IRP.
    unsafe { (*irp).Cancel != 0 }
}

fn context_irp(ctx: PIO_CSQ_IRP_CONTEXT) -> PIRP {
    // SAFETY: the caller passed a valid IO_CSQ_IRP_CONTEXT.
    unsafe { (*ctx).Irp }
}

fn set_context_irp(ctx: PIO_CSQ_IRP_CONTEXT, irp: PIRP) {
    // SAFETY: the caller passed a valid IO_CSQ_IRP_CONTEXT, which must stay valid while its IRP
    // is queued (spec A.9.5, context lifetime rule).
    unsafe { (*ctx).Irp = irp };
}

fn init_context(ctx: PIO_CSQ_IRP_CONTEXT, irp: PIRP, csq: PIO_CSQ) {
    // SAFETY: the caller passed a valid, writable IO_CSQ_IRP_CONTEXT.
    unsafe {
        ctx.write(crate::ntdef::IO_CSQ_IRP_CONTEXT {
            Type: IO_TYPE_CSQ_IRP_CONTEXT,
            Irp: irp,
            Csq: csq,
        });
    }
}

fn queue_type(csq: PIO_CSQ) -> u32 {
    // SAFETY: the caller passed an initialized IO_CSQ.
    unsafe { (*csq).Type }
}

fn reset_reserve(csq: PIO_CSQ) {
    // SAFETY: as above; WRK resets ReservePointer on every call ("good citizens", spec A.9.1).
    unsafe { (*csq).ReservePointer = std::ptr::null_mut() };
}

/// A copy of the queue's callbacks, read at the moment of the call as the kernel does.
fn callbacks(csq: PIO_CSQ) -> crate::ntdef::IO_CSQ {
    // SAFETY: the caller passed an initialized IO_CSQ; it is plain old data.
    unsafe { csq.read() }
}

// ---- verifier helpers ------------------------------------------------------------------------

fn report_with_irp(g: &mut World, me: ActorId, rule: Rule, irp: usize, message: String) {
    let who = g.who(me);
    let mut parties = vec![who];
    if irp != 0 {
        parties.extend(g.irp_history(irp));
    }
    g.report(rule, message, parties);
}

/// Entry checks of every IoCsq* routine: rule C19 (IRQL), C31 (re-entry from a callback of the
/// same queue: a self-deadlock on its lock, fatal) and, for an IRP argument, C6 (a completed
/// or freed IRP, or one already queued). Returns false if the call must not go on: the machine
/// halted (the caller never runs again), or the IRP is completed (ntsim then refuses the call
/// rather than write past its stack array; an insert returns STATUS_UNSUCCESSFUL).
fn enter(cx: &Cx, routine: &str, csq: PIO_CSQ, irp: PIRP) -> bool {
    cx.check_irql_at_most(routine, DISPATCH_LEVEL);
    let mut g = cx.lock();
    if g.csq
        .inside
        .get(&cx.me)
        .is_some_and(|v| v.contains(&(csq as usize)))
    {
        report_with_irp(
            &mut g,
            cx.me,
            Rule::CsqReentry,
            irp as usize,
            format!(
                "{routine} on queue {:#x} from inside one of its own callbacks (its lock is held): self-deadlock",
                csq as usize
            ),
        );
        drop(cx.reschedule(g));
        return false;
    }
    if !irp.is_null() {
        if !g.check_irp_usable(cx.me, irp as usize, routine) {
            drop(cx.reschedule(g));
            return false;
        }
        if let Some(q) = g.csq.linked.get(&(irp as usize)).copied() {
            report_with_irp(
                &mut g,
                cx.me,
                Rule::UseAfterHandoff,
                irp as usize,
                format!(
                    "{routine}: IRP {:#x} is already linked in cancel-safe queue {q:#x}",
                    irp as usize
                ),
            );
        }
    }
    g.csq.queues.entry(csq as usize).or_default();
    true
}

/// Rule C13: every IRP of the queue must still hold in DriverContext[3] what IoCsq stored.
fn check_stamps(cx: &Cx, csq: PIO_CSQ) {
    let mut g = cx.lock();
    let mine: Vec<usize> = g
        .csq
        .stamps
        .iter()
        .filter(|(_, s)| s.csq == csq as usize && !s.reported)
        .map(|(&irp, _)| irp)
        .collect();
    for irp in mine {
        if !g.irp_is_live(irp) {
            continue;
        }
        let actual = read_dc3(irp as PIRP);
        let stamp = g.csq.stamps.get_mut(&irp).expect("listed above");
        if actual == stamp.value {
            continue;
        }
        stamp.reported = true;
        let expected = stamp.value;
        report_with_irp(
            &mut g,
            cx.me,
            Rule::CsqDriverContext,
            irp,
            format!(
                "DriverContext[3] of IRP {irp:#x} is {actual:#x}; IoCsq stored {expected:#x} there while it is queued (queue {:#x})",
                csq as usize
            ),
        );
    }
}

fn stamp(cx: &Cx, irp: PIRP, csq: PIO_CSQ, context: PIO_CSQ_IRP_CONTEXT, value: usize) {
    cx.lock().csq.stamps.insert(
        irp as usize,
        Stamp {
            csq: csq as usize,
            context: context as usize,
            value,
            reported: false,
        },
    );
}

/// Forgets the stamp of `irp`; returns its context (0 if none).
fn unstamp(cx: &Cx, irp: PIRP) -> usize {
    cx.lock()
        .csq
        .stamps
        .remove(&(irp as usize))
        .map_or(0, |s| s.context)
}

/// Rule C33: IoCsqInsertIrpEx re-initializing a context whose IRP is still queued.
fn check_context_reuse(cx: &Cx, ctx: PIO_CSQ_IRP_CONTEXT, irp: PIRP) {
    let old = context_irp(ctx);
    if old.is_null() {
        return;
    }
    let mut g = cx.lock();
    if let Some(q) = g.csq.linked.get(&(old as usize)).copied() {
        report_with_irp(
            &mut g,
            cx.me,
            Rule::CsqContext,
            old as usize,
            format!(
                "IO_CSQ_IRP_CONTEXT {:#x} reused for IRP {:#x} while its IRP {:#x} is still in queue {q:#x} (spec A.9.5 context lifetime)",
                ctx as usize, irp as usize, old as usize
            ),
        );
    }
}

// ---- the callbacks, called without the World guard -------------------------------------------

/// CsqAcquireLock; remembers which spin lock it took and that this thread is inside the queue.
fn acquire(cx: &Cx, csq: PIO_CSQ) -> KIRQL {
    let before = {
        let mut g = cx.lock();
        g.csq.inside.entry(cx.me).or_default().push(csq as usize);
        g.sched.actor(cx.me).held_locks.len()
    };
    let f = callbacks(csq)
        .CsqAcquireLock
        .expect("IO_CSQ.CsqAcquireLock is NULL");
    let mut irql: KIRQL = 0;
    // SAFETY: the driver registered `f` for this queue; `irql` is a valid out parameter.
    unsafe { crate::abi::call_csq_acquire_lock_fn(f, csq, &mut irql) };
    let mut g = cx.lock();
    let held = &g.sched.actor(cx.me).held_locks;
    let learned = (held.len() == before + 1).then(|| held[before].0);
    if let (Some(lock), Some(q)) = (learned, g.csq.queues.get_mut(&(csq as usize))) {
        q.lock = Some(lock);
    }
    irql
}

/// CsqReleaseLock.
fn release(cx: &Cx, csq: PIO_CSQ, irql: KIRQL) {
    let f = callbacks(csq)
        .CsqReleaseLock
        .expect("IO_CSQ.CsqReleaseLock is NULL");
    // SAFETY: the driver registered `f` for this queue; it is called with the IRQL its
    // CsqAcquireLock returned.
    unsafe { crate::abi::call_csq_release_lock_fn(f, csq, irql) };
    let mut g = cx.lock();
    if let Some(v) = g.csq.inside.get_mut(&cx.me)
        && let Some(i) = v.iter().rposition(|&q| q == csq as usize)
    {
        v.remove(i);
    }
}

/// CsqInsertIrp or CsqInsertIrpEx; on success the IRP counts as linked.
fn insert(cx: &Cx, csq: PIO_CSQ, irp: PIRP, insert_context: PVOID) -> NTSTATUS {
    let cbs = callbacks(csq);
    let status = if cbs.Type == IO_TYPE_CSQ_EX {
        let f = cbs.insert_irp_ex().expect("IO_CSQ.CsqInsertIrp is NULL");
        // SAFETY: the queue was initialized with IoCsqInitializeEx, so the slot holds the Ex
        // callback; it is called under the queue lock.
        unsafe { crate::abi::call_csq_insert_ex_fn(f, csq, irp, insert_context) }
    } else {
        let f = cbs.CsqInsertIrp.expect("IO_CSQ.CsqInsertIrp is NULL");
        // SAFETY: the driver registered `f`; it is called under the queue lock.
        unsafe { crate::abi::call_csq_insert_fn(f, csq, irp) };
        STATUS_SUCCESS
    };
    let mut g = cx.lock();
    if NT_SUCCESS(status) {
        g.csq.linked.insert(irp as usize, csq as usize);
        g.irp_event(
            irp as usize,
            cx.me,
            format!("inserted in cancel-safe queue {:#x}", csq as usize),
        );
    } else {
        g.irp_event(
            irp as usize,
            cx.me,
            format!("CsqInsertIrpEx refused it ({status:#x})"),
        );
    }
    status
}

/// CsqRemoveIrp; the IRP is no longer linked.
fn remove(cx: &Cx, csq: PIO_CSQ, irp: PIRP) {
    let f = callbacks(csq)
        .CsqRemoveIrp
        .expect("IO_CSQ.CsqRemoveIrp is NULL");
    // SAFETY: the driver registered `f`; the IRP is linked in its queue and the lock is held.
    unsafe { crate::abi::call_csq_remove_fn(f, csq, irp) };
    let mut g = cx.lock();
    g.csq.linked.remove(&(irp as usize));
    g.irp_event(
        irp as usize,
        cx.me,
        format!("removed from cancel-safe queue {:#x}", csq as usize),
    );
}

/// CsqPeekNextIrp, checked by rule C32: the answer must be linked in this queue and must not be
/// the argument or an IRP this scan already visited (a scan that goes back never ends). An
/// answer that breaks the rule is reported and treated as the end of the queue.
fn peek(cx: &Cx, csq: PIO_CSQ, irp: PIRP, peek_context: PVOID, seen: &mut Vec<usize>) -> PIRP {
    let f = callbacks(csq)
        .CsqPeekNextIrp
        .expect("IO_CSQ.CsqPeekNextIrp is NULL");
    // SAFETY: the driver registered `f`; it is called under the queue lock.
    let next = unsafe { crate::abi::call_csq_peek_fn(f, csq, irp, peek_context) };
    if next.is_null() {
        return next;
    }
    let mut g = cx.lock();
    let problem = if g.csq.linked.get(&(next as usize)) != Some(&(csq as usize)) {
        Some("that IRP is not in this queue")
    } else if next == irp || seen.contains(&(next as usize)) {
        Some("that IRP is not after its Irp argument (the scan went back)")
    } else {
        None
    };
    if let Some(problem) = problem {
        report_with_irp(
            &mut g,
            cx.me,
            Rule::CsqPeek,
            next as usize,
            format!(
                "CsqPeekNextIrp(queue {:#x}, {:#x}) returned IRP {:#x}: {problem}",
                csq as usize, irp as usize, next as usize
            ),
        );
        return std::ptr::null_mut();
    }
    seen.push(next as usize);
    next
}

/// CsqCompleteCanceledIrp, called without the queue lock (spec A.9.3 step 7, A.9.6 step 4).
fn complete_canceled(cx: &Cx, csq: PIO_CSQ, irp: PIRP) {
    cx.lock().irp_event(
        irp as usize,
        cx.me,
        "handed to CsqCompleteCanceledIrp".into(),
    );
    let f = callbacks(csq)
        .CsqCompleteCanceledIrp
        .expect("IO_CSQ.CsqCompleteCanceledIrp is NULL");
    // SAFETY: the driver registered `f`; the IRP is out of the queue and the caller owns it.
    unsafe { crate::abi::call_csq_complete_canceled_fn(f, csq, irp) };
}

// ---- the kernel routines -----------------------------------------------------------------------

fn initialize(csq: PIO_CSQ, ty: u32, cbs: crate::ntdef::IO_CSQ) -> NTSTATUS {
    // SAFETY: the caller passed writable IO_CSQ storage.
    unsafe {
        csq.write(crate::ntdef::IO_CSQ {
            Type: ty,
            ReservePointer: std::ptr::null_mut(),
            ..cbs
        });
    }
    if let Some(cx) = Cx::try_get() {
        cx.lock()
            .csq
            .queues
            .insert(csq as usize, QueueInfo::default());
    }
    STATUS_SUCCESS
}

/// Initializes a cancel-safe queue with the driver's six callbacks (`Type` = IO_TYPE_CSQ).
///
/// IRQL: <= DISPATCH_LEVEL. Returns STATUS_SUCCESS (the only value WRK and ReactOS produce,
/// spec A.9.2).
///
/// # Safety
/// `Csq` must point to writable, non-moving storage for an IO_CSQ that outlives every IRP
/// queued in it; the callbacks must follow the IO_CSQ contracts (spec A.9.1).
#[allow(non_snake_case)]
pub unsafe fn IoCsqInitialize(
    Csq: PIO_CSQ,
    CsqInsertIrp: PIO_CSQ_INSERT_IRP,
    CsqRemoveIrp: PIO_CSQ_REMOVE_IRP,
    CsqPeekNextIrp: PIO_CSQ_PEEK_NEXT_IRP,
    CsqAcquireLock: PIO_CSQ_ACQUIRE_LOCK,
    CsqReleaseLock: PIO_CSQ_RELEASE_LOCK,
    CsqCompleteCanceledIrp: PIO_CSQ_COMPLETE_CANCELED_IRP,
) -> NTSTATUS {
    let mut cbs = crate::ntdef::IO_CSQ::zeroed();
    cbs.CsqInsertIrp = CsqInsertIrp;
    cbs.CsqRemoveIrp = CsqRemoveIrp;
    cbs.CsqPeekNextIrp = CsqPeekNextIrp;
    cbs.CsqAcquireLock = CsqAcquireLock;
    cbs.CsqReleaseLock = CsqReleaseLock;
    cbs.CsqCompleteCanceledIrp = CsqCompleteCanceledIrp;
    initialize(Csq, IO_TYPE_CSQ, cbs)
}

/// Initializes a cancel-safe queue whose insert callback can refuse an IRP (`Type` =
/// IO_TYPE_CSQ_EX; the `CsqInsertIrp` slot holds the Ex callback).
///
/// IRQL: <= DISPATCH_LEVEL. Returns STATUS_SUCCESS (spec A.9.2).
///
/// # Safety
/// As [`IoCsqInitialize`].
#[allow(non_snake_case)]
pub unsafe fn IoCsqInitializeEx(
    Csq: PIO_CSQ,
    CsqInsertIrp: PIO_CSQ_INSERT_IRP_EX,
    CsqRemoveIrp: PIO_CSQ_REMOVE_IRP,
    CsqPeekNextIrp: PIO_CSQ_PEEK_NEXT_IRP,
    CsqAcquireLock: PIO_CSQ_ACQUIRE_LOCK,
    CsqReleaseLock: PIO_CSQ_RELEASE_LOCK,
    CsqCompleteCanceledIrp: PIO_CSQ_COMPLETE_CANCELED_IRP,
) -> NTSTATUS {
    let mut cbs = crate::ntdef::IO_CSQ::zeroed();
    cbs.set_insert_irp_ex(CsqInsertIrp);
    cbs.CsqRemoveIrp = CsqRemoveIrp;
    cbs.CsqPeekNextIrp = CsqPeekNextIrp;
    cbs.CsqAcquireLock = CsqAcquireLock;
    cbs.CsqReleaseLock = CsqReleaseLock;
    cbs.CsqCompleteCanceledIrp = CsqCompleteCanceledIrp;
    initialize(Csq, IO_TYPE_CSQ_EX, cbs)
}

/// Queues `Irp` in a cancel-safe queue and makes it cancelable (spec A.9.3, WRK's order).
///
/// On any NT_SUCCESS status the IRP was accepted: it is marked pending, and the caller must
/// return STATUS_PENDING from its dispatch routine and not touch the IRP again, even if it was
/// already cancelled and completed inside this call. On an NT error from an Ex queue's
/// CsqInsertIrpEx the IRP was not queued, not marked pending and not made cancelable; the
/// caller keeps it (and must treat `Context` as unused).
///
/// Returns STATUS_SUCCESS for a plain queue; for an Ex queue, whatever CsqInsertIrpEx returned
/// (rule C30 warns about success codes other than STATUS_SUCCESS).
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// `Csq` must be an initialized queue, `Irp` a live IRP the caller owns with a current stack
/// location, `Context` NULL or a writable IO_CSQ_IRP_CONTEXT that stays valid until the IRP is
/// removed or reaches CsqCompleteCanceledIrp.
#[allow(non_snake_case)]
pub unsafe fn IoCsqInsertIrpEx(
    Csq: PIO_CSQ,
    Irp: PIRP,
    Context: PIO_CSQ_IRP_CONTEXT,
    InsertContext: PVOID,
) -> NTSTATUS {
    let cx = Cx::get();
    if !enter(&cx, "IoCsqInsertIrpEx", Csq, Irp) {
        return STATUS_UNSUCCESSFUL;
    }
    reset_reserve(Csq);
    // Step 1, before the lock: DriverContext[3] names the context or the queue.
    let dc3 = if Context.is_null() {
        Csq as usize
    } else {
        check_context_reuse(&cx, Context, Irp);
        init_context(Context, Irp, Csq);
        Context as usize
    };
    write_dc3(Irp, dc3);
    stamp(&cx, Irp, Csq, Context, dc3);
    // Step 2.
    let irql = acquire(&cx, Csq);
    check_stamps(&cx, Csq);
    // Step 3.
    let status = insert(&cx, Csq, Irp, InsertContext);
    if !NT_SUCCESS(status) {
        // Refused: not queued, not pending, not cancelable; DriverContext[3] and the context
        // are left stale and the caller owns the IRP again.
        unstamp(&cx, Irp);
        release(&cx, Csq, irql);
        return status;
    }
    if status != STATUS_SUCCESS {
        let mut g = cx.lock();
        report_with_irp(
            &mut g,
            cx.me,
            Rule::CsqInsertStatus,
            Irp as usize,
            format!(
                "CsqInsertIrpEx returned {status:#x} for IRP {:#x}: WRK counts it as queued, ReactOS as refused (spec A.9.3, F.1); return STATUS_SUCCESS or an NT error",
                Irp as usize
            ),
        );
    }
    // Step 4, under the lock.
    // SAFETY: the caller's IRP has a current stack location.
    unsafe { crate::irp::IoMarkIrpPending(Irp) };
    // Step 5: the IRP becomes cancelable. (WRK only ASSERTs that no routine was set before.)
    exchange_cancel_routine(Irp, Some(csq_cancel_routine));
    cx.point(Point::CsqInsertBeforeCancelCheck, Irp as usize);
    // Step 6.
    if !read_cancel(Irp) {
        release(&cx, Csq, irql);
        return status;
    }
    // Step 7: cancelled before or while it was inserted; whoever wins the exchange finishes it.
    if exchange_cancel_routine(Irp, None).is_some() {
        remove(&cx, Csq, Irp);
        if !Context.is_null() {
            set_context_irp(Context, std::ptr::null_mut());
        }
        write_dc3(Irp, 0);
        unstamp(&cx, Irp);
        release(&cx, Csq, irql);
        // spec A.9.3 step 7: after the lock is released (ReactOS diverges, F.2).
        complete_canceled(&cx, Csq, Irp);
    } else {
        // IoCancelIrp won: its call of the CSQ cancel routine waits for the lock we hold.
        release(&cx, Csq, irql);
    }
    status
}

/// [`IoCsqInsertIrpEx`] with no insert context and the status discarded. On a queue made with
/// IoCsqInitializeEx a refusal is lost, leaving an IRP that is neither queued nor pending
/// (rule C30a).
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// As [`IoCsqInsertIrpEx`].
#[allow(non_snake_case)]
pub unsafe fn IoCsqInsertIrp(Csq: PIO_CSQ, Irp: PIRP, Context: PIO_CSQ_IRP_CONTEXT) {
    // SAFETY: forwarded caller contract.
    let status = unsafe { IoCsqInsertIrpEx(Csq, Irp, Context, std::ptr::null_mut()) };
    if !NT_SUCCESS(status) && queue_type(Csq) == IO_TYPE_CSQ_EX {
        let cx = Cx::get();
        let mut g = cx.lock();
        report_with_irp(
            &mut g,
            cx.me,
            Rule::CsqNonExInsert,
            Irp as usize,
            format!(
                "IoCsqInsertIrp on IoCsqInitializeEx queue {:#x}: CsqInsertIrpEx refused IRP {:#x} ({status:#x}) and the refusal is lost: the IRP is neither queued nor marked pending; use IoCsqInsertIrpEx",
                Csq as usize, Irp as usize
            ),
        );
    }
}

/// Removes the first IRP that CsqPeekNextIrp matches with `PeekContext` and that is not being
/// cancelled; it is no longer cancelable and belongs to the caller (spec A.9.4).
///
/// Returns the IRP, or NULL if no matching IRP can be taken.
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// `Csq` must be an initialized queue; `PeekContext` what its CsqPeekNextIrp expects.
#[allow(non_snake_case)]
pub unsafe fn IoCsqRemoveNextIrp(Csq: PIO_CSQ, PeekContext: PVOID) -> PIRP {
    let cx = Cx::get();
    if !enter(&cx, "IoCsqRemoveNextIrp", Csq, std::ptr::null_mut()) {
        return std::ptr::null_mut();
    }
    reset_reserve(Csq);
    let irql = acquire(&cx, Csq);
    check_stamps(&cx, Csq);
    let mut seen = Vec::new();
    let mut irp = peek(&cx, Csq, std::ptr::null_mut(), PeekContext, &mut seen);
    loop {
        if irp.is_null() {
            release(&cx, Csq, irql);
            return irp;
        }
        if exchange_cancel_routine(irp, None).is_some() {
            remove(&cx, Csq, irp);
            break;
        }
        // Being cancelled: its cancel routine waits for our lock and will unlink it.
        irp = peek(&cx, Csq, irp, PeekContext, &mut seen);
    }
    // Step 4, still under the lock.
    let context = unstamp(&cx, irp);
    if context != 0 {
        set_context_irp(context as PIO_CSQ_IRP_CONTEXT, std::ptr::null_mut());
    }
    write_dc3(irp, 0);
    release(&cx, Csq, irql);
    irp
}

/// Removes the IRP that `Context` was inserted with, unless it is already gone or being
/// cancelled (spec A.9.5).
///
/// Returns the IRP (no longer cancelable, the caller's), or NULL. NULL does not mean the
/// cancel path is done with `Context`: it must stay valid until the IRP reached
/// CsqCompleteCanceledIrp.
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// `Csq` must be an initialized queue and `Context` a context passed to IoCsqInsertIrp(Ex) on
/// it, still valid.
#[allow(non_snake_case)]
pub unsafe fn IoCsqRemoveIrp(Csq: PIO_CSQ, Context: PIO_CSQ_IRP_CONTEXT) -> PIRP {
    let cx = Cx::get();
    if !enter(&cx, "IoCsqRemoveIrp", Csq, std::ptr::null_mut()) {
        return std::ptr::null_mut();
    }
    reset_reserve(Csq);
    let irql = acquire(&cx, Csq);
    check_stamps(&cx, Csq);
    let irp = context_irp(Context);
    if irp.is_null() {
        release(&cx, Csq, irql);
        return irp;
    }
    if exchange_cancel_routine(irp, None).is_none() {
        // spec A.9.5 step 3: the cancel routine owns it and will clear the context later.
        release(&cx, Csq, irql);
        return std::ptr::null_mut();
    }
    remove(&cx, Csq, irp);
    set_context_irp(Context, std::ptr::null_mut());
    write_dc3(irp, 0);
    unstamp(&cx, irp);
    release(&cx, Csq, irql);
    irp
}

/// The cancel routine IoCsqInsertIrpEx installs (spec A.9.6); IoCancelIrp calls it at
/// DISPATCH_LEVEL with the cancel spin lock held.
unsafe extern "system" fn csq_cancel_routine(_dev: *mut DEVICE_OBJECT, irp: *mut IRP) {
    // SAFETY: IoCancelIrp passes a live IRP and set CancelIrql.
    let cancel_irql = unsafe { (*irp).CancelIrql };
    // Step 1: the cancel lock goes first (lock order, spec A.1.4).
    crate::spinlock::IoReleaseCancelSpinLock(cancel_irql);
    let cx = Cx::get();
    // Step 2: the queue, from DriverContext[3] as IoCsq stored it.
    let found = {
        let mut g = cx.lock();
        let actual = read_dc3(irp);
        match g.csq.stamps.get(&(irp as usize)) {
            Some(s) => {
                let (csq, context, value) = (s.csq, s.context, s.value);
                if actual != value && !s.reported {
                    report_with_irp(
                        &mut g,
                        cx.me,
                        Rule::CsqDriverContext,
                        irp as usize,
                        format!(
                            "CSQ cancel routine: DriverContext[3] of IRP {:#x} is {actual:#x}, IoCsq stored {value:#x} (Windows would follow the bad pointer)",
                            irp as usize
                        ),
                    );
                }
                Some((csq as PIO_CSQ, context as PIO_CSQ_IRP_CONTEXT))
            }
            None => {
                // WRK ASSERTs and returns: the IRP is never completed.
                report_with_irp(
                    &mut g,
                    cx.me,
                    Rule::CsqDriverContext,
                    irp as usize,
                    format!(
                        "CSQ cancel routine called for IRP {:#x}, which IoCsq does not know as queued (DriverContext[3] = {actual:#x})",
                        irp as usize
                    ),
                );
                None
            }
        }
    };
    let Some((csq, context)) = found else {
        return;
    };
    if !enter(&cx, "the CSQ cancel routine", csq, std::ptr::null_mut()) {
        return;
    }
    // Step 3.
    let irql = acquire(&cx, csq);
    check_stamps(&cx, csq);
    remove(&cx, csq, irp);
    if !context.is_null() {
        set_context_irp(context, std::ptr::null_mut());
        write_dc3(irp, 0);
    }
    unstamp(&cx, irp);
    release(&cx, csq, irql);
    // Step 4, outside the lock.
    complete_canceled(&cx, csq, irp);
}
