//! A small test driver for the I/O manager tests: one device, `\Device\TestDev` with the link
//! `\DosDevices\TestDev`, whose IOCTLs exercise every user-visible path (synchronous success and
//! error, pending, pending-returned error, cancelable queueing, event registration with a timer,
//! the dispatch-return mistakes of rule C7), a per-file-object remove lock for cleanup rundown
//! (the WDS samples' pattern), and knobs for unload mistakes.

#![allow(dead_code)]

use ntsim::driver::{IoCreateDevice, IoCreateSymbolicLink, IoDeleteDevice, IoDeleteSymbolicLink};
use ntsim::driver::{OwnedUnicodeString, load_driver};
use ntsim::irp::{IoGetCurrentIrpStackLocation, IoMarkIrpPending};
use ntsim::ntdef::*;
use ntsim::remove_lock::*;
use ntsim::spinlock::{IoReleaseCancelSpinLock, KeAcquireSpinLock, KeReleaseSpinLock};

pub const fn ioctl(function: u32) -> u32 {
    CTL_CODE(
        FILE_DEVICE_UNKNOWN,
        function,
        METHOD_BUFFERED,
        FILE_ANY_ACCESS,
    )
}

/// Copies the input to the output; Information = bytes copied.
pub const IOCTL_ECHO: u32 = ioctl(0x800);
/// Completes with STATUS_INVALID_PARAMETER at once (not pending).
pub const IOCTL_FAIL: u32 = ioctl(0x801);
/// Queues the IRP, cancelable, and returns STATUS_PENDING.
pub const IOCTL_PEND: u32 = ioctl(0x802);
/// Completes every queued IRP with STATUS_SUCCESS (Information = 4).
pub const IOCTL_COMPLETE_ALL: u32 = ioctl(0x803);
/// Marks pending, completes with STATUS_INVALID_PARAMETER, returns STATUS_PENDING.
pub const IOCTL_PEND_FAIL: u32 = ioctl(0x804);
/// Input {event handle: u64, due time: i64}: references the event (user mode, event type) and
/// signals it at the due time; completes at once.
pub const IOCTL_EVENT: u32 = ioctl(0x805);
/// Marks pending and keeps the IRP without a cancel routine (cancel is never honoured).
pub const IOCTL_PEND_NO_CANCEL: u32 = ioctl(0x806);
/// Like IOCTL_PEND, but sleeps 100 ms inside the remove lock first (spec D-23).
pub const IOCTL_DELAY_PEND: u32 = ioctl(0x807);
/// Allocates a pool block tagged 'Leak' and forgets it.
pub const IOCTL_LEAK_POOL: u32 = ioctl(0x808);
/// Starts a system thread that runs until the driver unloads (if the unload stops it).
pub const IOCTL_START_THREAD: u32 = ioctl(0x809);
/// Arms the device's timer for 10 s.
pub const IOCTL_ARM_TIMER: u32 = ioctl(0x80A);
/// C7 mistakes.
pub const IOCTL_PENDING_UNMARKED: u32 = ioctl(0x810);
pub const IOCTL_MARKED_RETURNS_SUCCESS: u32 = ioctl(0x811);
pub const IOCTL_RETURNS_OTHER_STATUS: u32 = ioctl(0x812);
pub const IOCTL_NOT_COMPLETED: u32 = ioctl(0x813);
pub const IOCTL_RETURNS_FFFFFFFF: u32 = ioctl(0x814);

pub const NAME: &str = r"\\.\TestDev";

/// What the driver saw and what it is told to do.
#[derive(Debug, Default)]
pub struct State {
    /// Queued cancelable IRPs: (IRP, file object).
    pub queue: Vec<(usize, usize)>,
    /// IRPs held without a cancel routine.
    pub held: Vec<usize>,
    /// (major function, interrupt time, file object) of every CREATE/CLEANUP/CLOSE.
    pub log: Vec<(u8, u64, usize)>,
    /// The referenced user event of the pending registration, and its file object.
    pub event: usize,
    pub event_file: usize,
    /// Status IRP_MJ_CREATE completes with.
    pub create_status: NTSTATUS,
    /// Unload leaves the timer armed / the thread running / the device and link in place.
    pub unload_leaves_timer: bool,
    pub unload_leaves_thread: bool,
    pub unload_leaves_device: bool,
    /// The thread's stop flag and object.
    pub stop: bool,
    pub thread: usize,
}

#[repr(C)]
pub struct Ext {
    pub lock: KSPIN_LOCK,
    pub state: *mut State,
    pub timer: KTIMER,
    pub dpc: KDPC,
    pub thread_stop: KEVENT,
}

/// Per-file-object context (FsContext): the remove lock of the WDS samples.
#[repr(C)]
struct FileCtx {
    remlock: IO_REMOVE_LOCK,
}

fn irp_mut(irp: PIRP) -> &'static mut IRP {
    // SAFETY: the driver only gets live IRPs.
    unsafe { &mut *irp }
}

fn sl(irp: PIRP) -> &'static mut IO_STACK_LOCATION {
    // SAFETY: a live IRP routed to this driver has a current stack location.
    let p = unsafe { IoGetCurrentIrpStackLocation(irp) };
    // SAFETY: as above.
    unsafe { &mut *p }
}

pub fn ext(dev: PDEVICE_OBJECT) -> &'static mut Ext {
    // SAFETY: the device is live and its extension is an Ext.
    let p = unsafe { (*dev).DeviceExtension };
    // SAFETY: as above.
    unsafe { &mut *p.cast::<Ext>() }
}

pub fn state(dev: PDEVICE_OBJECT) -> &'static mut State {
    // SAFETY: the state is leaked at DriverEntry and never freed.
    unsafe { &mut *ext(dev).state }
}

/// The driver's device.
pub fn device(drv: PDRIVER_OBJECT) -> PDEVICE_OBJECT {
    // SAFETY: a loaded driver object.
    unsafe { (*drv).DeviceObject }
}

fn complete(irp: PIRP, status: NTSTATUS, info: usize) -> NTSTATUS {
    let r = irp_mut(irp);
    r.IoStatus.u.Status = status;
    r.IoStatus.Information = info;
    // SAFETY: the driver owns the IRP.
    unsafe { ntsim::complete::IoCompleteRequest(irp, 0) };
    status
}

fn lock(dev: PDEVICE_OBJECT) -> KIRQL {
    let mut old = 0;
    // SAFETY: the extension's spin lock, initialized at DriverEntry.
    unsafe { KeAcquireSpinLock(&raw mut ext(dev).lock, &mut old) };
    old
}

fn unlock(dev: PDEVICE_OBJECT, old: KIRQL) {
    // SAFETY: held by this thread.
    unsafe { KeReleaseSpinLock(&raw mut ext(dev).lock, old) };
}

unsafe extern "system" fn cancel_routine(dev: PDEVICE_OBJECT, irp: PIRP) {
    IoReleaseCancelSpinLock(irp_mut(irp).CancelIrql);
    let old = lock(dev);
    state(dev).queue.retain(|&(i, _)| i != irp as usize);
    unlock(dev, old);
    complete(irp, STATUS_CANCELLED, 0);
}

/// Queues `irp` cancelable; with `mark`, marks it pending first. Returns what the dispatch
/// routine returns.
fn queue(dev: PDEVICE_OBJECT, irp: PIRP, mark: bool) -> NTSTATUS {
    let file = sl(irp).FileObject as usize;
    let old = lock(dev);
    // SAFETY: the driver owns the IRP.
    unsafe { ntsim::cancel::IoSetCancelRoutine(irp, Some(cancel_routine)) };
    if irp_mut(irp).Cancel != 0 {
        // SAFETY: as above.
        if unsafe { ntsim::cancel::IoSetCancelRoutine(irp, None) }.is_some() {
            unlock(dev, old);
            return complete(irp, STATUS_CANCELLED, 0);
        }
    }
    if mark {
        // SAFETY: as above.
        unsafe { IoMarkIrpPending(irp) };
    }
    state(dev).queue.push((irp as usize, file));
    unlock(dev, old);
    STATUS_PENDING
}

/// Takes every queued IRP of `file` (all if None) out of the queue, owning those whose cancel
/// routine it could take.
fn take_queued(dev: PDEVICE_OBJECT, file: Option<usize>) -> Vec<PIRP> {
    let old = lock(dev);
    let mut mine = Vec::new();
    let st = state(dev);
    let all = std::mem::take(&mut st.queue);
    for (irp, f) in all {
        if file.is_some_and(|x| x != f) {
            st.queue.push((irp, f));
            continue;
        }
        // SAFETY: a queued IRP is live.
        if unsafe { ntsim::cancel::IoSetCancelRoutine(irp as PIRP, None) }.is_some() {
            mine.push(irp as PIRP);
        } else {
            // The cancel routine runs; it removes the IRP itself.
            st.queue.push((irp, f));
        }
    }
    unlock(dev, old);
    mine
}

unsafe extern "system" fn timer_dpc(_d: PKDPC, ctx: PVOID, _a: PVOID, _b: PVOID) {
    let dev = ctx as PDEVICE_OBJECT;
    let st = state(dev);
    let e = std::mem::take(&mut st.event);
    if e != 0 {
        // SAFETY: the referenced user event.
        unsafe { ntsim::event::KeSetEvent(e as PKEVENT, 0, 0) };
        // SAFETY: the reference taken at registration.
        unsafe { ntsim::object::ObDereferenceObject(e as PVOID) };
    }
}

unsafe extern "system" fn thread_main(ctx: PVOID) {
    let dev = ctx as PDEVICE_OBJECT;
    let ev = &raw mut ext(dev).thread_stop;
    // SAFETY: the extension's event.
    unsafe {
        ntsim::wait::KeWaitForSingleObject(ev.cast(), 0, KernelMode, 0, std::ptr::null_mut())
    };
}

fn file_ctx(irp: PIRP) -> *mut IO_REMOVE_LOCK {
    // SAFETY: the FsContext allocated at CREATE.
    let f = unsafe { (*sl(irp).FileObject).FsContext };
    f.cast::<FileCtx>().cast()
}

unsafe extern "system" fn dispatch_create(dev: PDEVICE_OBJECT, irp: PIRP) -> NTSTATUS {
    let st = state(dev);
    let now = now();
    st.log
        .push((IRP_MJ_CREATE, now, sl(irp).FileObject as usize));
    if st.create_status != STATUS_SUCCESS {
        return complete(irp, st.create_status, 0);
    }
    let ctx = ntsim::pool::ExAllocatePool2(
        ntsim::pool::POOL_FLAG_NON_PAGED,
        size_of::<FileCtx>(),
        u32::from_le_bytes(*b"Fctx"),
    );
    if ctx.is_null() {
        return complete(irp, STATUS_INSUFFICIENT_RESOURCES, 0);
    }
    // SAFETY: fresh pool for a FileCtx.
    unsafe { IoInitializeRemoveLock(ctx.cast(), 0, 0, 0) };
    // SAFETY: the file object of a CREATE is live.
    unsafe { (*sl(irp).FileObject).FsContext = ctx };
    complete(irp, STATUS_SUCCESS, 0)
}

fn now() -> u64 {
    ntsim::iomgr::interrupt_time()
}

unsafe extern "system" fn dispatch_cleanup(dev: PDEVICE_OBJECT, irp: PIRP) -> NTSTATUS {
    let file = sl(irp).FileObject as usize;
    state(dev).log.push((IRP_MJ_CLEANUP, now(), file));
    let rl = file_ctx(irp);
    // SAFETY: the file's remove lock; cleanup comes once per file object.
    let s = unsafe { IoAcquireRemoveLock(rl, irp.cast()) };
    assert_eq!(s, STATUS_SUCCESS);
    // SAFETY: acquired just above, at PASSIVE_LEVEL.
    unsafe { IoReleaseRemoveLockAndWait(rl, irp.cast()) };
    for q in take_queued(dev, Some(file)) {
        complete(q, STATUS_CANCELLED, 0);
    }
    let st = state(dev);
    if st.event != 0 && st.event_file == file {
        // SAFETY: the extension's timer.
        if unsafe { ntsim::timer::KeCancelTimer(&raw mut ext(dev).timer) } != 0 {
            let e = std::mem::take(&mut state(dev).event);
            // SAFETY: the reference taken at registration.
            unsafe { ntsim::object::ObDereferenceObject(e as PVOID) };
        }
    }
    complete(irp, STATUS_SUCCESS, 0)
}

unsafe extern "system" fn dispatch_close(dev: PDEVICE_OBJECT, irp: PIRP) -> NTSTATUS {
    state(dev)
        .log
        .push((IRP_MJ_CLOSE, now(), sl(irp).FileObject as usize));
    // SAFETY: the FsContext allocated at CREATE; nothing uses it any more.
    unsafe { ntsim::pool::ExFreePool(file_ctx(irp).cast()) };
    complete(irp, STATUS_SUCCESS, 0)
}

unsafe extern "system" fn dispatch_ioctl(dev: PDEVICE_OBJECT, irp: PIRP) -> NTSTATUS {
    let rl = file_ctx(irp);
    // SAFETY: the file's remove lock, tagged with the IRP.
    if unsafe { IoAcquireRemoveLock(rl, irp.cast()) } != STATUS_SUCCESS {
        return complete(irp, STATUS_DELETE_PENDING, 0);
    }
    let status = ioctl_body(dev, irp);
    // SAFETY: acquired above; released before returning, pending or not (spec A.17).
    unsafe { IoReleaseRemoveLock(rl, irp.cast()) };
    status
}

fn ioctl_body(dev: PDEVICE_OBJECT, irp: PIRP) -> NTSTATUS {
    // SAFETY: an IRP_MJ_DEVICE_CONTROL stack location.
    let p = unsafe { sl(irp).Parameters.DeviceIoControl };
    // SAFETY: METHOD_BUFFERED: the system buffer.
    let buf = unsafe { irp_mut(irp).AssociatedIrp.SystemBuffer }.cast::<u8>();
    match p.IoControlCode {
        IOCTL_ECHO => {
            let n = p.InputBufferLength.min(p.OutputBufferLength) as usize;
            complete(irp, STATUS_SUCCESS, n)
        }
        IOCTL_FAIL => complete(irp, STATUS_INVALID_PARAMETER, 0),
        IOCTL_PEND => queue(dev, irp, true),
        IOCTL_COMPLETE_ALL => {
            for q in take_queued(dev, None) {
                complete(q, STATUS_SUCCESS, 0);
            }
            complete(irp, STATUS_SUCCESS, 0)
        }
        IOCTL_PEND_FAIL => {
            // SAFETY: the driver owns the IRP.
            unsafe { IoMarkIrpPending(irp) };
            complete(irp, STATUS_INVALID_PARAMETER, 0);
            STATUS_PENDING
        }
        IOCTL_EVENT => {
            if p.InputBufferLength < 16 {
                return complete(irp, STATUS_INVALID_PARAMETER, 0);
            }
            // SAFETY: 16 input bytes in the system buffer.
            let h = unsafe { buf.cast::<u64>().read_unaligned() };
            // SAFETY: as above.
            let due_ptr = unsafe { buf.add(8) };
            // SAFETY: as above.
            let due = unsafe { due_ptr.cast::<i64>().read_unaligned() };
            let mut obj: PVOID = std::ptr::null_mut();
            // SAFETY: referenced in the requester's context with its mode (spec A.14).
            let s = unsafe {
                ntsim::object::ObReferenceObjectByHandle(
                    h as HANDLE,
                    EVENT_MODIFY_STATE | SYNCHRONIZE,
                    ntsim::object::ExEventObjectType(),
                    irp_mut(irp).RequestorMode,
                    &mut obj,
                    std::ptr::null_mut(),
                )
            };
            if s != STATUS_SUCCESS {
                return complete(irp, s, 0);
            }
            let st = state(dev);
            st.event = obj as usize;
            st.event_file = sl(irp).FileObject as usize;
            let e = ext(dev);
            // SAFETY: the extension's timer and DPC.
            unsafe { ntsim::timer::KeSetTimer(&raw mut e.timer, due, &raw mut e.dpc) };
            complete(irp, STATUS_SUCCESS, 0)
        }
        IOCTL_PEND_NO_CANCEL => {
            // SAFETY: the driver owns the IRP.
            unsafe { IoMarkIrpPending(irp) };
            state(dev).held.push(irp as usize);
            STATUS_PENDING
        }
        IOCTL_DELAY_PEND => {
            let mut t: i64 = -1_000_000;
            // SAFETY: a 100 ms delay at PASSIVE_LEVEL.
            unsafe { ntsim::wait::KeDelayExecutionThread(KernelMode, 0, &mut t) };
            queue(dev, irp, true)
        }
        IOCTL_LEAK_POOL => {
            ntsim::pool::ExAllocatePool2(
                ntsim::pool::POOL_FLAG_NON_PAGED,
                32,
                u32::from_le_bytes(*b"Leak"),
            );
            complete(irp, STATUS_SUCCESS, 0)
        }
        IOCTL_START_THREAD => {
            let mut h: HANDLE = std::ptr::null_mut();
            // SAFETY: a writable handle; the thread uses the device, which outlives it.
            let s = unsafe {
                ntsim::thread::PsCreateSystemThread(
                    &mut h,
                    0,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    Some(thread_main),
                    dev.cast(),
                )
            };
            let mut obj: PVOID = std::ptr::null_mut();
            // SAFETY: the kernel handle just created.
            unsafe {
                ntsim::object::ObReferenceObjectByHandle(
                    h,
                    0,
                    std::ptr::null_mut(),
                    KernelMode,
                    &mut obj,
                    std::ptr::null_mut(),
                )
            };
            ntsim::object::ZwClose(h);
            state(dev).thread = obj as usize;
            complete(irp, s, 0)
        }
        IOCTL_ARM_TIMER => {
            let e = ext(dev);
            // SAFETY: the extension's timer, without DPC.
            unsafe {
                ntsim::timer::KeSetTimer(&raw mut e.timer, -100_000_000, std::ptr::null_mut())
            };
            complete(irp, STATUS_SUCCESS, 0)
        }
        IOCTL_PENDING_UNMARKED => queue(dev, irp, false),
        IOCTL_MARKED_RETURNS_SUCCESS => {
            // SAFETY: the driver owns the IRP.
            unsafe { IoMarkIrpPending(irp) };
            complete(irp, STATUS_SUCCESS, 0)
        }
        IOCTL_RETURNS_OTHER_STATUS => {
            complete(irp, STATUS_SUCCESS, 0);
            STATUS_INVALID_PARAMETER
        }
        IOCTL_NOT_COMPLETED => STATUS_SUCCESS,
        IOCTL_RETURNS_FFFFFFFF => {
            complete(irp, STATUS_SUCCESS, 0);
            0xFFFF_FFFF_u32 as NTSTATUS
        }
        _ => complete(irp, STATUS_NOT_IMPLEMENTED, 0),
    }
}

unsafe extern "system" fn unload(drv: PDRIVER_OBJECT) {
    let dev = device(drv);
    let st = state(dev);
    if !st.unload_leaves_timer {
        // SAFETY: the extension's timer.
        unsafe { ntsim::timer::KeCancelTimer(&raw mut ext(dev).timer) };
    }
    if st.thread != 0 && !st.unload_leaves_thread {
        // SAFETY: the extension's event.
        unsafe { ntsim::event::KeSetEvent(&raw mut ext(dev).thread_stop, 0, 0) };
        // SAFETY: the referenced thread object.
        unsafe {
            ntsim::wait::KeWaitForSingleObject(
                st.thread as PVOID,
                0,
                KernelMode,
                0,
                std::ptr::null_mut(),
            )
        };
        // SAFETY: the reference taken at creation.
        unsafe { ntsim::object::ObDereferenceObject(st.thread as PVOID) };
        st.thread = 0;
    }
    if st.unload_leaves_device {
        return;
    }
    let mut link = OwnedUnicodeString::new(r"\DosDevices\TestDev");
    // SAFETY: a valid string.
    unsafe { IoDeleteSymbolicLink(link.as_ptr()) };
    // SAFETY: the driver's device, deleted once.
    unsafe { IoDeleteDevice(dev) };
}

unsafe extern "system" fn driver_entry(drv: PDRIVER_OBJECT, _reg: PUNICODE_STRING) -> NTSTATUS {
    let mut name = OwnedUnicodeString::new(r"\Device\TestDev");
    let mut dev: PDEVICE_OBJECT = std::ptr::null_mut();
    // SAFETY: a loaded driver object and a valid name.
    let s = unsafe {
        IoCreateDevice(
            drv,
            size_of::<Ext>() as u32,
            name.as_ptr(),
            FILE_DEVICE_UNKNOWN,
            0,
            0,
            &mut dev,
        )
    };
    if s != STATUS_SUCCESS {
        return s;
    }
    let e = ext(dev);
    e.state = Box::into_raw(Box::default());
    // SAFETY: the extension's objects, initialized in place.
    unsafe { ntsim::timer::KeInitializeTimer(&raw mut e.timer) };
    // SAFETY: as above.
    unsafe { ntsim::dpc::KeInitializeDpc(&raw mut e.dpc, Some(timer_dpc), dev.cast()) };
    // SAFETY: as above.
    unsafe { ntsim::event::KeInitializeEvent(&raw mut e.thread_stop, NotificationEvent, 0) };
    let mut link = OwnedUnicodeString::new(r"\DosDevices\TestDev");
    // SAFETY: valid strings.
    unsafe { IoCreateSymbolicLink(link.as_ptr(), name.as_ptr()) };
    // SAFETY: the driver object is being initialized by its DriverEntry.
    let d = unsafe { &mut *drv };
    d.MajorFunction[IRP_MJ_CREATE as usize] = Some(dispatch_create);
    d.MajorFunction[IRP_MJ_CLEANUP as usize] = Some(dispatch_cleanup);
    d.MajorFunction[IRP_MJ_CLOSE as usize] = Some(dispatch_close);
    d.MajorFunction[IRP_MJ_DEVICE_CONTROL as usize] = Some(dispatch_ioctl);
    d.DriverUnload = Some(unload);
    STATUS_SUCCESS
}

/// Loads the test driver; returns its driver object and device.
pub fn load() -> (PDRIVER_OBJECT, PDEVICE_OBJECT) {
    let drv = load_driver("TestDrv", Some(driver_entry)).expect("DriverEntry succeeds");
    (drv, device(drv))
}

/// The device's reference count.
pub fn device_refs(dev: PDEVICE_OBJECT) -> i32 {
    // SAFETY: a live device object.
    unsafe { (*dev).ReferenceCount }
}

/// The major functions the driver saw for `file` (or all), in order.
pub fn majors(dev: PDEVICE_OBJECT) -> Vec<u8> {
    state(dev).log.iter().map(|&(m, _, _)| m).collect()
}
