//! The StartIo machinery (spec A.11, D-31…D-34, rules C19, C27, C27b, C28), driven by a
//! synthetic StartIo driver fragment whose per-device state sits behind its device extension.

use std::sync::Mutex;

use ntsim::cancel::{IoCancelIrp, IoSetCancelRoutine};
use ntsim::complete::IoCompleteRequest;
use ntsim::device_queue::KeRemoveEntryDeviceQueue;
use ntsim::driver::{IoCreateDevice, load_driver};
use ntsim::irp::*;
use ntsim::irql::{KeGetCurrentIrql, KeLowerIrql, KeRaiseIrqlToDpcLevel, KfRaiseIrql};
use ntsim::ntdef::*;
use ntsim::spinlock::{IoAcquireCancelSpinLock, IoReleaseCancelSpinLock};
use ntsim::startio::*;
use ntsim::thread::SystemThread;
use ntsim::{Config, Kernel, Rule, Severity};

// ---- the synthetic driver ----

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Mode {
    /// StartIo completes the IRP at once and starts the next packet.
    Sync,
    /// StartIo leaves the IRP in service (the test completes it later).
    Hold,
}

/// What StartIo saw for one IRP.
#[derive(Clone, Debug)]
struct Seen {
    irp: usize,
    irql: KIRQL,
    cancel_routine_set: bool,
    cancel: bool,
    depth: u32,
    /// Who started it: "dispatch", "dpc", "cancel", … (set by the caller before it starts).
    ctx: &'static str,
}

#[derive(Debug)]
struct State {
    mode: Mode,
    /// In Sync mode this IRP is held anyway (the gate that keeps the device busy).
    gate: usize,
    /// The IRP StartIo left in service.
    held: usize,
    /// IRPs the first StartIo queues itself with IoStartPacket (at DISPATCH_LEVEL).
    feed: Vec<usize>,
    /// Cancelable argument of the IoStartNextPacket calls the driver makes.
    cancelable: u8,
    /// StartIo starts the next packet with IoStartNextPacketByKey(this key) if set.
    next_key: Option<u32>,
    seen: Vec<Seen>,
    ctx: &'static str,
    /// IRPs the cancel routine completed, with its CancelIrql and whether it found the IRP
    /// queued (KeRemoveEntryDeviceQueue) rather than current.
    cancelled: Vec<(usize, KIRQL, bool)>,
}

impl State {
    fn new(mode: Mode) -> State {
        State {
            mode,
            gate: 0,
            held: 0,
            feed: Vec::new(),
            cancelable: 0,
            next_key: None,
            seen: Vec::new(),
            ctx: "",
            cancelled: Vec::new(),
        }
    }
}

/// The state of `dev` (a leaked `Mutex<State>` whose address is in the device extension).
fn state(dev: PDEVICE_OBJECT) -> &'static Mutex<State> {
    // SAFETY: every device of this driver has an 8-byte extension holding the state pointer.
    let ext = unsafe { (*dev).DeviceExtension };
    // SAFETY: as above.
    let p = unsafe { ext.cast::<*const Mutex<State>>().read() };
    // SAFETY: the state is leaked, so it lives for the rest of the process.
    unsafe { &*p }
}

fn set_ctx(dev: PDEVICE_OBJECT, ctx: &'static str) {
    state(dev).lock().unwrap().ctx = ctx;
}

/// # Safety
/// `irp` must be a live IRP.
unsafe fn set_status(irp: PIRP, status: NTSTATUS) {
    // SAFETY: the caller guarantees a live IRP.
    unsafe { (*irp).IoStatus = IO_STATUS_BLOCK::new(status, 0) };
}

fn status(irp: PIRP) -> NTSTATUS {
    // SAFETY: the tests only ask about IRPs they have not freed yet.
    unsafe { (*irp).IoStatus }.status()
}

fn completed(irp: PIRP) -> bool {
    // SAFETY: as above.
    let (loc, count) = (unsafe { (*irp).CurrentLocation }, unsafe {
        (*irp).StackCount
    });
    loc == count + 2
}

fn cancel_routine_set(irp: PIRP) -> bool {
    // SAFETY: as above.
    unsafe { (*irp).CancelRoutine }.is_some()
}

fn current_irp(dev: PDEVICE_OBJECT) -> PIRP {
    // SAFETY: live device object.
    unsafe { (*dev).CurrentIrp }
}

fn device_busy(dev: PDEVICE_OBJECT) -> bool {
    // SAFETY: live device object.
    unsafe { (*dev).DeviceQueue.Busy != 0 }
}

/// Completes `irp` with `status`.
///
/// # Safety
/// The caller must own `irp` (its cancel routine already taken).
unsafe fn complete(irp: PIRP, st: NTSTATUS) {
    // SAFETY: forwarded caller contract.
    unsafe { set_status(irp, st) };
    // SAFETY: as above.
    unsafe { IoCompleteRequest(irp, 0) };
}

unsafe extern "system" fn start_io(dev: *mut DEVICE_OBJECT, irp: *mut IRP) {
    let irql = KeGetCurrentIrql();
    let depth = startio_current_depth(dev);
    // SAFETY: StartIo gets a live IRP.
    let cancel = unsafe { (*irp).Cancel } != 0;
    let (hold, feed, cancelable, next_key) = {
        let mut s = state(dev).lock().unwrap();
        let ctx = s.ctx;
        s.seen.push(Seen {
            irp: irp as usize,
            irql,
            cancel_routine_set: cancel_routine_set(irp),
            cancel,
            depth,
            ctx,
        });
        let hold = s.mode == Mode::Hold || s.gate == irp as usize;
        if hold {
            s.held = irp as usize;
        }
        (hold, std::mem::take(&mut s.feed), s.cancelable, s.next_key)
    };
    if hold {
        return;
    }
    for f in feed {
        // SAFETY: the test's fresh IRPs, routed to this device.
        unsafe { IoStartPacket(dev, f as PIRP, std::ptr::null_mut(), None) };
    }
    if cancel_routine_set(irp) {
        // spec A.11.4: claim the IRP from its cancel routine under the cancel lock.
        let mut old = 0;
        // SAFETY: `old` is writable.
        unsafe { IoAcquireCancelSpinLock(&mut old) };
        // SAFETY: live IRP, routed here.
        let mine = unsafe { IoSetCancelRoutine(irp, None) }.is_some();
        IoReleaseCancelSpinLock(old);
        if !mine {
            return;
        }
    }
    // SAFETY: StartIo owns the IRP now.
    unsafe { complete(irp, STATUS_SUCCESS) };
    set_ctx(dev, "startio");
    match next_key {
        // SAFETY: live device.
        None => unsafe { IoStartNextPacket(dev, cancelable) },
        // SAFETY: live device.
        Some(k) => unsafe { IoStartNextPacketByKey(dev, cancelable, k) },
    }
}

/// The cancel routine of spec A.11.4.
unsafe extern "system" fn cancel_routine(dev: *mut DEVICE_OBJECT, irp: *mut IRP) {
    // SAFETY: a cancel routine gets a live IRP.
    let cancel_irql = unsafe { (*irp).CancelIrql };
    let queued = irp != current_irp(dev);
    if queued {
        // SAFETY: live device object.
        let q = unsafe { &raw mut (*dev).DeviceQueue };
        // SAFETY: live queue and IRP; the IRP's entry is on this queue or on none.
        let removed = unsafe { KeRemoveEntryDeviceQueue(q, IRP::device_queue_entry_ptr(irp)) };
        assert_eq!(removed, 1, "a queued IRP is on the device queue");
        IoReleaseCancelSpinLock(cancel_irql);
    } else {
        {
            let mut s = state(dev).lock().unwrap();
            if s.held == irp as usize {
                s.held = 0;
            }
            s.ctx = "cancel";
        }
        // Stay at DISPATCH_LEVEL for IoStartNextPacket, then lower (spec A.11.4, pitfall P3).
        IoReleaseCancelSpinLock(DISPATCH_LEVEL);
        // SAFETY: live device.
        unsafe { IoStartNextPacket(dev, 1) };
        KeLowerIrql(cancel_irql);
    }
    state(dev)
        .lock()
        .unwrap()
        .cancelled
        .push((irp as usize, cancel_irql, queued));
    // SAFETY: the cancel routine owns the IRP.
    unsafe { complete(irp, STATUS_CANCELLED) };
}

unsafe extern "system" fn driver_entry(drv: *mut DRIVER_OBJECT, _reg: PUNICODE_STRING) -> NTSTATUS {
    // SAFETY: DriverEntry gets its fresh driver object.
    unsafe { (*drv).DriverStartIo = Some(start_io) };
    STATUS_SUCCESS
}

/// Loads the synthetic driver and creates one device with `mode`'s state.
fn make_device(mode: Mode) -> PDEVICE_OBJECT {
    let drv = load_driver("synthetic", Some(driver_entry)).expect("DriverEntry succeeds");
    let mut dev: PDEVICE_OBJECT = std::ptr::null_mut();
    // SAFETY: a loaded driver; an unnamed device with an 8-byte extension.
    let st = unsafe {
        IoCreateDevice(
            drv,
            8,
            std::ptr::null_mut(),
            FILE_DEVICE_UNKNOWN,
            0,
            0,
            &mut dev,
        )
    };
    assert_eq!(st, STATUS_SUCCESS);
    let p: *const Mutex<State> = Box::leak(Box::new(Mutex::new(State::new(mode))));
    // SAFETY: the extension is 8 bytes, pointer-aligned.
    let ext = unsafe { (*dev).DeviceExtension };
    // SAFETY: as above.
    unsafe { ext.cast::<*const Mutex<State>>().write(p) };
    dev
}

/// A fresh IRP with its stack location pointing at `dev`.
fn new_irp(dev: PDEVICE_OBJECT) -> PIRP {
    let irp = IoAllocateIrp(1, 0);
    // SAFETY: fresh IRP with one stack location.
    unsafe { IoSetNextIrpStackLocation(irp) };
    // SAFETY: the current stack location now exists.
    let sl = unsafe { IoGetCurrentIrpStackLocation(irp) };
    // SAFETY: as above.
    unsafe { (*sl).DeviceObject = dev };
    irp
}

fn start(dev: PDEVICE_OBJECT, irp: PIRP, key: Option<u32>, cancel: bool) {
    let mut k = key.unwrap_or(0);
    let kp: *mut u32 = if key.is_some() {
        &mut k
    } else {
        std::ptr::null_mut()
    };
    let routine: PDRIVER_CANCEL = if cancel { Some(cancel_routine) } else { None };
    // SAFETY: live device and IRP; the key outlives the call.
    unsafe { IoStartPacket(dev, irp, kp, routine) };
}

/// What a DPC or the hardware would do: complete the IRP in service (claiming it from its
/// cancel routine) and start the next packet, at DISPATCH_LEVEL.
fn finish_held(dev: PDEVICE_OBJECT, cancelable: u8, key: Option<u32>) -> PIRP {
    finish_held_as(dev, cancelable, key, "finish")
}

fn finish_held_as(
    dev: PDEVICE_OBJECT,
    cancelable: u8,
    key: Option<u32>,
    ctx: &'static str,
) -> PIRP {
    let old = KeRaiseIrqlToDpcLevel();
    let irp = {
        let mut s = state(dev).lock().unwrap();
        s.ctx = ctx;
        std::mem::replace(&mut s.held, 0) as PIRP
    };
    assert!(!irp.is_null(), "an IRP is in service");
    let mut c = 0;
    // SAFETY: `c` is writable.
    unsafe { IoAcquireCancelSpinLock(&mut c) };
    // SAFETY: live IRP in service on this device.
    unsafe { IoSetCancelRoutine(irp, None) };
    IoReleaseCancelSpinLock(c);
    // SAFETY: the in-service IRP is ours now.
    unsafe { complete(irp, STATUS_SUCCESS) };
    match key {
        // SAFETY: live device.
        None => unsafe { IoStartNextPacket(dev, cancelable) },
        // SAFETY: live device.
        Some(k) => unsafe { IoStartNextPacketByKey(dev, cancelable, k) },
    }
    KeLowerIrql(old);
    irp
}

fn seen(dev: PDEVICE_OBJECT) -> Vec<Seen> {
    state(dev).lock().unwrap().seen.clone()
}

fn free_all(irps: &[PIRP]) {
    for &i in irps {
        // SAFETY: completed IRPs from IoAllocateIrp, freed once.
        unsafe { IoFreeIrp(i) };
    }
}

fn set_attributes(dev: PDEVICE_OBJECT, deferred: bool, non_cancelable: bool) {
    // SAFETY: live device.
    unsafe { IoSetStartIoAttributes(dev, u8::from(deferred), u8::from(non_cancelable)) };
}

/// 1 gate IRP held in service, `n` IRPs queued behind it from PASSIVE_LEVEL, then the gate
/// completed and the next packet started as a DPC would. Returns (queued IRPs, what StartIo saw).
fn gated_workload(dev: PDEVICE_OBJECT, n: usize) -> (Vec<PIRP>, Vec<Seen>) {
    let gate = new_irp(dev);
    state(dev).lock().unwrap().gate = gate as usize;
    start(dev, gate, None, false);
    assert_eq!(current_irp(dev), gate);
    let irps: Vec<PIRP> = (0..n).map(|_| new_irp(dev)).collect();
    for &i in &irps {
        start(dev, i, None, false);
        assert!(!completed(i), "queued behind the gate");
    }
    finish_held(dev, 0, None);
    let s = seen(dev);
    assert!(completed(gate));
    free_all(&[gate]);
    (irps, s)
}

// ---- D-31, D-32, C27 ----

#[test]
fn d31_deferred_startio_completes_50_queued_irps_in_fifo_order_nesting_at_most_2() {
    let out = Kernel::new(Config::default()).run(|| {
        let dev = make_device(Mode::Sync);
        set_attributes(dev, true, true);
        let (irps, seen) = gated_workload(dev, 50);
        let order: Vec<usize> = seen[1..].iter().map(|s| s.irp).collect();
        let expected: Vec<usize> = irps.iter().map(|&i| i as usize).collect();
        assert_eq!(order, expected, "FIFO");
        assert!(
            irps.iter()
                .all(|&i| completed(i) && status(i) == STATUS_SUCCESS)
        );
        assert!(startio_max_depth(dev) <= 2);
        assert!(seen.iter().all(|s| s.irql == DISPATCH_LEVEL));
        assert!(current_irp(dev).is_null());
        assert!(!device_busy(dev));
        free_all(&irps);
        startio_max_depth(dev)
    });
    assert_eq!(out.expect_clean(), 1);
}

#[test]
fn deferred_startio_nests_exactly_twice_below_io_start_packet() {
    // spec A.11.3: IoStartPacket is outside the deferral counter, so the StartIo it calls may
    // run one nested StartIo; every deeper start is deferred and run iteratively.
    let out = Kernel::new(Config::default()).run(|| {
        let dev = make_device(Mode::Sync);
        set_attributes(dev, true, true);
        let first = new_irp(dev);
        let rest: Vec<PIRP> = (0..10).map(|_| new_irp(dev)).collect();
        state(dev).lock().unwrap().feed = rest.iter().map(|&i| i as usize).collect();
        start(dev, first, None, false);
        let seen = seen(dev);
        let order: Vec<usize> = seen.iter().map(|s| s.irp).collect();
        let mut expected = vec![first as usize];
        expected.extend(rest.iter().map(|&i| i as usize));
        assert_eq!(order, expected);
        let depths: Vec<u32> = seen.iter().map(|s| s.depth).collect();
        assert_eq!(depths[0], 1);
        assert!(depths[1..].iter().all(|&d| d == 2), "{depths:?}");
        assert!(completed(first) && rest.iter().all(|&i| completed(i)));
        assert!(!device_busy(dev));
        free_all(&[first]);
        free_all(&rest);
        startio_max_depth(dev)
    });
    assert_eq!(out.expect_clean(), 2);
}

#[test]
fn d32_without_deferred_startio_nesting_grows_to_50_and_c27_warns() {
    let config = Config {
        max_startio_depth: 64,
        ..Config::default()
    };
    let out = Kernel::new(config).run(|| {
        let dev = make_device(Mode::Sync);
        let (irps, seen) = gated_workload(dev, 50);
        let order: Vec<usize> = seen[1..].iter().map(|s| s.irp).collect();
        assert_eq!(order, irps.iter().map(|&i| i as usize).collect::<Vec<_>>());
        assert!(irps.iter().all(|&i| completed(i)));
        free_all(&irps);
        startio_max_depth(dev)
    });
    assert!(out.stop.is_none(), "{:?}", out.stop);
    assert_eq!(out.value, Some(50));
    let warnings = out.reports_of(Rule::StartIoRecursion);
    assert_eq!(
        warnings.len(),
        1,
        "one warning per device: {:?}",
        out.reports
    );
    assert_eq!(warnings[0].severity, Severity::Warning);
    assert_eq!(out.reports.len(), 1, "{:?}", out.reports);
}

#[test]
fn c27_startio_nesting_beyond_the_limit_is_fatal() {
    let out = Kernel::new(Config::default()).run(|| {
        let dev = make_device(Mode::Sync);
        gated_workload(dev, 20);
    });
    let stop = out.stop.expect("fatal stop");
    assert_eq!(stop.rule, Rule::StartIoRecursion);
    assert_eq!(stop.severity, Severity::Fatal);
    assert!(stop.message.contains("9 deep"), "{}", stop.message);
}

#[test]
fn c27_startio_that_does_not_start_the_next_packet_itself_is_clean() {
    // Starting the next packet from outside StartIo (as a DPC does) needs no attribute.
    let out = Kernel::new(Config::default()).run(|| {
        let dev = make_device(Mode::Hold);
        let irps: Vec<PIRP> = (0..3).map(|_| new_irp(dev)).collect();
        for &i in &irps {
            start(dev, i, None, false);
        }
        for _ in 0..3 {
            finish_held(dev, 0, None);
        }
        assert!(irps.iter().all(|&i| completed(i)));
        assert!(!device_busy(dev));
        free_all(&irps);
        startio_max_depth(dev)
    });
    assert_eq!(out.expect_clean(), 1);
}

// ---- D-33 ----

#[test]
fn d33_noncancelable_startio_gets_no_cancel_routine_and_cancel_waits_for_completion() {
    let out = Kernel::new(Config::default()).run(|| {
        let dev = make_device(Mode::Hold);
        set_attributes(dev, true, true);
        let a = new_irp(dev);
        let b = new_irp(dev);
        start(dev, a, None, true);
        start(dev, b, None, true);
        // The queued IRP keeps its cancel routine until it is dequeued.
        assert!(cancel_routine_set(b));
        // Cancelling the IRP in service has no effect: no routine to call.
        // SAFETY: live IRP.
        assert_eq!(unsafe { IoCancelIrp(a) }, 0);
        // SAFETY: live IRP.
        assert_eq!(unsafe { (*a).Cancel }, 1);
        assert!(!completed(a));
        assert_eq!(current_irp(dev), a);
        finish_held(dev, 1, None);
        assert!(completed(a));
        assert_eq!(status(a), STATUS_SUCCESS);
        finish_held(dev, 1, None);
        let seen = seen(dev);
        assert_eq!(seen.len(), 2);
        assert!(seen.iter().all(|s| !s.cancel_routine_set), "{seen:?}");
        assert!(!seen[0].cancel, "A was cancelled after StartIo took it");
        free_all(&[a, b]);
    });
    out.expect_clean();
}

// ---- D-34 ----

unsafe extern "system" fn dpc_routine(_dpc: *mut KDPC, context: PVOID, _a1: PVOID, _a2: PVOID) {
    let dev = context as PDEVICE_OBJECT;
    assert_eq!(KeGetCurrentIrql(), DISPATCH_LEVEL);
    finish_held_as(dev, 1, None, "dpc");
}

#[test]
fn d34_startio_runs_at_dispatch_from_dispatch_thread_dpc_and_cancel_routine() {
    let out = Kernel::new(Config::default()).run(|| {
        let dev = make_device(Mode::Hold);
        let irps: Vec<PIRP> = (0..4).map(|_| new_irp(dev)).collect();
        // From IoStartPacket in a dispatch thread, at PASSIVE_LEVEL.
        let (d, i0) = (dev as usize, irps[0] as usize);
        let t = SystemThread::spawn("dispatch", move || {
            set_ctx(d as PDEVICE_OBJECT, "dispatch");
            assert_eq!(KeGetCurrentIrql(), PASSIVE_LEVEL);
            start(d as PDEVICE_OBJECT, i0 as PIRP, None, true);
            assert_eq!(KeGetCurrentIrql(), PASSIVE_LEVEL);
        });
        t.join();
        for &i in &irps[1..] {
            start(dev, i, None, true);
        }
        // From IoStartNextPacket in a DPC.
        let mut dpc = Box::new(KDPC::zeroed());
        // SAFETY: the DPC lives until it has run (flushed below).
        unsafe { ntsim::dpc::KeInitializeDpc(&mut *dpc, Some(dpc_routine), dev.cast()) };
        // SAFETY: as above.
        unsafe {
            ntsim::dpc::KeInsertQueueDpc(&mut *dpc, std::ptr::null_mut(), std::ptr::null_mut())
        };
        ntsim::dpc::KeFlushQueuedDpcs();
        assert!(completed(irps[0]));
        assert_eq!(current_irp(dev), irps[1]);
        // From the cancel routine of the IRP in service.
        // SAFETY: live IRP.
        assert_eq!(unsafe { IoCancelIrp(irps[1]) }, 1);
        assert_eq!(KeGetCurrentIrql(), PASSIVE_LEVEL);
        assert!(completed(irps[1]));
        assert_eq!(status(irps[1]), STATUS_CANCELLED);
        assert_eq!(current_irp(dev), irps[2]);
        // StartIo completing synchronously and starting the next packet itself needs
        // DeferredStartIo (C27); cancel routines are registered by now (C27b).
        set_attributes(dev, true, false);
        state(dev).lock().unwrap().mode = Mode::Sync;
        finish_held(dev, 1, None);
        let seen = seen(dev);
        let ctx: Vec<&str> = seen.iter().map(|s| s.ctx).collect();
        assert_eq!(ctx, ["dispatch", "dpc", "cancel", "finish"]);
        assert!(seen.iter().all(|s| s.irql == DISPATCH_LEVEL), "{seen:?}");
        assert!(irps.iter().all(|&i| completed(i)));
        free_all(&irps);
    });
    out.expect_clean();
}

// ---- cancel paths ----

#[test]
fn cancel_routine_removes_a_queued_irp_from_the_device_queue() {
    let out = Kernel::new(Config::default()).run(|| {
        let dev = make_device(Mode::Hold);
        let irps: Vec<PIRP> = (0..3).map(|_| new_irp(dev)).collect();
        for &i in &irps {
            start(dev, i, None, true);
        }
        // SAFETY: live IRP.
        assert_eq!(unsafe { IoCancelIrp(irps[1]) }, 1);
        assert!(completed(irps[1]));
        assert_eq!(status(irps[1]), STATUS_CANCELLED);
        assert_eq!(
            state(dev).lock().unwrap().cancelled,
            [(irps[1] as usize, PASSIVE_LEVEL, true)]
        );
        assert_eq!(current_irp(dev), irps[0]);
        finish_held(dev, 1, None);
        assert_eq!(current_irp(dev), irps[2], "the cancelled IRP is skipped");
        finish_held(dev, 1, None);
        assert!(!device_busy(dev));
        let order: Vec<usize> = seen(dev).iter().map(|s| s.irp).collect();
        assert_eq!(order, [irps[0] as usize, irps[2] as usize]);
        free_all(&irps);
    });
    out.expect_clean();
}

#[test]
fn cancel_routine_of_the_current_irp_starts_the_next_packet() {
    let out = Kernel::new(Config::default()).run(|| {
        let dev = make_device(Mode::Hold);
        let (a, b) = (new_irp(dev), new_irp(dev));
        start(dev, a, None, true);
        start(dev, b, None, true);
        // SAFETY: live IRP.
        assert_eq!(unsafe { IoCancelIrp(a) }, 1);
        assert_eq!(status(a), STATUS_CANCELLED);
        assert_eq!(current_irp(dev), b);
        assert_eq!(
            state(dev).lock().unwrap().cancelled,
            [(a as usize, PASSIVE_LEVEL, false)]
        );
        finish_held(dev, 1, None);
        assert!(completed(b) && current_irp(dev).is_null() && !device_busy(dev));
        free_all(&[a, b]);
    });
    out.expect_clean();
}

#[test]
fn already_cancelled_irp_queued_on_busy_device_is_cancelled_at_once() {
    // spec A.11.1 step 5: the cancel function runs inside IoStartPacket with the cancel lock
    // held and CancelIrql = DISPATCH_LEVEL.
    let out = Kernel::new(Config::default()).run(|| {
        let dev = make_device(Mode::Hold);
        let (a, x) = (new_irp(dev), new_irp(dev));
        start(dev, a, None, true);
        // SAFETY: live IRP without a cancel routine: only the flag is set.
        assert_eq!(unsafe { IoCancelIrp(x) }, 0);
        start(dev, x, None, true);
        assert!(completed(x));
        assert_eq!(status(x), STATUS_CANCELLED);
        assert!(!cancel_routine_set(x));
        assert_eq!(
            state(dev).lock().unwrap().cancelled,
            [(x as usize, DISPATCH_LEVEL, true)]
        );
        assert_eq!(KeGetCurrentIrql(), PASSIVE_LEVEL);
        finish_held(dev, 1, None);
        assert!(current_irp(dev).is_null() && !device_busy(dev));
        assert_eq!(seen(dev).len(), 1);
        free_all(&[a, x]);
    });
    out.expect_clean();
}

#[test]
fn io_start_packet_on_idle_device_does_not_check_cancel() {
    // spec A.11.1 step 4: StartIo gets the cancelled IRP, its cancel routine set; StartIo must
    // look at Irp->Cancel itself.
    let out = Kernel::new(Config::default()).run(|| {
        let dev = make_device(Mode::Hold);
        let x = new_irp(dev);
        // SAFETY: live IRP without a cancel routine.
        assert_eq!(unsafe { IoCancelIrp(x) }, 0);
        start(dev, x, None, true);
        let s = seen(dev);
        assert_eq!(s.len(), 1);
        assert!(s[0].cancel && s[0].cancel_routine_set);
        assert!(!completed(x));
        finish_held(dev, 1, None);
        assert!(completed(x));
        free_all(&[x]);
    });
    out.expect_clean();
}

#[test]
fn noncancelable_clears_cancel_routine_of_irp_started_on_idle_device() {
    let out = Kernel::new(Config::default()).run(|| {
        let dev = make_device(Mode::Hold);
        set_attributes(dev, false, true);
        let x = new_irp(dev);
        start(dev, x, None, true);
        assert!(!seen(dev)[0].cancel_routine_set);
        // SAFETY: live IRP.
        assert_eq!(unsafe { IoCancelIrp(x) }, 0);
        finish_held(dev, 1, None);
        assert_eq!(status(x), STATUS_SUCCESS);
        free_all(&[x]);
    });
    out.expect_clean();
}

// ---- IoStartNextPacketByKey ----

#[test]
fn start_next_packet_by_key_picks_first_key_at_least_key_with_wrk_quirk() {
    let out = Kernel::new(Config::default()).run(|| {
        let dev = make_device(Mode::Hold);
        let a = new_irp(dev);
        start(dev, a, None, false);
        let (b, c, d) = (new_irp(dev), new_irp(dev), new_irp(dev));
        start(dev, b, Some(5), false);
        start(dev, c, Some(1), false);
        start(dev, d, Some(3), false);
        finish_held(dev, 0, Some(2));
        assert_eq!(current_irp(dev), d, "first key >= 2");
        finish_held(dev, 0, Some(6));
        assert_eq!(current_irp(dev), c, "none >= 6: the head");
        finish_held(dev, 0, Some(5));
        assert_eq!(current_irp(dev), b);
        finish_held(dev, 0, Some(0));
        assert!(current_irp(dev).is_null() && !device_busy(dev));
        free_all(&[a, b, c, d]);
    });
    out.expect_clean();
}

#[test]
fn start_next_packet_by_key_quirk_prefers_head_over_equal_tail() {
    let out = Kernel::new(Config::default()).run(|| {
        let dev = make_device(Mode::Hold);
        let a = new_irp(dev);
        start(dev, a, None, false);
        let (b, c) = (new_irp(dev), new_irp(dev));
        start(dev, b, Some(1), false);
        start(dev, c, Some(5), false);
        finish_held(dev, 0, Some(5));
        assert_eq!(current_irp(dev), b, "WRK: tail key <= Key gives the head");
        finish_held(dev, 0, None);
        finish_held(dev, 0, None);
        free_all(&[a, b, c]);
    });
    out.expect_clean();
}

#[test]
fn start_next_packet_by_key_on_deferred_device_uses_the_key() {
    let out = Kernel::new(Config::default()).run(|| {
        let dev = make_device(Mode::Hold);
        set_attributes(dev, true, true);
        let a = new_irp(dev);
        start(dev, a, None, false);
        let (b, c) = (new_irp(dev), new_irp(dev));
        start(dev, b, Some(1), false);
        start(dev, c, Some(7), false);
        finish_held(dev, 0, Some(4));
        assert_eq!(current_irp(dev), c);
        finish_held(dev, 0, None);
        finish_held(dev, 0, None);
        assert!(!device_busy(dev));
        free_all(&[a, b, c]);
    });
    out.expect_clean();
}

#[test]
fn deferred_start_next_packet_by_key_runs_later_with_its_key() {
    // spec A.11.3: a ByKey request deferred inside the loop keeps its key.
    let out = Kernel::new(Config::default()).run(|| {
        let dev = make_device(Mode::Sync);
        set_attributes(dev, true, true);
        let gate = new_irp(dev);
        {
            let mut s = state(dev).lock().unwrap();
            s.gate = gate as usize;
            s.next_key = Some(4);
        }
        start(dev, gate, None, false);
        let (k1, k5, k9) = (new_irp(dev), new_irp(dev), new_irp(dev));
        start(dev, k1, Some(1), false);
        start(dev, k5, Some(5), false);
        start(dev, k9, Some(9), false);
        finish_held(dev, 0, Some(4));
        let order: Vec<usize> = seen(dev)[1..].iter().map(|s| s.irp).collect();
        // Without the key the deferred starts would take the head: 5, 1, 9.
        assert_eq!(order, [k5 as usize, k9 as usize, k1 as usize]);
        assert!(!device_busy(dev));
        assert!(seen(dev).iter().all(|s| s.depth == 1));
        free_all(&[gate, k1, k5, k9]);
    });
    out.expect_clean();
}

// ---- C28 ----

fn make_device_without_startio() -> PDEVICE_OBJECT {
    let dev = make_device(Mode::Sync);
    // SAFETY: live device and driver object.
    let drv = unsafe { (*dev).DriverObject };
    // SAFETY: as above.
    unsafe { (*drv).DriverStartIo = None };
    dev
}

#[test]
fn c28_io_start_packet_without_startio_is_fatal() {
    let out = Kernel::new(Config::default()).run(|| {
        let dev = make_device_without_startio();
        start(dev, new_irp(dev), None, false);
    });
    assert_eq!(out.stop.expect("fatal").rule, Rule::NoStartIo);
}

#[test]
fn c28_io_start_next_packet_without_startio_is_fatal() {
    let out = Kernel::new(Config::default()).run(|| {
        let dev = make_device_without_startio();
        let old = KeRaiseIrqlToDpcLevel();
        // SAFETY: live device.
        unsafe { IoStartNextPacket(dev, 0) };
        KeLowerIrql(old);
    });
    assert_eq!(out.stop.expect("fatal").rule, Rule::NoStartIo);
}

// ---- C19 ----

#[test]
fn c19_io_start_next_packet_below_dispatch_is_a_violation_and_startio_stays_at_dispatch() {
    let out = Kernel::new(Config::default()).run(|| {
        let dev = make_device(Mode::Hold);
        let (a, b) = (new_irp(dev), new_irp(dev));
        start(dev, a, None, false);
        start(dev, b, None, false);
        state(dev).lock().unwrap().held = 0;
        // SAFETY: the IRP in service is ours.
        unsafe { complete(a, STATUS_SUCCESS) };
        // SAFETY: live device; called at PASSIVE_LEVEL on purpose.
        unsafe { IoStartNextPacket(dev, 0) };
        assert_eq!(KeGetCurrentIrql(), PASSIVE_LEVEL);
        assert!(seen(dev).iter().all(|s| s.irql == DISPATCH_LEVEL));
        finish_held(dev, 0, None);
        free_all(&[a, b]);
    });
    let r = out.reports_of(Rule::ApiIrql);
    assert_eq!(r.len(), 1, "{:?}", out.reports);
    assert!(r[0].message.contains("IoStartNextPacket"));
    assert_eq!(out.reports.len(), 1);
}

#[test]
fn c19_io_start_packet_above_dispatch_is_a_violation() {
    let out = Kernel::new(Config::default()).run(|| {
        let dev = make_device(Mode::Hold);
        let a = new_irp(dev);
        let old = KfRaiseIrql(HIGH_LEVEL);
        start(dev, a, None, false);
        KeLowerIrql(old);
    });
    let r = out.reports_of(Rule::ApiIrql);
    assert!(
        r.iter().any(|r| r.message.contains("IoStartPacket")),
        "{:?}",
        out.reports
    );
}

// ---- C27b ----

#[test]
fn c27b_cancelable_attribute_before_any_cancel_routine_warns() {
    let out = Kernel::new(Config::default()).run(|| {
        let dev = make_device(Mode::Hold);
        set_attributes(dev, true, false);
    });
    let r = out.reports_of(Rule::StartIoCancel);
    assert_eq!(r.len(), 1, "{:?}", out.reports);
    assert_eq!(r[0].rule.number(), "C27b");
}

#[test]
fn c27b_cancelable_attribute_after_io_start_packet_registered_a_cancel_routine_is_clean() {
    let out = Kernel::new(Config::default()).run(|| {
        let dev = make_device(Mode::Hold);
        let a = new_irp(dev);
        start(dev, a, None, true);
        set_attributes(dev, true, false);
        finish_held(dev, 1, None);
        free_all(&[a]);
    });
    out.expect_clean();
}

#[test]
fn c27b_cancelable_attribute_after_io_set_cancel_routine_is_clean() {
    let out = Kernel::new(Config::default()).run(|| {
        let dev = make_device(Mode::Hold);
        let a = new_irp(dev);
        // SAFETY: live IRP routed to the device.
        unsafe { IoSetCancelRoutine(a, Some(cancel_routine)) };
        // SAFETY: as above.
        unsafe { IoSetCancelRoutine(a, None) };
        set_attributes(dev, false, false);
        free_all(&[a]);
    });
    out.expect_clean();
}
