//! `wdm-csq` against hand-written baselines, on ntsim (virtual time, FIFO scheduling policy).
//!
//! - `queue`: [`CancelSafeQueue<Fifo>`] against a bare C-style `IoCsq` queue (raw `IoCsq*`
//!   calls and six hand-written callbacks, `tests/support/bare.rs`): insert + remove_next,
//!   insert + IoCancelIrp, and insert + removal by ticket against `IoCsqRemoveIrp` with a raw
//!   `IO_CSQ_IRP_CONTEXT`.
//! - `serialize`: requests with due time 0 (the handler completes them at once) sent through a
//!   device's dispatch routine to [`SerialWorker`], to the StartIo wrapper ([`StartIoQueue`]),
//!   and to a raw `IoStartPacket`/StartIo driver fragment (the baseline).
//! - `machine`: the start-up of an empty machine, which every measurement above excludes.
//!
//! Every measurement runs inside one `Kernel::run`: a fresh machine per criterion sample, set
//! up and warmed up (one untimed batch) before the clock starts; then batches of [`BATCH`]
//! requests, each timed only around the operations compared (IRP allocation, untimed
//! completion and freeing are outside). One criterion iteration is one request.
//!
//! After the criterion groups, the same subjects run once more with the counting allocator
//! and ntsim's pool counters switched on (memory per request), and one summary table prints
//! the ratios csq / baseline, with the times read from criterion's estimates of this run.
//! See `benches/README.md`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::RefCell;
use std::hint::black_box;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use ::csq::pinned_init::{InPlaceInit, pin_data, try_pin_init};
use ::csq::{
    CancelSafeQueue, DeviceConfig, DeviceHandler, DispatchLevel, DispatchStatus, DriverObject,
    Fifo, InService, Irp, IrpView, NtStatus, SerialHandler, SerialWorker, Service, StartIoHandler,
    StartIoQueue, Ticket,
};
use criterion::{BenchmarkId, Criterion, Throughput};
use ntsim::ntdef::*;
use support::RawIrp;
use support::bare::{BARE_QUEUE_SIZE, BareCsq, complete_with};

/// Requests per timed batch (and the depth the queues reach).
const BATCH: usize = 64;

/// The fake file object the requests are sent on.
const FILE: usize = 0xF11E;

// ---- the counting allocator ------------------------------------------------------------------

/// Forwards to the system allocator; while [`COUNTING`] is set, counts calls and bytes
/// requested (a `realloc` counts as one call of its new size).
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOC_CALLS: AtomicUsize = AtomicUsize::new(0);
static ALLOC_BYTES: AtomicUsize = AtomicUsize::new(0);

fn note(size: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        ALLOC_CALLS.fetch_add(1, Ordering::Relaxed);
        ALLOC_BYTES.fetch_add(size, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call to the system allocator with the caller's arguments; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded caller contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded caller contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded caller contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded caller contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// ---- measuring -------------------------------------------------------------------------------

/// What a subject's batches measured: host time of the compared operations and, in memory mode,
/// host allocations during them and the peak growth of ntsim's pool while the batch's requests
/// were all in flight.
#[derive(Default)]
struct Meter {
    memory: bool,
    started: Option<Instant>,
    time: Duration,
    requests: usize,
    alloc_calls: usize,
    alloc_bytes: usize,
    pool_before: usize,
    pool_peak: usize,
}

impl Meter {
    fn new(memory: bool) -> Meter {
        Meter {
            memory,
            ..Meter::default()
        }
    }

    /// Starts the clock for a batch of `n` requests.
    fn start(&mut self, n: usize) {
        self.requests += n;
        if self.memory {
            self.pool_before = ntsim::pool::pool_usage().1;
            ALLOC_CALLS.store(0, Ordering::SeqCst);
            ALLOC_BYTES.store(0, Ordering::SeqCst);
            COUNTING.store(true, Ordering::SeqCst);
        }
        self.started = Some(Instant::now());
    }

    /// The batch's requests are all in flight (queued, or served already).
    fn peak(&mut self) {
        if self.memory {
            COUNTING.store(false, Ordering::SeqCst);
            let grown = ntsim::pool::pool_usage().1.saturating_sub(self.pool_before);
            self.pool_peak = self.pool_peak.max(grown);
            COUNTING.store(true, Ordering::SeqCst);
        }
    }

    /// Stops the clock.
    fn stop(&mut self) {
        self.time += self.started.take().expect("started").elapsed();
        if self.memory {
            COUNTING.store(false, Ordering::SeqCst);
            self.alloc_calls += ALLOC_CALLS.load(Ordering::SeqCst);
            self.alloc_bytes += ALLOC_BYTES.load(Ordering::SeqCst);
        }
    }
}

/// One side of a comparison, living inside a machine.
trait Subject: Sized {
    /// Builds the queue, device or driver (not measured).
    fn setup() -> Self;
    /// Runs `n` requests through it, timing only the compared operations with `m`.
    fn batch(&self, n: usize, m: &mut Meter);
    /// Takes it down (not measured).
    fn teardown(self) {}
}

/// The machine every measurement runs in: two CPUs, virtual time, FIFO scheduling policy.
fn machine() -> ntsim::Kernel {
    ntsim::Kernel::new(ntsim::Config {
        cpus: 2,
        time: ntsim::clock::TimeMode::Virtual,
        policy: ntsim::sched::Policy::Fifo,
        ..ntsim::Config::default()
    })
}

/// Runs `requests` requests through a fresh `S` in one fresh machine, after one untimed
/// warm-up batch (first-use costs of ntsim's tables and of the host), and returns the meter.
fn run_in_machine<S: Subject + 'static>(requests: usize, memory: bool) -> Meter {
    machine()
        .run(move || {
            let s = S::setup();
            s.batch(BATCH, &mut Meter::new(false));
            let mut m = Meter::new(memory);
            let mut left = requests;
            while left > 0 {
                let n = left.min(BATCH);
                s.batch(n, &mut m);
                left -= n;
            }
            s.teardown();
            m
        })
        .expect_clean()
}

/// A criterion measurement of `S`: host time of `iters` requests.
fn timed<S: Subject + 'static>(iters: u64) -> Duration {
    run_in_machine::<S>(usize::try_from(iters).expect("iterations fit usize"), false).time
}

fn irps(n: usize, major: u8) -> Vec<RawIrp> {
    (0..n).map(|_| RawIrp::new(major, FILE)).collect()
}

/// Completes (untimed) the IRPs a removal gave back, and frees them.
fn finish_removed(removed: &[PIRP]) {
    for &irp in removed {
        complete_with(irp, STATUS_SUCCESS);
        // SAFETY: completed, allocated by IoAllocateIrp, not used afterwards.
        unsafe { ntsim::irp::IoFreeIrp(irp) };
    }
}

/// Checks (untimed) that every IRP was completed with `status`, and frees them.
fn free_completed(irps: &[RawIrp], status: NTSTATUS) {
    for r in irps {
        assert!(r.completed(), "every request was completed");
        assert_eq!(r.status(), status);
        r.free();
    }
}

// ---- queue: CancelSafeQueue -------------------------------------------------------------------

/// insert + remove_next through `CancelSafeQueue<Fifo>`.
struct CsqRemoveNext(Pin<Box<CancelSafeQueue<Fifo>>>);

impl Subject for CsqRemoveNext {
    fn setup() -> Self {
        CsqRemoveNext(Box::pin_init(CancelSafeQueue::new(Fifo)).expect("infallible"))
    }

    fn batch(&self, n: usize, m: &mut Meter) {
        let irps = irps(n, IRP_MJ_READ);
        let mut removed = Vec::with_capacity(n);
        m.start(n);
        for r in &irps {
            let _pending = self.0.insert(r.take(), ()).expect("FIFO accepts");
        }
        m.peak();
        for _ in 0..n {
            let irp = self.0.remove_next().expect("queued");
            removed.push(irp.into_raw().cast::<IRP>());
        }
        m.stop();
        finish_removed(&removed);
    }
}

/// insert + IoCancelIrp through `CancelSafeQueue<Fifo>` (the policy completes them with
/// STATUS_CANCELLED).
struct CsqCancel(Pin<Box<CancelSafeQueue<Fifo>>>);

impl Subject for CsqCancel {
    fn setup() -> Self {
        CsqCancel(Box::pin_init(CancelSafeQueue::new(Fifo)).expect("infallible"))
    }

    fn batch(&self, n: usize, m: &mut Meter) {
        let irps = irps(n, IRP_MJ_READ);
        m.start(n);
        for r in &irps {
            let _pending = self.0.insert(r.take(), ()).expect("FIFO accepts");
        }
        m.peak();
        for r in &irps {
            black_box(r.cancel());
        }
        m.stop();
        free_completed(&irps, STATUS_CANCELLED);
    }
}

/// insert_tracked + remove_tracked (by ticket) through `CancelSafeQueue<Fifo, BATCH>`.
struct CsqTracked {
    q: Pin<Box<CancelSafeQueue<Fifo, BATCH>>>,
    tickets: RefCell<Vec<Ticket>>,
}

impl Subject for CsqTracked {
    fn setup() -> Self {
        CsqTracked {
            q: Box::pin_init(CancelSafeQueue::new(Fifo)).expect("infallible"),
            tickets: RefCell::new(Vec::with_capacity(BATCH)),
        }
    }

    fn batch(&self, n: usize, m: &mut Meter) {
        let irps = irps(n, IRP_MJ_READ);
        let mut removed = Vec::with_capacity(n);
        let mut tickets = self.tickets.borrow_mut();
        m.start(n);
        for r in &irps {
            let (_pending, ticket) = self.q.insert_tracked(r.take(), ()).expect("a free slot");
            tickets.push(ticket);
        }
        m.peak();
        for ticket in tickets.drain(..) {
            let irp = self.q.remove_tracked(ticket).expect("still queued");
            removed.push(irp.into_raw().cast::<IRP>());
        }
        m.stop();
        finish_removed(&removed);
    }
}

// ---- queue: the bare IoCsq baseline ----------------------------------------------------------

/// insert + remove_next through the bare queue.
struct BareRemoveNext(BareCsq);

impl Subject for BareRemoveNext {
    fn setup() -> Self {
        BareRemoveNext(BareCsq::new())
    }

    fn batch(&self, n: usize, m: &mut Meter) {
        let irps = irps(n, IRP_MJ_READ);
        let mut removed = Vec::with_capacity(n);
        m.start(n);
        for r in &irps {
            // SAFETY: our fresh IRP, given to the queue untracked.
            black_box(unsafe { self.0.insert(r.ptr(), std::ptr::null_mut()) });
        }
        m.peak();
        for _ in 0..n {
            let irp = self.0.remove_next();
            assert!(!irp.is_null(), "queued");
            removed.push(irp);
        }
        m.stop();
        finish_removed(&removed);
    }
}

/// insert + IoCancelIrp through the bare queue (its CsqCompleteCanceledIrp completes them).
struct BareCancel(BareCsq);

impl Subject for BareCancel {
    fn setup() -> Self {
        BareCancel(BareCsq::new())
    }

    fn batch(&self, n: usize, m: &mut Meter) {
        let irps = irps(n, IRP_MJ_READ);
        m.start(n);
        for r in &irps {
            // SAFETY: our fresh IRP, given to the queue untracked.
            black_box(unsafe { self.0.insert(r.ptr(), std::ptr::null_mut()) });
        }
        m.peak();
        for r in &irps {
            black_box(r.cancel());
        }
        m.stop();
        free_completed(&irps, STATUS_CANCELLED);
    }
}

/// insert with a raw `IO_CSQ_IRP_CONTEXT` + `IoCsqRemoveIrp` through the bare queue.
struct BareTracked {
    q: BareCsq,
    contexts: Box<[IO_CSQ_IRP_CONTEXT; BATCH]>,
}

impl Subject for BareTracked {
    fn setup() -> Self {
        BareTracked {
            q: BareCsq::new(),
            // SAFETY: all-zero is a valid unused context (IoCsqInsertIrpEx initializes it).
            contexts: Box::new(unsafe { std::mem::zeroed() }),
        }
    }

    fn batch(&self, n: usize, m: &mut Meter) {
        let irps = irps(n, IRP_MJ_READ);
        let mut removed = Vec::with_capacity(n);
        let ctx = |i: usize| (&raw const self.contexts[i]).cast_mut();
        m.start(n);
        for (i, r) in irps.iter().enumerate() {
            // SAFETY: our fresh IRP; context `i` is unused until its IRP is removed below.
            black_box(unsafe { self.q.insert(r.ptr(), ctx(i)) });
        }
        m.peak();
        for i in 0..n {
            // SAFETY: context `i` was given to the insert above, on this queue.
            let irp = unsafe { self.q.remove(ctx(i)) };
            assert!(!irp.is_null(), "still queued");
            removed.push(irp);
        }
        m.stop();
        finish_removed(&removed);
    }
}

// ---- serialize: the three drivers ------------------------------------------------------------

/// Sends every IRP to the driver's device (its dispatch routine returns STATUS_PENDING).
fn send_all(driver: *mut DRIVER_OBJECT, irps: &[RawIrp]) {
    for &r in irps {
        let status = support::send(driver, r);
        debug_assert_eq!(status, STATUS_PENDING);
        black_box(status);
    }
}

fn serialize_batch(driver: *mut DRIVER_OBJECT, n: usize, m: &mut Meter, wait: impl Fn()) {
    let irps = irps(n, IRP_MJ_DEVICE_CONTROL);
    m.start(n);
    send_all(driver, &irps);
    m.peak();
    wait();
    m.stop();
    free_completed(&irps, STATUS_SUCCESS);
}

/// The worker's handler: due time 0, so every request completes when it enters service.
struct Due0;

impl SerialHandler for Due0 {
    fn start(&self, _request: &IrpView, _worker: usize) -> Service<'_> {
        Service::Complete(NtStatus::SUCCESS, 0)
    }
}

#[pin_data]
struct WorkerDevice {
    #[pin]
    worker: SerialWorker<Due0>,
}

impl DeviceHandler for WorkerDevice {
    fn device_control(&self, irp: Irp) -> DispatchStatus {
        match self.worker.insert(irp, ()) {
            Ok(pending) => pending.into(),
            Err(refused) => refused.complete().into(),
        }
    }
}

/// The worker device's extension, published by its DriverEntry (one machine at a time).
static WORKER_DEVICE: AtomicPtr<WorkerDevice> = AtomicPtr::new(std::ptr::null_mut());

fn config(name: &'static [u16]) -> DeviceConfig {
    DeviceConfig {
        name,
        symbolic_link: None,
        access: ::csq::DeviceAccess::SystemAndAdministrators,
        device_type: 0x22,
        characteristics: 0x100,
        exclusive: false,
        buffered_io: true,
    }
}

fn worker_init(driver: &DriverObject) -> Result<(), NtStatus> {
    let device = driver.create_device(
        &config(::csq::wstr!("\\Device\\BenchWorker")),
        try_pin_init!(WorkerDevice {
            worker <- SerialWorker::new(Due0, Fifo),
        }? NtStatus),
    )?;
    let ext: *const WorkerDevice = device.extension().get_ref();
    WORKER_DEVICE.store(ext.cast_mut(), Ordering::Release);
    Ok(())
}

::csq::driver_entry!(fn worker_entry = worker_init);

/// `SerialWorker` behind a device's dispatch routine; the batch ends when the worker drained.
struct Worker {
    driver: *mut DRIVER_OBJECT,
    device: &'static WorkerDevice,
}

impl Subject for Worker {
    fn setup() -> Self {
        let driver = ntsim::driver::load_driver("BenchWorker", Some(worker_entry)).expect("loads");
        let ext = WORKER_DEVICE.swap(std::ptr::null_mut(), Ordering::AcqRel);
        assert!(!ext.is_null(), "DriverEntry published the device");
        // SAFETY: the extension lives in the device until the driver is unloaded (teardown),
        // after the last use of this reference.
        let device = unsafe { &*ext };
        Worker { driver, device }
    }

    fn batch(&self, n: usize, m: &mut Meter) {
        serialize_batch(self.driver, n, m, || self.device.worker.drain());
    }

    fn teardown(self) {
        support::unload(self.driver);
    }
}

struct SioDevice {
    sio: StartIoQueue,
}

impl DeviceHandler for SioDevice {
    fn device_control(&self, irp: Irp) -> DispatchStatus {
        self.sio.start_packet(irp).into()
    }
}

impl StartIoHandler for SioDevice {
    fn start_io_queue(&self) -> &StartIoQueue {
        &self.sio
    }

    fn start_io(&self, request: InService<'_>, _level: DispatchLevel<'_>) {
        request.complete(NtStatus::SUCCESS, 0);
    }
}

fn sio_init(driver: &DriverObject) -> Result<(), NtStatus> {
    driver.create_startio_device(
        &config(::csq::wstr!("\\Device\\BenchStartIo")),
        SioDevice {
            sio: StartIoQueue::new(),
        },
    )?;
    Ok(())
}

::csq::driver_entry!(fn sio_entry = sio_init);

/// The StartIo wrapper: a due-0 request sent to the idle device is served inside
/// IoStartPacket, so the batch is done when the last send returns.
struct WrappedStartIo(*mut DRIVER_OBJECT);

impl Subject for WrappedStartIo {
    fn setup() -> Self {
        WrappedStartIo(ntsim::driver::load_driver("BenchStartIo", Some(sio_entry)).expect("loads"))
    }

    fn batch(&self, n: usize, m: &mut Meter) {
        serialize_batch(self.0, n, m, || ());
    }

    fn teardown(self) {
        support::unload(self.0);
    }
}

// The raw driver fragment: what a WDM driver writes by hand with IoStartPacket (spec A.11).

unsafe extern "system" fn raw_dispatch(dev: PDEVICE_OBJECT, irp: PIRP) -> NTSTATUS {
    // SAFETY: the IRP was routed to us; spec A.11.1: mark pending before IoStartPacket.
    unsafe { ntsim::irp::IoMarkIrpPending(irp) };
    // SAFETY: our device and IRP; no key.
    unsafe { ntsim::startio::IoStartPacket(dev, irp, std::ptr::null_mut(), Some(raw_cancel)) };
    STATUS_PENDING
}

unsafe extern "system" fn raw_start_io(dev: PDEVICE_OBJECT, irp: PIRP) {
    // SAFETY: our device, whose extension is 8 bytes; StartIo calls are serialized.
    let attributes_set = unsafe { (*dev).DeviceExtension }.cast::<u8>();
    // SAFETY: as above.
    if unsafe { attributes_set.read() } == 0 {
        // SAFETY: as above.
        unsafe { attributes_set.write(1) };
        // DeferredStartIo (spec A.11.3), set as the wrapper does: in the first StartIo, after
        // IoStartPacket registered the cancel routine (earlier is rule C27b).
        // SAFETY: our device.
        unsafe { ntsim::startio::IoSetStartIoAttributes(dev, 1, 0) };
    }
    let mut old = 0;
    // SAFETY: `old` is writable.
    unsafe { ntsim::spinlock::IoAcquireCancelSpinLock(&mut old) };
    // Spec A.11.4: take the cancel routine back under the cancel lock; if it is gone, the
    // cancel routine owns the IRP and starts the next packet itself.
    // SAFETY: the current IRP of our device.
    let mine = unsafe { ntsim::cancel::IoSetCancelRoutine(irp, None) }.is_some();
    ntsim::spinlock::IoReleaseCancelSpinLock(old);
    if !mine {
        return;
    }
    // SAFETY: ours now (we took the routine).
    let cancelled = unsafe { (*irp).Cancel } != 0;
    complete_with(
        irp,
        if cancelled {
            STATUS_CANCELLED
        } else {
            STATUS_SUCCESS
        },
    );
    // SAFETY: our device, at DISPATCH_LEVEL inside StartIo.
    unsafe { ntsim::startio::IoStartNextPacket(dev, 1) };
}

unsafe extern "system" fn raw_cancel(dev: PDEVICE_OBJECT, irp: PIRP) {
    // SAFETY: a cancel routine gets a live IRP and the cancel lock.
    let cancel_irql = unsafe { (*irp).CancelIrql };
    // SAFETY: our live device.
    if irp == unsafe { (*dev).CurrentIrp } {
        // Spec A.11.4 (P3): release the lock but stay at DISPATCH_LEVEL to start the next one.
        ntsim::spinlock::IoReleaseCancelSpinLock(DISPATCH_LEVEL);
        complete_with(irp, STATUS_CANCELLED);
        // SAFETY: our device, at DISPATCH_LEVEL.
        unsafe { ntsim::startio::IoStartNextPacket(dev, 1) };
        ntsim::irql::KeLowerIrql(cancel_irql);
    } else {
        // SAFETY: our device's queue.
        let q = unsafe { &raw mut (*dev).DeviceQueue };
        // SAFETY: a queued IRP of that queue, under the cancel lock.
        unsafe {
            ntsim::device_queue::KeRemoveEntryDeviceQueue(q, IRP::device_queue_entry_ptr(irp))
        };
        ntsim::spinlock::IoReleaseCancelSpinLock(cancel_irql);
        complete_with(irp, STATUS_CANCELLED);
    }
}

unsafe extern "system" fn raw_unload(drv: PDRIVER_OBJECT) {
    // SAFETY: our driver object.
    let dev = unsafe { (*drv).DeviceObject };
    // SAFETY: the driver's one device, idle.
    unsafe { ntsim::driver::IoDeleteDevice(dev) };
}

unsafe extern "system" fn raw_entry(drv: PDRIVER_OBJECT, _reg: PUNICODE_STRING) -> NTSTATUS {
    // SAFETY: DriverEntry owns its fresh driver object.
    unsafe { (*drv).MajorFunction[IRP_MJ_DEVICE_CONTROL as usize] = Some(raw_dispatch) };
    // SAFETY: as above.
    unsafe { (*drv).DriverStartIo = Some(raw_start_io) };
    // SAFETY: as above.
    unsafe { (*drv).DriverUnload = Some(raw_unload) };
    let mut dev: PDEVICE_OBJECT = std::ptr::null_mut();
    // SAFETY: an unnamed device with an 8-byte (zeroed) extension.
    let st = unsafe {
        ntsim::driver::IoCreateDevice(drv, 8, std::ptr::null_mut(), 0x22, 0, 0, &mut dev)
    };
    // The extension's first byte says whether the StartIo attributes were set (below).
    st
}

/// The raw IoStartPacket/StartIo driver fragment: served inside IoStartPacket too.
struct RawStartIo(*mut DRIVER_OBJECT);

impl Subject for RawStartIo {
    fn setup() -> Self {
        RawStartIo(ntsim::driver::load_driver("BenchRaw", Some(raw_entry)).expect("loads"))
    }

    fn batch(&self, n: usize, m: &mut Meter) {
        serialize_batch(self.0, n, m, || ());
    }

    fn teardown(self) {
        support::unload(self.0);
    }
}

// ---- criterion groups ------------------------------------------------------------------------

fn bench_queue(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new("insert_remove", "csq"), |b| {
        b.iter_custom(timed::<CsqRemoveNext>)
    });
    g.bench_function(BenchmarkId::new("insert_remove", "bare"), |b| {
        b.iter_custom(timed::<BareRemoveNext>)
    });
    g.bench_function(BenchmarkId::new("insert_cancel", "csq"), |b| {
        b.iter_custom(timed::<CsqCancel>)
    });
    g.bench_function(BenchmarkId::new("insert_cancel", "bare"), |b| {
        b.iter_custom(timed::<BareCancel>)
    });
    g.bench_function(BenchmarkId::new("tracked", "csq"), |b| {
        b.iter_custom(timed::<CsqTracked>)
    });
    g.bench_function(BenchmarkId::new("tracked", "bare"), |b| {
        b.iter_custom(timed::<BareTracked>)
    });
    g.finish();
}

fn bench_serialize(c: &mut Criterion) {
    let mut g = c.benchmark_group("serialize");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new("due0", "worker"), |b| {
        b.iter_custom(timed::<Worker>)
    });
    g.bench_function(BenchmarkId::new("due0", "startio"), |b| {
        b.iter_custom(timed::<WrappedStartIo>)
    });
    g.bench_function(BenchmarkId::new("due0", "raw"), |b| {
        b.iter_custom(timed::<RawStartIo>)
    });
    g.finish();
}

fn bench_machine(c: &mut Criterion) {
    let mut g = c.benchmark_group("machine");
    g.sample_size(10);
    g.bench_function("start-up", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                machine().run(|| ()).expect_clean();
            }
            t.elapsed()
        })
    });
    g.finish();
}

// ---- memory and the summary ------------------------------------------------------------------

/// Memory per request of one subject: host allocation calls and bytes, and ntsim pool bytes at
/// the batch's peak.
struct Memory {
    calls: f64,
    bytes: f64,
    pool: f64,
}

/// Measures one subject's [`Memory`].
type MemoryOf = fn() -> Memory;

fn memory<S: Subject + 'static>() -> Memory {
    let m = run_in_machine::<S>(BATCH, true);
    let n = m.requests as f64;
    Memory {
        calls: m.alloc_calls as f64 / n,
        bytes: m.alloc_bytes as f64 / n,
        pool: m.pool_peak as f64 / n,
    }
}

/// Where criterion wrote its estimates (its own rule: `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else the target directory this binary was built in).
fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    // <target>/<profile>/deps/<this binary>
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("criterion")))
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// Criterion's median time per iteration (one request), in ns, if the benchmark ran in this
/// invocation (its estimates file is newer than `since`).
fn median_ns(id: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_home().join(id).join("new/estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn fmt_opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "not run".to_owned(), f)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".to_owned(),
    }
}

/// Rounds of the interleaved comparison.
const ROUNDS: usize = 21;
/// Requests per subject and round (one machine each).
const ROUND_REQUESTS: usize = 16 * BATCH;

/// The ratio csq / baseline of host time per request, measured in [`ROUNDS`] interleaved rounds
/// (csq first in even rounds, the baseline first in odd ones, one fresh machine each), so that
/// both see the same background load: the median and the range of the per-round ratios.
struct Paired {
    median: f64,
    min: f64,
    max: f64,
}

/// Measures one comparison's [`Paired`] ratio.
type PairedOf = fn() -> Paired;

fn paired<A: Subject + 'static, B: Subject + 'static>() -> Paired {
    let mut ratios: Vec<f64> = (0..ROUNDS)
        .map(|round| {
            let (a, b) = if round % 2 == 0 {
                let a = run_in_machine::<A>(ROUND_REQUESTS, false).time;
                (a, run_in_machine::<B>(ROUND_REQUESTS, false).time)
            } else {
                let b = run_in_machine::<B>(ROUND_REQUESTS, false).time;
                (run_in_machine::<A>(ROUND_REQUESTS, false).time, b)
            };
            a.as_secs_f64() / b.as_secs_f64()
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    Paired {
        median: ratios[ROUNDS / 2],
        min: ratios[0],
        max: ratios[ROUNDS - 1],
    }
}

/// One comparison of the summary.
struct Row {
    name: &'static str,
    ours: &'static str,
    base: &'static str,
    paired: PairedOf,
    memory: (MemoryOf, MemoryOf),
}

const ROWS: [Row; 5] = [
    Row {
        name: "queue insert+remove_next",
        ours: "queue/insert_remove/csq",
        base: "queue/insert_remove/bare",
        paired: paired::<CsqRemoveNext, BareRemoveNext>,
        memory: (memory::<CsqRemoveNext>, memory::<BareRemoveNext>),
    },
    Row {
        name: "queue insert+IoCancelIrp",
        ours: "queue/insert_cancel/csq",
        base: "queue/insert_cancel/bare",
        paired: paired::<CsqCancel, BareCancel>,
        memory: (memory::<CsqCancel>, memory::<BareCancel>),
    },
    Row {
        name: "queue tracked: ticket/RemoveIrp",
        ours: "queue/tracked/csq",
        base: "queue/tracked/bare",
        paired: paired::<CsqTracked, BareTracked>,
        memory: (memory::<CsqTracked>, memory::<BareTracked>),
    },
    Row {
        name: "serialize due 0: SerialWorker/raw",
        ours: "serialize/due0/worker",
        base: "serialize/due0/raw",
        paired: paired::<Worker, RawStartIo>,
        memory: (memory::<Worker>, memory::<RawStartIo>),
    },
    Row {
        name: "serialize due 0: StartIo wrap/raw",
        ours: "serialize/due0/startio",
        base: "serialize/due0/raw",
        paired: paired::<WrappedStartIo, RawStartIo>,
        memory: (memory::<WrappedStartIo>, memory::<RawStartIo>),
    },
];

fn summary(since: SystemTime) {
    println!();
    println!("== Summary: csq / baseline, this run ==");
    println!();
    println!(
        "host time per request: criterion medians (ns, req/s), their ratio, and the paired ratio"
    );
    println!("of {ROUNDS} interleaved rounds of {ROUND_REQUESTS} requests each (median [min-max])");
    println!(
        "{:<34} {:>8} {:>8} {:>9} {:>6} {:>19}",
        "", "csq ns", "base ns", "csq req/s", "ratio", "paired ratio"
    );
    for row in &ROWS {
        let (a, b) = (median_ns(row.ours, since), median_ns(row.base, since));
        let p = (row.paired)();
        println!(
            "{:<34} {:>8} {:>8} {:>9} {:>6} {:>19}",
            row.name,
            fmt_opt(a, |v| format!("{v:.0}")),
            fmt_opt(b, |v| format!("{v:.0}")),
            fmt_opt(a, |v| format!("{:.0}", 1e9 / v)),
            ratio(a, b),
            format!("{:.2} [{:.2}-{:.2}]", p.median, p.min, p.max),
        );
    }
    let startup = median_ns("machine/start-up", since);
    println!(
        "(machine start-up, excluded above: {})",
        fmt_opt(startup, |v| format!("{:.0} µs", v / 1e3))
    );

    println!();
    println!(
        "{:<34} {:>9} {:>9} {:>6} {:>11} {:>11} {:>12}",
        "host memory per request",
        "csq B",
        "base B",
        "ratio",
        "csq allocs",
        "base allocs",
        "pool B c/b"
    );
    for row in &ROWS {
        let (a, b) = (row.memory.0(), row.memory.1());
        println!(
            "{:<34} {:>9.0} {:>9.0} {:>6} {:>11.2} {:>11.2} {:>12}",
            row.name,
            a.bytes,
            b.bytes,
            ratio(Some(a.bytes), Some(b.bytes)),
            a.calls,
            b.calls,
            format!("{:.0}/{:.0}", a.pool, b.pool),
        );
    }
    println!(
        "(host bytes requested and allocation calls made during the compared operations: all of"
    );
    println!(
        " it is ntsim's own bookkeeping, csq cannot allocate; pool B c/b = ntsim pool growth per"
    );
    println!(" request in flight, csq/baseline)");

    println!();
    println!(
        "{:<34} {:>10} {:>10}",
        "in-place size (bytes)", "csq", "baseline"
    );
    let ctx = std::mem::size_of::<IO_CSQ_IRP_CONTEXT>();
    let sizes = [
        (
            "queue (CancelSafeQueue<Fifo>)",
            std::mem::size_of::<CancelSafeQueue<Fifo>>(),
            BARE_QUEUE_SIZE,
        ),
        (
            "queue tracking 64 IRPs",
            std::mem::size_of::<CancelSafeQueue<Fifo, BATCH>>(),
            BARE_QUEUE_SIZE + BATCH * ctx,
        ),
        (
            "SerialWorker<Due0> / raw StartIo",
            std::mem::size_of::<SerialWorker<Due0>>(),
            0,
        ),
        (
            "StartIoQueue / raw StartIo",
            std::mem::size_of::<StartIoQueue>(),
            0,
        ),
    ];
    for (name, ours, base) in sizes {
        println!("{name:<34} {ours:>10} {base:>10}");
    }
    println!(
        "(the SerialWorker also has one system thread; the StartIo paths use the device queue"
    );
    println!(" inside DEVICE_OBJECT, which every device has)");
}

fn main() {
    let since = SystemTime::now();
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench_queue(&mut c);
    bench_serialize(&mut c);
    bench_machine(&mut c);
    c.final_summary();
    summary(since);
}
