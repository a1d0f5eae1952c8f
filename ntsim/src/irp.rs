//! IRPs: allocation, stack locations, and ntsim's per-IRP bookkeeping (spec A.2).
//!
//! An IRP is allocated as on Windows: the IRP followed by its stack locations, with
//! `CurrentLocation = StackCount + 1` and `CurrentStackLocation` one past the last slot until
//! the first `IoSetNextIrpStackLocation`. What the verifier needs to know about an IRP (whether
//! it was completed, who may complete it, what happened to it) is in `IrpTable`, keyed by the
//! IRP's address, never in the IRP.

use std::alloc::Layout;
use std::collections::HashMap;

use crate::machine::{Cx, World};
use crate::ntdef::{
    CCHAR, IO_STACK_LOCATION, IO_TYPE_IRP, IRP, KIRQL, LIST_ENTRY, PIO_COMPLETION_ROUTINE, PIRP,
    PVOID, SL_INVOKE_ON_CANCEL, SL_INVOKE_ON_ERROR, SL_INVOKE_ON_SUCCESS, SL_PENDING_RETURNED,
    USHORT,
};
use crate::sched::ActorId;

/// What the I/O manager does when an IRP it built finishes its stack walk (user-visible
/// completion, spec A.6). Driver-allocated IRPs have none.
pub(crate) type CompletionSink = fn(&mut World, usize);

/// One event in an IRP's life, for verifier reports ("who did what, when").
#[derive(Clone, Debug)]
pub(crate) struct IrpEvent {
    pub(crate) time: u64,
    pub(crate) actor: String,
    pub(crate) what: String,
}

/// ntsim's knowledge of one IRP.
#[derive(Debug)]
pub(crate) struct IrpState {
    layout: Layout,
    /// IoCompleteRequest has finished its stack walk on it.
    pub(crate) completed: bool,
    /// Freed with IoFreeIrp (the address is remembered to catch use after free).
    pub(crate) freed: bool,
    pub(crate) sink: Option<CompletionSink>,
    pub(crate) history: Vec<IrpEvent>,
    /// Who may call IoCancelIrp on it without a rule C9 warning.
    pub(crate) cancel_allowed: CancelAllowed,
    /// IoCancelIrp in this actor took the cancel routine, which has not returned yet: until it
    /// does, the IRP is the cancel routine's and nobody else may complete it (rules C5, C8).
    pub(crate) cancel_taken_by: Option<ActorId>,
}

/// Who may cancel an IRP (rule C9: the allocator, or the parties the I/O manager designates).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CancelAllowed {
    /// Anyone (IRPs whose requester ntsim does not track).
    Anyone,
    /// Only these actors.
    Actors(Vec<ActorId>),
}

impl CancelAllowed {
    pub(crate) fn allows(&self, actor: ActorId) -> bool {
        match self {
            CancelAllowed::Anyone => true,
            CancelAllowed::Actors(list) => list.contains(&actor),
        }
    }
}

/// A cancel routine running in an actor (rule C10 bookkeeping).
#[derive(Debug)]
pub(crate) struct CancelFrame {
    pub(crate) irp: usize,
    /// `Irp->CancelIrql`: what the routine must release the cancel lock with.
    pub(crate) cancel_irql: KIRQL,
    /// The routine has released the cancel spin lock.
    pub(crate) released: bool,
    /// It released at DISPATCH_LEVEL and must KeLowerIrql(CancelIrql) before returning.
    pub(crate) must_lower: bool,
}

/// A cancel routine set by IoSetCancelRoutine on an IRP whose `Cancel` was already TRUE: unless
/// its setter clears it again before its next switch point, nobody will ever call it (rule C12).
#[derive(Debug)]
pub(crate) struct CancelWatch {
    pub(crate) irp: usize,
    pub(crate) setter: ActorId,
    pub(crate) routine: usize,
}

/// Every IRP the machine allocated and not yet forgot.
#[derive(Debug, Default)]
pub(crate) struct IrpTable {
    pub(crate) irps: HashMap<usize, IrpState>,
    /// Cancel routines running, per actor (innermost last).
    pub(crate) cancel_frames: HashMap<ActorId, Vec<CancelFrame>>,
    /// Rule C12 candidates, checked at the setter's next switch point.
    pub(crate) cancel_watch: Vec<CancelWatch>,
}

impl World {
    /// Appends an event to an IRP's history.
    pub(crate) fn irp_event(&mut self, irp: usize, actor: crate::sched::ActorId, what: String) {
        let time = self.clock.now();
        let actor = self.who(actor);
        if let Some(s) = self.irps.irps.get_mut(&irp) {
            s.history.push(IrpEvent { time, actor, what });
        }
    }

    /// The last few events of an IRP's history, formatted for a report's parties.
    pub(crate) fn irp_history(&self, irp: usize) -> Vec<String> {
        self.irps
            .irps
            .get(&irp)
            .map(|s| {
                let skip = s.history.len().saturating_sub(6);
                s.history[skip..]
                    .iter()
                    .map(|e| {
                        format!(
                            "{} at {} ms: {}",
                            e.actor,
                            e.time / crate::clock::TICKS_PER_MS,
                            e.what
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Allocates and initializes an IRP with `stack_size` stack locations.
    pub(crate) fn allocate_irp(&mut self, stack_size: CCHAR) -> PIRP {
        let n = stack_size.max(1) as usize;
        let size = size_of::<IRP>() + n * size_of::<IO_STACK_LOCATION>();
        let layout = Layout::from_size_align(size, 16).expect("valid IRP size");
        // SAFETY: the layout has non-zero size.
        let p = unsafe { std::alloc::alloc_zeroed(layout) } as PIRP;
        assert!(!p.is_null(), "host out of memory");
        // SAFETY: `p` is fresh storage of `size` bytes.
        unsafe { initialize_irp(p, size as USHORT, n as CCHAR) };
        self.irps.irps.insert(
            p as usize,
            IrpState {
                layout,
                completed: false,
                freed: false,
                sink: None,
                history: Vec::new(),
                cancel_allowed: CancelAllowed::Anyone,
                cancel_taken_by: None,
            },
        );
        p
    }

    /// Whether `irp` is an IRP this machine allocated and has not freed.
    pub(crate) fn irp_is_live(&self, irp: usize) -> bool {
        self.irps.irps.get(&irp).is_some_and(|s| !s.freed)
    }

    /// Whether `irp` finished IoCompleteRequest's stack walk (and was not re-initialized).
    pub(crate) fn irp_is_completed(&self, irp: usize) -> bool {
        self.irps.irps.get(&irp).is_some_and(|s| s.completed)
    }

    /// Sets who may cancel `irp` without a rule C9 warning (the I/O manager designates the
    /// requesting thread and itself).
    pub(crate) fn set_cancel_allowed(&mut self, irp: usize, allowed: CancelAllowed) {
        if let Some(s) = self.irps.irps.get_mut(&irp) {
            s.cancel_allowed = allowed;
        }
    }

    /// Rule C6: `routine` is about to use `irp` after it was completed or freed. Returns false
    /// if so: the caller must then not touch the IRP (a completed IRP's current stack location
    /// points past its stack array; a freed one is gone, which is fatal) and should pass a
    /// switch point (`cx.reschedule`), which parks it if the machine halted.
    pub(crate) fn check_irp_usable(&mut self, me: ActorId, irp: usize, routine: &str) -> bool {
        let Some(s) = self.irps.irps.get(&irp) else {
            return true;
        };
        let (freed, completed) = (s.freed, s.completed);
        if !freed && !completed {
            return true;
        }
        let who = self.who(me);
        let mut parties = vec![who];
        parties.extend(self.irp_history(irp));
        if freed {
            self.report_as(
                crate::verifier::Rule::UseAfterHandoff,
                crate::verifier::Severity::Fatal,
                format!("{routine} on IRP {irp:#x} after IoFreeIrp"),
                parties,
            );
            return false;
        }
        self.report(
            crate::verifier::Rule::UseAfterHandoff,
            format!("{routine} on IRP {irp:#x} after it was completed (ntsim skips the call)"),
            parties,
        );
        false
    }
}

/// IoInitializeIrp's work.
///
/// # Safety
/// `irp` must be valid for `size` bytes of writes.
unsafe fn initialize_irp(irp: PIRP, size: USHORT, stack_size: CCHAR) {
    // SAFETY: the caller guarantees `size` writable bytes.
    unsafe { std::ptr::write_bytes(irp.cast::<u8>(), 0, size as usize) };
    // SAFETY: all-zero bytes are a valid IRP, and nobody else can see it yet.
    let r = unsafe { irp_mut(irp) };
    r.Type = IO_TYPE_IRP;
    r.Size = size;
    r.StackCount = stack_size;
    r.CurrentLocation = stack_size + 1;
    let tle: *mut LIST_ENTRY = &raw mut r.ThreadListEntry;
    r.ThreadListEntry = LIST_ENTRY {
        Flink: tle,
        Blink: tle,
    };
    // The stack locations follow the IRP; the current one starts one past the last.
    let first = irp.wrapping_add(1).cast::<IO_STACK_LOCATION>();
    let current = first.wrapping_add(stack_size as usize);
    // SAFETY: the field is inside the IRP.
    unsafe { IRP::current_stack_location_ptr(irp).write(current) };
}

/// The IRP behind `irp`, for the kernel's own field accesses.
///
/// # Safety
/// `irp` must be a live IRP, and nothing else may access it while the reference is used (the
/// baton guarantees that as long as the caller passes no switch point meanwhile).
pub(crate) unsafe fn irp_mut<'a>(irp: PIRP) -> &'a mut IRP {
    // SAFETY: forwarded caller contract.
    unsafe { &mut *irp }
}

/// The stack location behind `sl`, as [`irp_mut`].
///
/// # Safety
/// As [`irp_mut`], for a stack location inside a live IRP's array.
pub(crate) unsafe fn stack_location_mut<'a>(
    sl: *mut IO_STACK_LOCATION,
) -> &'a mut IO_STACK_LOCATION {
    // SAFETY: forwarded caller contract.
    unsafe { &mut *sl }
}

/// Moves `irp`'s current stack location by `delta` slots (CurrentLocation and the pointer).
///
/// # Safety
/// `irp` must be a live IRP.
unsafe fn move_stack_location(irp: PIRP, delta: i8) {
    // SAFETY: forwarded caller contract.
    let r = unsafe { irp_mut(irp) };
    r.CurrentLocation += delta;
    let p = IRP::current_stack_location_ptr(irp);
    // SAFETY: the field is inside the live IRP.
    let current = unsafe { p.read() };
    // SAFETY: as above.
    unsafe { p.write(current.wrapping_offset(isize::from(delta))) };
}

/// Allocates an IRP with `stack_size` stack locations.
///
/// IRQL: <= DISPATCH_LEVEL. Returns NULL on allocation failure.
#[allow(non_snake_case)]
pub fn IoAllocateIrp(stack_size: CCHAR, _charge_quota: u8) -> PIRP {
    let cx = Cx::get();
    cx.check_irql_at_most("IoAllocateIrp", crate::ntdef::DISPATCH_LEVEL);
    let mut g = cx.lock();
    let p = g.allocate_irp(stack_size);
    g.irp_event(p as usize, cx.me, "allocated".into());
    // Rule C9: the allocator may cancel its own IRP; others only if designated.
    g.set_cancel_allowed(p as usize, CancelAllowed::Actors(vec![cx.me]));
    p
}

/// Lets `thread` (an emulated thread or DPC context) cancel `irp` without a rule C9 warning, as
/// the I/O manager does for the requester of an IRP it built. Call from an emulated thread.
pub fn designate_canceller(irp: PIRP, thread: ActorId) {
    let cx = Cx::get();
    let mut g = cx.lock();
    if let Some(s) = g.irps.irps.get_mut(&(irp as usize)) {
        match &mut s.cancel_allowed {
            CancelAllowed::Anyone => {}
            CancelAllowed::Actors(list) => list.push(thread),
        }
    }
}

/// Re-initializes an IRP (its size and stack count as allocated).
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// `irp` must be valid for `size` bytes and not in use.
#[allow(non_snake_case)]
pub unsafe fn IoInitializeIrp(irp: PIRP, size: USHORT, stack_size: CCHAR) {
    // SAFETY: forwarded caller contract.
    unsafe { initialize_irp(irp, size, stack_size) };
    let cx = Cx::get();
    if let Some(s) = cx.lock().irps.irps.get_mut(&(irp as usize)) {
        s.completed = false;
        s.cancel_taken_by = None;
    }
}

/// Frees an IRP allocated with [`IoAllocateIrp`]. The address is remembered so that a later use
/// is reported (rule C6).
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// `irp` must come from IoAllocateIrp and nobody may use it afterwards.
#[allow(non_snake_case)]
pub unsafe fn IoFreeIrp(irp: PIRP) {
    let cx = Cx::get();
    let mut g = cx.lock();
    let Some(s) = g.irps.irps.get_mut(&(irp as usize)) else {
        let who = g.who(cx.me);
        g.report(
            crate::verifier::Rule::BadPool,
            format!(
                "IoFreeIrp({:#x}): not an IRP allocated by IoAllocateIrp",
                irp as usize
            ),
            vec![who],
        );
        return;
    };
    if s.freed {
        let who = g.who(cx.me);
        g.report(
            crate::verifier::Rule::BadPool,
            format!("IoFreeIrp({:#x}): IRP freed twice", irp as usize),
            vec![who],
        );
        return;
    }
    s.freed = true;
    let layout = s.layout;
    // Poison, then release the memory: the entry stays as a tombstone.
    // SAFETY: the IRP was allocated by `allocate_irp` with `layout` and is freed once.
    unsafe { std::ptr::write_bytes(irp.cast::<u8>(), 0xDD, layout.size()) };
    // SAFETY: as above.
    unsafe { std::alloc::dealloc(irp.cast(), layout) };
}

/// The current stack location (`Tail.Overlay.CurrentStackLocation`).
///
/// IRQL: any.
///
/// # Safety
/// `irp` must be a live IRP.
#[allow(non_snake_case)]
pub unsafe fn IoGetCurrentIrpStackLocation(irp: PIRP) -> *mut IO_STACK_LOCATION {
    // SAFETY: the caller guarantees `irp` is live.
    unsafe { IRP::current_stack_location_ptr(irp).read() }
}

/// The next-lower stack location.
///
/// IRQL: any.
///
/// # Safety
/// `irp` must be a live IRP with a next location.
#[allow(non_snake_case)]
pub unsafe fn IoGetNextIrpStackLocation(irp: PIRP) -> *mut IO_STACK_LOCATION {
    // SAFETY: the caller guarantees a live IRP.
    let current = unsafe { IoGetCurrentIrpStackLocation(irp) };
    current.wrapping_sub(1)
}

/// Moves to the next-lower stack location.
///
/// IRQL: any.
///
/// # Safety
/// `irp` must be a live IRP with a next location.
#[allow(non_snake_case)]
pub unsafe fn IoSetNextIrpStackLocation(irp: PIRP) {
    // SAFETY: the caller guarantees a live IRP with a next location.
    unsafe { move_stack_location(irp, -1) };
}

/// Moves back to the next-higher stack location.
///
/// IRQL: any.
///
/// # Safety
/// `irp` must be a live IRP.
#[allow(non_snake_case)]
pub unsafe fn IoSkipCurrentIrpStackLocation(irp: PIRP) {
    // SAFETY: the caller guarantees `irp` is live; moving one past the top is allowed.
    unsafe { move_stack_location(irp, 1) };
}

/// Sets SL_PENDING_RETURNED in the current stack location.
///
/// IRQL: any.
///
/// # Safety
/// `irp` must be a live IRP with a current stack location.
#[allow(non_snake_case)]
pub unsafe fn IoMarkIrpPending(irp: PIRP) {
    let cx = Cx::get();
    let mut g = cx.lock();
    if !g.check_irp_usable(cx.me, irp as usize, "IoMarkIrpPending") {
        drop(cx.reschedule(g));
        return;
    }
    crate::cancel::check_mark_pending(&mut g, cx.me, irp as usize);
    g.irp_event(irp as usize, cx.me, "marked pending".into());
    drop(g);
    // SAFETY: the caller guarantees a live IRP.
    let sl = unsafe { IoGetCurrentIrpStackLocation(irp) };
    // SAFETY: the caller guarantees the current location is in the stack array.
    unsafe { stack_location_mut(sl) }.Control |= SL_PENDING_RETURNED;
}

/// Sets a completion routine in the next-lower stack location.
///
/// IRQL: any.
///
/// # Safety
/// `irp` must be a live IRP with a next location.
#[allow(non_snake_case)]
pub unsafe fn IoSetCompletionRoutine(
    irp: PIRP,
    routine: PIO_COMPLETION_ROUTINE,
    context: PVOID,
    on_success: u8,
    on_error: u8,
    on_cancel: u8,
) {
    // SAFETY: the caller guarantees a live IRP.
    let sl = unsafe { IoGetNextIrpStackLocation(irp) };
    // SAFETY: the caller guarantees the next location exists.
    let sl = unsafe { stack_location_mut(sl) };
    sl.CompletionRoutine = routine;
    sl.Context = context;
    sl.Control = 0;
    if on_success != 0 {
        sl.Control |= SL_INVOKE_ON_SUCCESS;
    }
    if on_error != 0 {
        sl.Control |= SL_INVOKE_ON_ERROR;
    }
    if on_cancel != 0 {
        sl.Control |= SL_INVOKE_ON_CANCEL;
    }
}

/// Attaches a completion sink (the I/O manager's user-visible completion) to an IRP.
#[allow(dead_code)] // for the I/O manager front end, which builds user IRPs
pub(crate) fn set_sink(g: &mut World, irp: usize, sink: CompletionSink) {
    if let Some(s) = g.irps.irps.get_mut(&irp) {
        s.sink = Some(sink);
    }
}
