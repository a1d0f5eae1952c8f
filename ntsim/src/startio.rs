//! IoStartPacket, IoStartNextPacket(ByKey), IoSetStartIoAttributes and the calls into a
//! driver's StartIo routine (spec A.11), with rules C19, C27, C27b and C28.
//!
//! The device's own `DeviceQueue` and `CurrentIrp` hold the queue, as on Windows. What WRK keeps
//! in the device object extension (the StartIo attributes and the deferred-StartIo counter) is
//! ntsim bookkeeping here, in `StartIoTable` keyed by device object, together with the
//! verifier's view of StartIo nesting.
//!
//! Two deliberate WRK behaviours (spec F-5, F-6):
//! - StartIo always runs at DISPATCH_LEVEL, whichever path starts it.
//! - With DeferredStartIo, StartIo nests at most twice: IoStartPacket never takes part in the
//!   deferral counter, so the StartIo it calls may run one nested StartIo through
//!   IoStartNextPacket; deeper starts are deferred and run iteratively (spec A.11.3).

use std::collections::{HashMap, HashSet};

use crate::breakpoint::Point;
use crate::device_queue::{self, KeyRule};
use crate::driver::call_checked;
use crate::machine::{Cx, World};
use crate::ntdef::{
    BOOLEAN, DISPATCH_LEVEL, IRP, KDEVICE_QUEUE, KIRQL, PDEVICE_OBJECT, PDRIVER_CANCEL,
    PDRIVER_STARTIO, PIRP, ULONG,
};
use crate::sched::ActorId;
use crate::spinlock::{IoReleaseCancelSpinLock, acquire_cancel_lock};
use crate::verifier::{Rule, Severity};

/// A start that IoStartNextPacket deferred because the device was already inside the deferral
/// loop (WRK's "start requested" flags and key).
#[derive(Copy, Clone, Debug)]
struct Deferred {
    cancelable: bool,
    key: Option<ULONG>,
}

/// The StartIo state of one device.
#[derive(Debug, Default)]
struct DeviceStartIo {
    /// IoSetStartIoAttributes(DeferredStartIo = TRUE) was called (DOE_STARTIO_DEFERRED).
    deferred: bool,
    /// IoSetStartIoAttributes(NonCancelable = TRUE) was called (DOE_STARTIO_NO_CANCEL).
    no_cancel: bool,
    /// WRK's StartIoCount: deferral loops in progress plus the calls they are deferring.
    count: u32,
    /// A start requested while `count` was non-zero.
    pending: Option<Deferred>,
    /// The actors currently inside StartIo for this device, one entry per frame.
    frames: Vec<ActorId>,
    /// C27's warning was given for this device.
    warned: bool,
}

/// StartIo bookkeeping of a machine.
#[derive(Debug, Default)]
pub(crate) struct StartIoTable {
    devices: HashMap<usize, DeviceStartIo>,
    /// Drivers that have registered a cancel routine (rule C27b).
    cancel_registered: HashSet<usize>,
}

impl StartIoTable {
    fn dev(&mut self, dev: usize) -> &mut DeviceStartIo {
        self.devices.entry(dev).or_default()
    }
}

/// Rule C27b's bookkeeping: `irp`'s current device's driver has registered a cancel routine.
/// Called by IoSetCancelRoutine with a non-NULL routine.
pub(crate) fn note_cancel_routine(g: &mut World, irp: usize) {
    let irp = irp as PIRP;
    // SAFETY: IoSetCancelRoutine's caller routes a live IRP; its location fields are plain data.
    let loc = unsafe { (*irp).CurrentLocation };
    // SAFETY: as above.
    let count = unsafe { (*irp).StackCount };
    if loc < 1 || loc > count {
        return;
    }
    // SAFETY: CurrentLocation is within the stack, so the current stack location is valid.
    let sl = unsafe { crate::irp::IoGetCurrentIrpStackLocation(irp) };
    // SAFETY: as above.
    let dev = unsafe { (*sl).DeviceObject } as usize;
    if let Some(drv) = g.driver_of(dev) {
        g.startio.cancel_registered.insert(drv);
    }
}

/// The deepest StartIo nesting seen on `dev` (StartIo frames of one thread, for rule C27).
/// Call from an emulated thread.
pub fn startio_max_depth(dev: PDEVICE_OBJECT) -> u32 {
    Cx::get()
        .lock()
        .drivers
        .startio_depth
        .get(&(dev as usize))
        .map_or(0, |&(_, max)| max)
}

/// The StartIo nesting depth on `dev` of the most recent entry or exit (0 when no StartIo runs).
/// Call from an emulated thread.
pub fn startio_current_depth(dev: PDEVICE_OBJECT) -> u32 {
    Cx::get()
        .lock()
        .drivers
        .startio_depth
        .get(&(dev as usize))
        .map_or(0, |&(cur, _)| cur)
}

// ---- raw field access ----

/// # Safety
/// `dev` must be a live device object.
unsafe fn startio_of(dev: PDEVICE_OBJECT) -> PDRIVER_STARTIO {
    // SAFETY: the caller guarantees `dev`; a device object's driver object outlives it.
    let drv = unsafe { (*dev).DriverObject };
    // SAFETY: as above.
    unsafe { (*drv).DriverStartIo }
}

fn device_queue_of(dev: PDEVICE_OBJECT) -> *mut KDEVICE_QUEUE {
    dev.wrapping_byte_add(std::mem::offset_of!(
        crate::ntdef::DEVICE_OBJECT,
        DeviceQueue
    ))
    .cast()
}

/// # Safety
/// `dev` must be a live device object.
unsafe fn set_current_irp(dev: PDEVICE_OBJECT, irp: PIRP) {
    // SAFETY: the caller guarantees `dev`.
    unsafe { (*dev).CurrentIrp = irp };
}

/// # Safety
/// `irp` must be a live IRP.
unsafe fn cancel_flag(irp: PIRP) -> bool {
    // SAFETY: the caller guarantees `irp`.
    unsafe { (*irp).Cancel != 0 }
}

// ---- checks ----

/// Rule C28: the driver of `dev` has no StartIo. Fatal; the caller never returns from it.
fn check_has_startio(cx: &Cx, dev: PDEVICE_OBJECT, routine: &str) -> bool {
    // SAFETY: the caller of the routine passes a live device object.
    if unsafe { startio_of(dev) }.is_some() {
        return true;
    }
    let mut g = cx.lock();
    let who = g.who(cx.me);
    g.report(
        Rule::NoStartIo,
        format!(
            "{routine}({:#x}): the device's driver has no DriverStartIo routine",
            dev as usize
        ),
        vec![who],
    );
    drop(cx.reschedule(g));
    false
}

/// Rule C27 (warning): IoStartNextPacket from inside this device's StartIo without
/// DeferredStartIo, so that StartIo recurses once per queued request (spec A.11.2).
fn check_recursion(cx: &Cx, dev: PDEVICE_OBJECT) {
    let mut g = cx.lock();
    let me = cx.me;
    let st = g.startio.dev(dev as usize);
    if st.deferred || st.warned || !st.frames.contains(&me) {
        return;
    }
    st.warned = true;
    let who = g.who(me);
    g.report(
        Rule::StartIoRecursion,
        format!(
            "StartIo of device {:#x} calls IoStartNextPacket without IoSetStartIoAttributes(DeferredStartIo = TRUE): StartIo recurses once per queued request",
            dev as usize
        ),
        vec![who],
    );
}

// ---- the machinery ----

/// Calls the driver's StartIo for `irp` at DISPATCH_LEVEL, tracking the nesting depth (C27).
fn call_startio(cx: &Cx, dev: PDEVICE_OBJECT, irp: PIRP) {
    // SAFETY: `dev` is a live device object (caller of the exported routine).
    let Some(startio) = (unsafe { startio_of(dev) }) else {
        check_has_startio(cx, dev, "StartIo call");
        return;
    };
    {
        let mut g = cx.lock();
        let me = cx.me;
        let st = g.startio.dev(dev as usize);
        st.frames.push(me);
        let depth = st.frames.iter().filter(|&&a| a == me).count() as u32;
        let d = g.drivers.startio_depth.entry(dev as usize).or_default();
        d.0 = depth;
        d.1 = d.1.max(depth);
        g.irp_event(irp as usize, me, format!("StartIo (nesting depth {depth})"));
        let limit = cx.m.config.max_startio_depth;
        if depth > limit {
            let who = g.who(me);
            let mut parties = vec![who];
            parties.extend(g.irp_history(irp as usize));
            g.report_as(
                Rule::StartIoRecursion,
                Severity::Fatal,
                format!(
                    "StartIo of device {:#x} nested {depth} deep (limit {limit}): the kernel stack overflows on Windows",
                    dev as usize
                ),
                parties,
            );
            drop(cx.reschedule(g));
            return;
        }
    }
    cx.point(Point::StartIoEntry, irp as usize);
    // SAFETY: the driver registered `startio` as its StartIo routine; it is called as its
    // contract says: at DISPATCH_LEVEL with the device and the IRP now current on it.
    call_checked(cx, "StartIo", DISPATCH_LEVEL, || unsafe {
        crate::abi::call_startio_fn(startio, dev, irp)
    });
    let mut g = cx.lock();
    let me = cx.me;
    let st = g.startio.dev(dev as usize);
    if let Some(pos) = st.frames.iter().rposition(|&a| a == me) {
        st.frames.remove(pos);
    }
    let depth = st.frames.iter().filter(|&&a| a == me).count() as u32;
    g.drivers.startio_depth.entry(dev as usize).or_default().0 = depth;
}

/// IopStartNextPacket(ByKey): makes the next queued IRP current and starts it (spec A.11.2
/// steps 1–4). The caller is at DISPATCH_LEVEL.
fn start_next_now(cx: &Cx, dev: PDEVICE_OBJECT, cancelable: bool, key: Option<ULONG>) {
    let cancel_irql = cancelable.then(acquire_cancel_lock);
    // SAFETY: `dev` is a live device object (caller of the exported routine).
    unsafe { set_current_irp(dev, std::ptr::null_mut()) };
    let q = device_queue_of(dev);
    // SAFETY: the device's queue was initialized by IoCreateDevice. An empty queue goes idle.
    let e = unsafe { device_queue::remove(q, key.map(|k| (k, KeyRule::WrkQuirk)), false) };
    if e.is_null() {
        if let Some(irql) = cancel_irql {
            IoReleaseCancelSpinLock(irql);
        }
        return;
    }
    let irp = IRP::from_device_queue_entry(e);
    // SAFETY: as above.
    unsafe { set_current_irp(dev, irp) };
    cx.lock()
        .irp_event(irp as usize, cx.me, "IoStartNextPacket: dequeued".into());
    if let Some(irql) = cancel_irql {
        if cx.lock().startio.dev(dev as usize).no_cancel {
            // spec A.11.3: NonCancelable clears the routine under the cancel lock.
            crate::cancel::exchange_cancel_routine(irp, None);
        }
        IoReleaseCancelSpinLock(irql);
    }
    call_startio(cx, dev, irp);
}

/// IopStartNextPacketByKeyEx: the deferral loop of DeferredStartIo devices (spec A.11.3).
fn start_next_deferred(cx: &Cx, dev: PDEVICE_OBJECT, cancelable: bool, key: Option<ULONG>) {
    let mut next = Deferred { cancelable, key };
    loop {
        {
            let mut g = cx.lock();
            let st = g.startio.dev(dev as usize);
            st.count += 1;
            if st.count > 1 {
                // Inside a start this loop is running (here or on another CPU): record the
                // request; the loop picks it up when the running StartIo returns.
                let cancelable = next.cancelable || st.pending.is_some_and(|p| p.cancelable);
                st.pending = Some(Deferred {
                    cancelable,
                    key: next.key,
                });
                st.count -= 1;
                return;
            }
            st.pending = None;
        }
        start_next_now(cx, dev, next.cancelable, next.key);
        let mut g = cx.lock();
        let st = g.startio.dev(dev as usize);
        st.count -= 1;
        match st.pending.take() {
            Some(p) if st.count == 0 => next = p,
            other => {
                st.pending = other;
                return;
            }
        }
    }
}

/// IoStartNextPacket and IoStartNextPacketByKey.
fn start_next(dev: PDEVICE_OBJECT, cancelable: BOOLEAN, key: Option<ULONG>) {
    let cx = Cx::get();
    if key.is_some() {
        cx.check_irql_at_most("IoStartNextPacketByKey", DISPATCH_LEVEL);
    } else {
        cx.check_irql_exactly("IoStartNextPacket", DISPATCH_LEVEL);
    }
    let routine = if key.is_some() {
        "IoStartNextPacketByKey"
    } else {
        "IoStartNextPacket"
    };
    if !check_has_startio(&cx, dev, routine) {
        return;
    }
    check_recursion(&cx, dev);
    // StartIo runs at DISPATCH_LEVEL on every path (spec A.11.1, F-5); a caller below it has
    // been reported (C19) or is the ByKey variant, documented as <= DISPATCH_LEVEL.
    let old = cx.irql();
    if old < DISPATCH_LEVEL {
        cx.set_irql(DISPATCH_LEVEL);
    }
    let deferred = cx.lock().startio.dev(dev as usize).deferred;
    if deferred {
        start_next_deferred(&cx, dev, cancelable != 0, key);
    } else {
        start_next_now(&cx, dev, cancelable != 0, key);
    }
    if old < DISPATCH_LEVEL {
        crate::irql::KeLowerIrql(old);
    }
}

// ---- the exported routines ----

/// Queues `irp` on `dev`'s device queue, or, if the device is idle, makes it the device's
/// `CurrentIrp` and calls the driver's StartIo with it at DISPATCH_LEVEL (spec A.11.1).
///
/// With `key`, the IRP is queued by that sort key. With `cancel`, the routine is stored in
/// `Irp->CancelRoutine` under the cancel spin lock (a plain store); the NonCancelable attribute
/// clears it again when the IRP is started at once; and if the IRP is queued with `Cancel`
/// already TRUE, `cancel` is called at once with the cancel lock held (`CancelIrql` =
/// DISPATCH_LEVEL) and must release it. IoStartPacket does not look at `Irp->Cancel` when the
/// device was idle: StartIo must. The caller should have marked the IRP pending and must not
/// touch it afterwards.
///
/// IRQL: <= DISPATCH_LEVEL (rule C19); the driver must have a StartIo (rule C28, fatal).
///
/// # Safety
/// `dev` must be a live device object, `irp` a live IRP routed to it, `key` NULL or valid for
/// a read.
#[allow(non_snake_case)]
pub unsafe fn IoStartPacket(
    dev: PDEVICE_OBJECT,
    irp: PIRP,
    key: *mut ULONG,
    cancel: PDRIVER_CANCEL,
) {
    let cx = Cx::get();
    cx.check_irql_at_most("IoStartPacket", DISPATCH_LEVEL);
    if !check_has_startio(&cx, dev, "IoStartPacket") {
        return;
    }
    // SAFETY: the caller guarantees `key` is NULL or readable.
    let key = (!key.is_null()).then(|| unsafe { key.read() });
    // Step 1: raise to DISPATCH_LEVEL.
    let old: KIRQL = cx.irql();
    cx.set_irql(old.max(DISPATCH_LEVEL));
    // Step 2: the routine goes in with a plain store under the cancel lock.
    let cancel_irql = cancel.map(|_| acquire_cancel_lock());
    if cancel.is_some() {
        // SAFETY: the caller guarantees a live IRP; the cancel lock is held.
        unsafe { (*irp).CancelRoutine = cancel };
        let mut g = cx.lock();
        if let Some(drv) = g.driver_of(dev as usize) {
            g.startio.cancel_registered.insert(drv);
        }
    }
    // Step 3: queue it (by key if given).
    let q = device_queue_of(dev);
    // SAFETY: the device's queue was initialized by IoCreateDevice; the IRP's device-queue
    // entry is free while the caller routes it.
    let inserted = unsafe { device_queue::insert(q, IRP::device_queue_entry_ptr(irp), key) };
    if !inserted {
        // Step 4: the device was idle: this IRP is current and starts now.
        // SAFETY: `dev` is live.
        unsafe { set_current_irp(dev, irp) };
        cx.lock().irp_event(
            irp as usize,
            cx.me,
            "IoStartPacket: device idle, starting".into(),
        );
        if let Some(irql) = cancel_irql {
            if cx.lock().startio.dev(dev as usize).no_cancel {
                crate::cancel::exchange_cancel_routine(irp, None);
            }
            // Back to DISPATCH_LEVEL, not to the caller's IRQL (spec A.11.1, F-5).
            IoReleaseCancelSpinLock(irql);
        }
        call_startio(&cx, dev, irp);
    } else {
        cx.lock().irp_event(
            irp as usize,
            cx.me,
            "IoStartPacket: device busy, queued".into(),
        );
        if let (Some(irql), Some(routine)) = (cancel_irql, cancel) {
            // SAFETY: the IRP is live and queued; its owner is this call until the lock goes.
            if unsafe { cancel_flag(irp) } {
                // Step 5: already cancelled: the cancel routine runs now, with the lock held.
                // SAFETY: as above.
                unsafe { (*irp).CancelIrql = irql };
                crate::cancel::exchange_cancel_routine(irp, None);
                cx.lock().irp_event(
                    irp as usize,
                    cx.me,
                    "IoStartPacket: already cancelled, calling the cancel routine".into(),
                );
                cx.point(Point::CancelRoutineEntry, irp as usize);
                // SAFETY: the routine was given for this IRP; it is called as a cancel routine
                // is: at DISPATCH_LEVEL with the cancel spin lock held.
                unsafe { crate::abi::call_cancel_fn(routine, dev, irp) };
                check_cancel_lock_released(&cx, irp);
            } else {
                IoReleaseCancelSpinLock(irql);
            }
        }
    }
    // Step 6.
    crate::irql::KeLowerIrql(old);
}

/// Rule C10 for the cancel routine IoStartPacket calls itself.
fn check_cancel_lock_released(cx: &Cx, irp: PIRP) {
    let mut g = cx.lock();
    if g.spin.cancel_lock_holder() == Some(cx.me) {
        let who = g.who(cx.me);
        let mut parties = vec![who];
        parties.extend(g.irp_history(irp as usize));
        g.report(
            Rule::CancelSpinLock,
            format!(
                "cancel routine for IRP {:#x} (called by IoStartPacket) returned still holding the cancel spin lock",
                irp as usize
            ),
            parties,
        );
    }
}

/// Clears `dev`'s `CurrentIrp` and starts the next queued IRP, if any: it becomes current and
/// the driver's StartIo is called with it at DISPATCH_LEVEL; an empty queue makes the device
/// idle. With `cancelable` (required whenever IoStartPacket was given a cancel routine) the
/// dequeue happens under the cancel spin lock, and the NonCancelable attribute clears the
/// IRP's cancel routine. With the DeferredStartIo attribute, a call made while this device is
/// already inside the deferral loop only records the request (spec A.11.3).
///
/// IRQL: DISPATCH_LEVEL (rule C19; a caller below it is raised for StartIo's sake); the driver
/// must have a StartIo (rule C28, fatal). Called from StartIo without DeferredStartIo: rule C27.
///
/// # Safety
/// `dev` must be a live device object.
#[allow(non_snake_case)]
pub unsafe fn IoStartNextPacket(dev: PDEVICE_OBJECT, cancelable: BOOLEAN) {
    start_next(dev, cancelable, None);
}

/// As [`IoStartNextPacket`], starting the first queued IRP whose sort key is >= `key` (the head
/// if there is none, or — WRK's quirk, spec A.10 — if the last one's key is <= `key`).
///
/// IRQL: <= DISPATCH_LEVEL (rule C19); StartIo still runs at DISPATCH_LEVEL. Rules C27, C28 as
/// [`IoStartNextPacket`].
///
/// # Safety
/// `dev` must be a live device object.
#[allow(non_snake_case)]
pub unsafe fn IoStartNextPacketByKey(dev: PDEVICE_OBJECT, cancelable: BOOLEAN, key: ULONG) {
    start_next(dev, cancelable, Some(key));
}

/// Sets StartIo attributes of `dev`; attributes are only ever added. `deferred_startio`: a
/// StartIo call that IoStartNextPacket would nest inside the device's running deferral loop
/// is deferred until it returns (nesting depth at most 2, spec A.11.3). `non_cancelable`: IRPs
/// handed to StartIo by IoStartPacket or IoStartNextPacket(Cancelable = TRUE) have their cancel
/// routine cleared. NonCancelable = FALSE before the driver registered any cancel routine is
/// rule C27b (warning, DDI StartIoCancel).
///
/// IRQL: any.
///
/// # Safety
/// `dev` must be a live device object.
#[allow(non_snake_case)]
pub unsafe fn IoSetStartIoAttributes(
    dev: PDEVICE_OBJECT,
    deferred_startio: BOOLEAN,
    non_cancelable: BOOLEAN,
) {
    let cx = Cx::get();
    let mut g = cx.lock();
    let st = g.startio.dev(dev as usize);
    st.deferred |= deferred_startio != 0;
    st.no_cancel |= non_cancelable != 0;
    if non_cancelable == 0 {
        let registered = g
            .driver_of(dev as usize)
            .is_some_and(|d| g.startio.cancel_registered.contains(&d));
        if !registered {
            let who = g.who(cx.me);
            g.report(
                Rule::StartIoCancel,
                format!(
                    "IoSetStartIoAttributes({:#x}, NonCancelable = FALSE) before the driver registered a cancel routine: a cancellation race (DDI StartIoCancel)",
                    dev as usize
                ),
                vec![who],
            );
        }
    }
}
