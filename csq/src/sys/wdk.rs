//! The seam over `wdk-sys` (`cfg(windows)`): the same surface as `host.rs`.
//!
//! `wdk-sys` binds the exported kernel routines; the header-only inline routines that drivers
//! rely on are rewritten here: `IoGetCurrentIrpStackLocation`, `IoMarkIrpPending`,
//! `IoSetCancelRoutine` (an atomic exchange, spec A.3), `IoSetNextIrpStackLocation` and the
//! `LIST_ENTRY` routines. bindgen names C anonymous unions `__bindgen_anon_N`; the paths below
//! follow `wdm.h`'s nesting.
//!
//! NOTE: this file is written against wdk-sys 0.5 and is compiled only by the Windows build
//! pipeline; keep it a mirror of `host.rs`.

use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

use wdk_sys::ntddk;

use super::{
    CsqCallbacks, DispatchCancelFn, DispatchFn, DpcFn, DriverBug, Kirql, Ntstatus, StartIoFn,
    ThreadStartFn, UnloadFn,
};

pub(crate) use wdk_sys::{
    DEVICE_OBJECT as DeviceObject, DRIVER_OBJECT as DriverObject, FILE_OBJECT as FileObject,
    IO_CSQ as IoCsq, IO_CSQ_IRP_CONTEXT as CsqIrpContext, IO_REMOVE_LOCK as RemoveLockObject,
    IRP as Irp, KDPC as KDpc, KEVENT as KEvent, KSEMAPHORE as KSemaphore, KSPIN_LOCK as KSpinLock,
    KTIMER as KTimer, LIST_ENTRY as ListEntry,
};

/// Thread objects are only waited on and dereferenced: an opaque byte.
pub(crate) type KThread = c_void;
/// `DriverEntry`.
pub(crate) type DriverEntryFn =
    unsafe extern "system" fn(driver: *mut DriverObject, registry_path: RegistryPath) -> Ntstatus;
/// The registry path argument of `DriverEntry`.
pub(crate) type RegistryPath = wdk_sys::PCUNICODE_STRING;

const SL_PENDING_RETURNED: u8 = 0x01;
const DO_BUFFERED_IO: u32 = 0x0000_0004;
const DO_DEVICE_INITIALIZING: u32 = 0x0000_0080;
const SYNCHRONIZE: u32 = 0x0010_0000;
const EVENT_MODIFY_STATE: u32 = 0x0002;
const KERNEL_MODE: i8 = 0;
const EXECUTIVE: i32 = 0;
const WAIT_ANY: i32 = 1;

/// Converts one of our `extern "system"` callbacks to the `extern "C"` pointer type bindgen
/// declares. On x86-64 Windows both names denote the same (Microsoft x64) convention.
macro_rules! as_c_callback {
    ($f:expr, $ty:ty) => {{
        // SAFETY: same size (one code pointer) and the same calling convention on this target.
        Some(unsafe { core::mem::transmute::<_, $ty>($f) })
    }};
}

// ---------------------------------------------------------------------------------------------
// IRPs.

/// `IoGetCurrentIrpStackLocation` (an inline in wdm.h).
///
/// # Safety
/// `irp` is a live IRP.
unsafe fn current_sl(irp: *mut Irp) -> *mut wdk_sys::IO_STACK_LOCATION {
    // SAFETY: caller contract; the union member is the stack-location pointer for any IRP
    // being processed by a driver.
    unsafe {
        (*irp)
            .Tail
            .Overlay
            .__bindgen_anon_2
            .__bindgen_anon_1
            .CurrentStackLocation
    }
}

/// # Safety
/// `irp` is a live IRP with a current stack location.
unsafe fn current_stack_location(irp: *mut Irp) -> wdk_sys::IO_STACK_LOCATION {
    // SAFETY: caller contract.
    let sl = unsafe { current_sl(irp) };
    // SAFETY: the current stack location of a live IRP is readable.
    unsafe { sl.read() }
}

pub(crate) unsafe fn irp_major_function(irp: *mut Irp) -> u8 {
    // SAFETY: forwarded caller contract.
    unsafe { current_stack_location(irp) }.MajorFunction
}

pub(crate) unsafe fn irp_minor_function(irp: *mut Irp) -> u8 {
    // SAFETY: forwarded caller contract.
    unsafe { current_stack_location(irp) }.MinorFunction
}

pub(crate) unsafe fn irp_ioctl_parameters(irp: *mut Irp) -> (u32, u32, u32) {
    // SAFETY: forwarded caller contract.
    let sl = unsafe { current_stack_location(irp) };
    // SAFETY: plain-data union; the DeviceIoControl view is defined for any bit pattern.
    let p = unsafe { sl.Parameters.DeviceIoControl };
    (p.IoControlCode, p.InputBufferLength, p.OutputBufferLength)
}

pub(crate) unsafe fn irp_system_buffer(irp: *mut Irp) -> *mut u8 {
    // SAFETY: caller contract; pointer-sized plain-data union.
    unsafe { (*irp).AssociatedIrp.SystemBuffer }.cast()
}

pub(crate) unsafe fn irp_file_object(irp: *mut Irp) -> *mut FileObject {
    // SAFETY: forwarded caller contract.
    unsafe { current_stack_location(irp) }.FileObject
}

pub(crate) unsafe fn irp_requestor_mode(irp: *mut Irp) -> i8 {
    // SAFETY: caller contract.
    unsafe { (*irp).RequestorMode }
}

pub(crate) unsafe fn irp_cancel_flag(irp: *mut Irp) -> bool {
    // SAFETY: caller contract; address only.
    let cancel = unsafe { &raw const (*irp).Cancel };
    // SAFETY: IoCancelIrp may write it concurrently: read once, volatile.
    unsafe { ptr::read_volatile(cancel) != 0 }
}

pub(crate) unsafe fn irp_is_marked_pending(irp: *mut Irp) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { current_stack_location(irp) }.Control & SL_PENDING_RETURNED != 0
}

/// `IoMarkIrpPending` (an inline in wdm.h): sets SL_PENDING_RETURNED in the current location.
pub(crate) unsafe fn irp_mark_pending(irp: *mut Irp) {
    // SAFETY: caller contract.
    let sl = unsafe { current_sl(irp) };
    // SAFETY: the caller owns the IRP, so nobody else writes its current location.
    unsafe { (*sl).Control |= SL_PENDING_RETURNED };
}

/// `IoSetCancelRoutine` (an inline in wdm.h): `InterlockedExchangePointer` on the field.
pub(crate) unsafe fn irp_set_cancel_routine(
    irp: *mut Irp,
    routine: Option<DispatchCancelFn>,
) -> Option<DispatchCancelFn> {
    // SAFETY: caller contract; the field is a pointer-sized, aligned code pointer that the
    // kernel only changes by atomic exchange (spec A.3).
    let word = unsafe { &*(&raw mut (*irp).CancelRoutine).cast::<AtomicPtr<c_void>>() };
    let new = routine.map_or(ptr::null_mut(), |f| f as *mut c_void);
    let old = word.swap(new, Ordering::SeqCst);
    if old.is_null() {
        None
    } else {
        // SAFETY: a non-null value was stored from a DRIVER_CANCEL pointer.
        Some(unsafe { core::mem::transmute::<*mut c_void, DispatchCancelFn>(old) })
    }
}

pub(crate) unsafe fn irp_complete(irp: *mut Irp, status: Ntstatus, information: usize) {
    // SAFETY: the caller owns the IRP.
    unsafe { (*irp).IoStatus.__bindgen_anon_1.Status = status };
    // SAFETY: as above.
    unsafe { (*irp).IoStatus.Information = information as u64 };
    // SAFETY: the caller owns the IRP, its cancel routine is NULL and no lock is held.
    unsafe { ntddk::IofCompleteRequest(irp, 0) };
}

pub(crate) fn irp_list_entry(irp: *mut Irp) -> *mut ListEntry {
    irp.wrapping_byte_add(core::mem::offset_of!(Irp, Tail.Overlay.ListEntry))
        .cast()
}

pub(crate) fn irp_from_list_entry(entry: *mut ListEntry) -> *mut Irp {
    entry
        .wrapping_byte_sub(core::mem::offset_of!(Irp, Tail.Overlay.ListEntry))
        .cast()
}

pub(crate) fn irp_driver_context(irp: *mut Irp, index: usize) -> *mut *mut c_void {
    irp.wrapping_byte_add(core::mem::offset_of!(
        Irp,
        Tail.Overlay.__bindgen_anon_1.DriverContext
    ))
    .cast::<*mut c_void>()
    .wrapping_add(index)
}

// ---------------------------------------------------------------------------------------------
// Lists (InitializeListHead, IsListEmpty, InsertTailList, RemoveEntryList are inlines).

pub(crate) unsafe fn list_init(head: *mut ListEntry) {
    // SAFETY: caller contract.
    unsafe {
        head.write(ListEntry {
            Flink: head,
            Blink: head,
        })
    }
}

pub(crate) unsafe fn list_is_empty(head: *mut ListEntry) -> bool {
    // SAFETY: caller contract.
    unsafe { (*head).Flink == head }
}

pub(crate) unsafe fn list_next(entry: *mut ListEntry) -> *mut ListEntry {
    // SAFETY: caller contract.
    unsafe { (*entry).Flink }
}

pub(crate) unsafe fn list_insert_tail(head: *mut ListEntry, entry: *mut ListEntry) {
    // SAFETY: caller contract.
    let blink = unsafe { (*head).Blink };
    // SAFETY: caller contract.
    unsafe {
        entry.write(ListEntry {
            Flink: head,
            Blink: blink,
        })
    };
    // SAFETY: `blink` is linked in the same list.
    unsafe { (*blink).Flink = entry };
    // SAFETY: as above.
    unsafe { (*head).Blink = entry };
}

pub(crate) unsafe fn list_remove(entry: *mut ListEntry) {
    // SAFETY: caller contract.
    let ListEntry {
        Flink: next,
        Blink: prev,
    } = unsafe { entry.read() };
    // SAFETY: neighbours of a linked entry are linked.
    unsafe { (*prev).Flink = next };
    // SAFETY: as above.
    unsafe { (*next).Blink = prev };
}

// ---------------------------------------------------------------------------------------------
// Cancel-safe queues.

pub(crate) unsafe fn csq_initialize_ex(csq: *mut IoCsq, cb: CsqCallbacks) -> Ntstatus {
    // SAFETY: forwarded caller contract; the callbacks have the IoCsq signatures.
    unsafe {
        ntddk::IoCsqInitializeEx(
            csq,
            as_c_callback!(
                cb.insert,
                unsafe extern "C" fn(*mut IoCsq, *mut Irp, *mut c_void) -> Ntstatus
            ),
            as_c_callback!(cb.remove, unsafe extern "C" fn(*mut IoCsq, *mut Irp)),
            as_c_callback!(
                cb.peek_next,
                unsafe extern "C" fn(*mut IoCsq, *mut Irp, *mut c_void) -> *mut Irp
            ),
            as_c_callback!(
                cb.acquire_lock,
                unsafe extern "C" fn(*mut IoCsq, *mut Kirql)
            ),
            as_c_callback!(cb.release_lock, unsafe extern "C" fn(*mut IoCsq, Kirql)),
            as_c_callback!(
                cb.complete_canceled,
                unsafe extern "C" fn(*mut IoCsq, *mut Irp)
            ),
        )
    }
}

pub(crate) unsafe fn csq_insert_irp_ex(
    csq: *mut IoCsq,
    irp: *mut Irp,
    context: *mut CsqIrpContext,
    insert_context: *mut c_void,
) -> Ntstatus {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::IoCsqInsertIrpEx(csq, irp, context, insert_context) }
}

pub(crate) unsafe fn csq_remove_irp(csq: *mut IoCsq, context: *mut CsqIrpContext) -> *mut Irp {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::IoCsqRemoveIrp(csq, context) }
}

pub(crate) unsafe fn csq_remove_next_irp(csq: *mut IoCsq, peek_context: *mut c_void) -> *mut Irp {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::IoCsqRemoveNextIrp(csq, peek_context) }
}

// ---------------------------------------------------------------------------------------------
// IRQL and spin locks.

pub(crate) fn current_irql() -> Kirql {
    // SAFETY: no preconditions.
    unsafe { ntddk::KeGetCurrentIrql() }
}

pub(crate) unsafe fn spin_lock_init(lock: *mut KSpinLock) {
    // KeInitializeSpinLock is an inline that stores 0.
    // SAFETY: caller contract.
    unsafe { lock.write(0) }
}

pub(crate) unsafe fn spin_lock_acquire(lock: *mut KSpinLock) -> Kirql {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::KeAcquireSpinLockRaiseToDpc(lock) }
}

pub(crate) unsafe fn spin_lock_release(lock: *mut KSpinLock, irql: Kirql) {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::KeReleaseSpinLock(lock, irql) }
}

pub(crate) unsafe fn spin_lock_acquire_at_dpc(lock: *mut KSpinLock) {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::KeAcquireSpinLockAtDpcLevel(lock) }
}

pub(crate) unsafe fn spin_lock_release_from_dpc(lock: *mut KSpinLock) {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::KeReleaseSpinLockFromDpcLevel(lock) }
}

// ---------------------------------------------------------------------------------------------
// Dispatcher objects and waits.

pub(crate) unsafe fn event_init(event: *mut KEvent, notification: bool, signaled: bool) {
    let kind = if notification {
        wdk_sys::_EVENT_TYPE::NotificationEvent
    } else {
        wdk_sys::_EVENT_TYPE::SynchronizationEvent
    };
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::KeInitializeEvent(event, kind, u8::from(signaled)) }
}

pub(crate) unsafe fn event_set(event: *mut KEvent) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::KeSetEvent(event, 0, 0) != 0 }
}

pub(crate) unsafe fn event_reset(event: *mut KEvent) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::KeResetEvent(event) != 0 }
}

pub(crate) unsafe fn event_read(event: *mut KEvent) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::KeReadStateEvent(event) != 0 }
}

pub(crate) unsafe fn semaphore_init(sem: *mut KSemaphore, count: i32, limit: i32) {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::KeInitializeSemaphore(sem, count, limit) }
}

pub(crate) unsafe fn semaphore_release(sem: *mut KSemaphore, adjustment: i32) -> i32 {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::KeReleaseSemaphore(sem, 0, adjustment, 0) }
}

pub(crate) unsafe fn semaphore_read(sem: *mut KSemaphore) -> i32 {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::KeReadStateSemaphore(sem) }
}

fn timeout_ptr(timeout: &mut Option<i64>) -> *mut wdk_sys::LARGE_INTEGER {
    match timeout {
        Some(t) => (t as *mut i64).cast(),
        None => ptr::null_mut(),
    }
}

pub(crate) unsafe fn wait_single(object: *mut c_void, mut timeout: Option<i64>) -> Ntstatus {
    let t = timeout_ptr(&mut timeout);
    // SAFETY: forwarded caller contract; `t` is null or a live LARGE_INTEGER.
    unsafe { ntddk::KeWaitForSingleObject(object, EXECUTIVE, KERNEL_MODE, 0, t) }
}

pub(crate) unsafe fn wait_any(objects: &[*mut c_void], mut timeout: Option<i64>) -> Ntstatus {
    let t = timeout_ptr(&mut timeout);
    // SAFETY: forwarded caller contract; at most THREAD_WAIT_OBJECTS objects, so the thread's
    // built-in wait blocks are used (no wait block array).
    unsafe {
        ntddk::KeWaitForMultipleObjects(
            objects.len() as u32,
            objects.as_ptr().cast_mut(),
            WAIT_ANY,
            EXECUTIVE,
            KERNEL_MODE,
            0,
            t,
            ptr::null_mut(),
        )
    }
}

pub(crate) fn delay(mut interval: i64) {
    // SAFETY: `interval` is a live LARGE_INTEGER-sized local.
    unsafe { ntddk::KeDelayExecutionThread(KERNEL_MODE, 0, (&raw mut interval).cast()) };
}

pub(crate) unsafe fn timer_init(timer: *mut KTimer, notification: bool) {
    let kind = if notification {
        wdk_sys::_TIMER_TYPE::NotificationTimer
    } else {
        wdk_sys::_TIMER_TYPE::SynchronizationTimer
    };
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::KeInitializeTimerEx(timer, kind) }
}

pub(crate) unsafe fn timer_set(
    timer: *mut KTimer,
    due: i64,
    period_ms: i32,
    dpc: *mut KDpc,
) -> bool {
    let due = wdk_sys::LARGE_INTEGER { QuadPart: due };
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::KeSetTimerEx(timer, due, period_ms, dpc) != 0 }
}

pub(crate) unsafe fn timer_cancel(timer: *mut KTimer) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::KeCancelTimer(timer) != 0 }
}

pub(crate) unsafe fn timer_read(timer: *mut KTimer) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::KeReadStateTimer(timer) != 0 }
}

pub(crate) unsafe fn dpc_init(dpc: *mut KDpc, routine: DpcFn, context: *mut c_void) {
    let routine = as_c_callback!(
        routine,
        unsafe extern "C" fn(*mut KDpc, *mut c_void, *mut c_void, *mut c_void)
    );
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::KeInitializeDpc(dpc, routine, context) }
}

pub(crate) unsafe fn dpc_insert(dpc: *mut KDpc) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::KeInsertQueueDpc(dpc, ptr::null_mut(), ptr::null_mut()) != 0 }
}

pub(crate) unsafe fn dpc_remove(dpc: *mut KDpc) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::KeRemoveQueueDpc(dpc) != 0 }
}

pub(crate) fn flush_queued_dpcs() {
    // SAFETY: called at PASSIVE_LEVEL (caller contract of the seam function).
    unsafe { ntddk::KeFlushQueuedDpcs() }
}

// ---------------------------------------------------------------------------------------------
// Threads and objects.

pub(crate) unsafe fn thread_create(
    start: ThreadStartFn,
    context: *mut c_void,
) -> Result<*mut KThread, Ntstatus> {
    let mut handle: wdk_sys::HANDLE = ptr::null_mut();
    let start = as_c_callback!(start, unsafe extern "C" fn(*mut c_void));
    // SAFETY: `handle` is writable; the caller guarantees `start`/`context`.
    let status = unsafe {
        ntddk::PsCreateSystemThread(
            &mut handle,
            SYNCHRONIZE,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            start,
            context,
        )
    };
    if status < 0 {
        return Err(status);
    }
    let mut object: *mut c_void = ptr::null_mut();
    // SAFETY: reading the exported object-type pointer.
    let thread_type = unsafe { *wdk_sys::PsThreadType };
    // SAFETY: `handle` is the kernel handle just returned; `object` is writable.
    let status = unsafe {
        ntddk::ObReferenceObjectByHandle(
            handle,
            SYNCHRONIZE,
            thread_type,
            KERNEL_MODE,
            &mut object,
            ptr::null_mut(),
        )
    };
    // SAFETY: our own kernel handle, closed once.
    unsafe { ntddk::ZwClose(handle) };
    if status < 0 { Err(status) } else { Ok(object) }
}

pub(crate) unsafe fn object_dereference(object: *mut c_void) {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::ObfDereferenceObject(object) };
}

pub(crate) fn event_reference_by_handle(handle: usize, mode: i8) -> Result<*mut KEvent, Ntstatus> {
    let mut object: *mut c_void = ptr::null_mut();
    // SAFETY: reading the exported object-type pointer.
    let event_type = unsafe { *wdk_sys::ExEventObjectType };
    // SAFETY: `object` is writable; a bad handle fails with a status.
    let status = unsafe {
        ntddk::ObReferenceObjectByHandle(
            handle as wdk_sys::HANDLE,
            SYNCHRONIZE | EVENT_MODIFY_STATE,
            event_type,
            mode,
            &mut object,
            ptr::null_mut(),
        )
    };
    if status < 0 {
        Err(status)
    } else {
        Ok(object.cast())
    }
}

// ---------------------------------------------------------------------------------------------
// Drivers and devices.

fn unicode(s: &[u16]) -> wdk_sys::UNICODE_STRING {
    let bytes = (s.len() * 2) as u16;
    wdk_sys::UNICODE_STRING {
        Length: bytes,
        MaximumLength: bytes,
        Buffer: s.as_ptr().cast_mut(),
    }
}

pub(crate) unsafe fn device_create(
    driver: *mut DriverObject,
    extension_size: u32,
    name: &[u16],
    device_type: u32,
    characteristics: u32,
    exclusive: bool,
    sddl: &[u16],
) -> Result<*mut DeviceObject, Ntstatus> {
    let mut name = unicode(name);
    let sddl = unicode(sddl);
    let mut device: *mut DeviceObject = ptr::null_mut();
    // SAFETY: the strings and `device` are live locals; the caller guarantees `driver`.
    let status = unsafe {
        IoCreateDeviceSecure(
            driver,
            extension_size,
            &mut name,
            device_type,
            characteristics,
            u8::from(exclusive),
            &sddl,
            ptr::null(),
            &mut device,
        )
    };
    if status < 0 { Err(status) } else { Ok(device) }
}

// `IoCreateDeviceSecure` is not an ntoskrnl export: it lives in the WDK's static library
// wdmsec.lib (declared in wdmsec.h), which wdk-sys does not bind.
#[link(name = "wdmsec")]
unsafe extern "system" {
    fn IoCreateDeviceSecure(
        DriverObject: *mut DriverObject,
        DeviceExtensionSize: u32,
        DeviceName: *mut wdk_sys::UNICODE_STRING,
        DeviceType: u32,
        DeviceCharacteristics: u32,
        Exclusive: u8,
        DefaultSDDLString: *const wdk_sys::UNICODE_STRING,
        DeviceClassGuid: *const wdk_sys::GUID,
        DeviceObject: *mut *mut DeviceObject,
    ) -> Ntstatus;
}

pub(crate) unsafe fn device_extension(device: *mut DeviceObject) -> *mut c_void {
    // SAFETY: caller contract.
    unsafe { (*device).DeviceExtension }
}

pub(crate) unsafe fn device_finish_init(device: *mut DeviceObject, buffered_io: bool) {
    // SAFETY: caller contract: our device, not yet visible to I/O.
    let flags = unsafe { &mut (*device).Flags };
    if buffered_io {
        *flags |= DO_BUFFERED_IO;
    }
    *flags &= !DO_DEVICE_INITIALIZING;
}

pub(crate) unsafe fn device_delete(device: *mut DeviceObject) {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::IoDeleteDevice(device) }
}

pub(crate) unsafe fn driver_first_device(driver: *mut DriverObject) -> *mut DeviceObject {
    // SAFETY: caller contract.
    unsafe { (*driver).DeviceObject }
}

pub(crate) fn symbolic_link_create(link: &[u16], target: &[u16]) -> Ntstatus {
    let mut link = unicode(link);
    let mut target = unicode(target);
    // SAFETY: both strings are live locals.
    unsafe { ntddk::IoCreateSymbolicLink(&mut link, &mut target) }
}

pub(crate) fn symbolic_link_delete(link: &[u16]) -> Ntstatus {
    let mut link = unicode(link);
    // SAFETY: the string is a live local.
    unsafe { ntddk::IoDeleteSymbolicLink(&mut link) }
}

pub(crate) unsafe fn driver_set_dispatch(
    driver: *mut DriverObject,
    major: usize,
    routine: DispatchFn,
) {
    let routine = as_c_callback!(
        routine,
        unsafe extern "C" fn(*mut DeviceObject, *mut Irp) -> Ntstatus
    );
    // SAFETY: caller contract: our driver object, during DriverEntry.
    unsafe { (*driver).MajorFunction[major] = routine }
}

pub(crate) unsafe fn driver_set_unload(driver: *mut DriverObject, routine: UnloadFn) {
    let routine = as_c_callback!(routine, unsafe extern "C" fn(*mut DriverObject));
    // SAFETY: as above.
    unsafe { (*driver).DriverUnload = routine }
}

// ---------------------------------------------------------------------------------------------
// IoStartPacket / StartIo and the cancel spin lock. On x64, KeRaiseIrql/KeLowerIrql are inlines
// over CR8 (wdm.h), rewritten here.

pub(crate) unsafe fn irp_device_object(irp: *mut Irp) -> *mut DeviceObject {
    // SAFETY: forwarded caller contract.
    unsafe { current_stack_location(irp) }.DeviceObject
}

pub(crate) unsafe fn irp_cancel_irql(irp: *mut Irp) -> Kirql {
    // SAFETY: the caller guarantees a live IRP.
    unsafe { (*irp).CancelIrql }
}

pub(crate) fn cancel_lock_acquire() -> Kirql {
    let mut old: Kirql = 0;
    // SAFETY: `old` is writable.
    unsafe { ntddk::IoAcquireCancelSpinLock(&mut old) };
    old
}

pub(crate) unsafe fn cancel_lock_release(irql: Kirql) {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::IoReleaseCancelSpinLock(irql) }
}

/// `ReadCR8`: the current IRQL on x64.
fn read_cr8() -> Kirql {
    let v: u64;
    // SAFETY: reading CR8 in kernel mode has no side effect.
    unsafe {
        core::arch::asm!("mov {}, cr8", out(reg) v, options(nomem, nostack, preserves_flags))
    };
    v as Kirql
}

/// `WriteCR8`: sets the IRQL on x64.
///
/// # Safety
/// The caller follows the IRQL rules of `KeRaiseIrql`/`KeLowerIrql`.
unsafe fn write_cr8(irql: Kirql) {
    // SAFETY: forwarded caller contract.
    unsafe {
        core::arch::asm!("mov cr8, {}", in(reg) u64::from(irql), options(nostack, preserves_flags))
    };
}

pub(crate) fn irql_raise_to_dispatch() -> Kirql {
    let old = read_cr8();
    if old < super::DISPATCH_LEVEL {
        // SAFETY: raising to DISPATCH_LEVEL from below it (KfRaiseIrql's inline).
        unsafe { write_cr8(super::DISPATCH_LEVEL) };
    }
    old
}

pub(crate) unsafe fn irql_lower(irql: Kirql) {
    // SAFETY: forwarded caller contract (KeLowerIrql's inline).
    unsafe { write_cr8(irql) }
}

pub(crate) unsafe fn device_queue_remove_irp(device: *mut DeviceObject, irp: *mut Irp) -> bool {
    // SAFETY: the caller guarantees a live device object; address only.
    let queue = unsafe { &raw mut (*device).DeviceQueue };
    let entry = irp
        .wrapping_byte_add(core::mem::offset_of!(
            Irp,
            Tail.Overlay.__bindgen_anon_1.DeviceQueueEntry
        ))
        .cast::<wdk_sys::KDEVICE_QUEUE_ENTRY>();
    // SAFETY: the device's queue and the IRP's entry, both live (caller contract).
    unsafe { ntddk::KeRemoveEntryDeviceQueue(queue, entry) != 0 }
}

pub(crate) unsafe fn device_queue_next_irp(device: *mut DeviceObject, after: *mut Irp) -> *mut Irp {
    let entry_offset = core::mem::offset_of!(Irp, Tail.Overlay.__bindgen_anon_1.DeviceQueueEntry);
    // SAFETY: the caller guarantees a live device object; address only.
    let head = unsafe { &raw mut (*device).DeviceQueue.DeviceListHead };
    // `DeviceListEntry` is the first field of KDEVICE_QUEUE_ENTRY.
    let from = if after.is_null() {
        head
    } else {
        after.wrapping_byte_add(entry_offset).cast::<ListEntry>()
    };
    // SAFETY: a linked entry of the queue, stable under the cancel spin lock (caller contract).
    let next = unsafe { (*from).Flink };
    if next == head {
        ptr::null_mut()
    } else {
        next.wrapping_byte_sub(entry_offset).cast::<Irp>()
    }
}

pub(crate) unsafe fn start_packet(
    device: *mut DeviceObject,
    irp: *mut Irp,
    key: Option<u32>,
    cancel: DispatchCancelFn,
) {
    let mut key_value = key.unwrap_or(0);
    let key_ptr: *mut u32 = if key.is_some() {
        &mut key_value
    } else {
        ptr::null_mut()
    };
    let cancel = as_c_callback!(cancel, unsafe extern "C" fn(*mut DeviceObject, *mut Irp));
    // SAFETY: forwarded caller contract; `key_ptr` is null or a live local.
    unsafe { ntddk::IoStartPacket(device, irp, key_ptr, cancel) }
}

pub(crate) unsafe fn start_next_packet(device: *mut DeviceObject, cancelable: bool) {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::IoStartNextPacket(device, u8::from(cancelable)) }
}

pub(crate) unsafe fn set_start_io_attributes(
    device: *mut DeviceObject,
    deferred: bool,
    non_cancelable: bool,
) {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::IoSetStartIoAttributes(device, u8::from(deferred), u8::from(non_cancelable)) }
}

pub(crate) unsafe fn driver_set_start_io(driver: *mut DriverObject, routine: StartIoFn) {
    let routine = as_c_callback!(routine, unsafe extern "C" fn(*mut DeviceObject, *mut Irp));
    // SAFETY: caller contract: our driver object.
    unsafe { (*driver).DriverStartIo = routine }
}

pub(crate) unsafe fn device_driver(device: *mut DeviceObject) -> *mut DriverObject {
    // SAFETY: the caller guarantees a live device object.
    unsafe { (*device).DriverObject }
}

// ---------------------------------------------------------------------------------------------
// Remove locks (the IoXxxRemoveLock names are macros over the Ex routines).

const REMOVE_LOCK_SIZE: u32 = core::mem::size_of::<RemoveLockObject>() as u32;

pub(crate) unsafe fn remove_lock_init(lock: *mut RemoveLockObject, tag: u32) {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::IoInitializeRemoveLockEx(lock, tag, 0, 0, REMOVE_LOCK_SIZE) }
}

pub(crate) unsafe fn remove_lock_acquire(lock: *mut RemoveLockObject) -> Ntstatus {
    // SAFETY: forwarded caller contract.
    unsafe {
        ntddk::IoAcquireRemoveLockEx(lock, ptr::null_mut(), c"csq".as_ptr(), 0, REMOVE_LOCK_SIZE)
    }
}

pub(crate) unsafe fn remove_lock_release(lock: *mut RemoveLockObject) {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::IoReleaseRemoveLockEx(lock, ptr::null_mut(), REMOVE_LOCK_SIZE) }
}

pub(crate) unsafe fn remove_lock_release_and_wait(lock: *mut RemoveLockObject) {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::IoReleaseRemoveLockAndWaitEx(lock, ptr::null_mut(), REMOVE_LOCK_SIZE) }
}

// ---------------------------------------------------------------------------------------------
// Diagnostics.

pub(crate) fn report_driver_bug(_bug: DriverBug, irp: *mut Irp, message: &str) {
    debug_print(message);
    let _ = irp;
}

pub(crate) fn debug_print(message: &str) {
    // SAFETY: "%.*s" with a length and a pointer to that many bytes.
    unsafe { ntddk::DbgPrint(c"%.*s\n".as_ptr(), message.len() as i32, message.as_ptr()) };
}

// ---------------------------------------------------------------------------------------------
// Pool.

/// `POOL_FLAG_NON_PAGED`.
const POOL_FLAG_NON_PAGED: u64 = 0x40;

pub(crate) fn pool_alloc(size: usize, tag: u32) -> *mut c_void {
    // SAFETY: no pointer arguments; NULL on failure.
    unsafe { ntddk::ExAllocatePool2(POOL_FLAG_NON_PAGED, size as u64, tag) }
}

pub(crate) unsafe fn pool_free(p: *mut c_void, tag: u32) {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::ExFreePoolWithTag(p, tag) }
}

// ---------------------------------------------------------------------------------------------
// Layout facts (issue 6, item 4): the size and every field offset this file relies on, checked
// at compile time against `shared/spec/x64-layouts.md`, so that a binding that drifts (another
// wdk-sys or header version) fails to build instead of corrupting memory. The sizes are those
// of the objects the crate embeds in its own structures; DEVICE_OBJECT's size is not asserted
// (the WDK's is 336, the mingw-w64 headers' 328, see the spec's errata; the seam never
// allocates one).
mod layout_facts {
    use core::mem::{offset_of, size_of};

    use static_assertions::const_assert_eq;
    use wdk_sys::{
        DEVICE_OBJECT, DRIVER_OBJECT, IO_CSQ, IO_CSQ_IRP_CONTEXT, IO_REMOVE_LOCK,
        IO_STACK_LOCATION, IO_STATUS_BLOCK, IRP, KDPC, KEVENT, KSEMAPHORE, KSPIN_LOCK, KTIMER,
        LIST_ENTRY,
    };

    const_assert_eq!(size_of::<LIST_ENTRY>(), 16);
    const_assert_eq!(offset_of!(LIST_ENTRY, Blink), 8);
    const_assert_eq!(size_of::<IO_STATUS_BLOCK>(), 16);
    const_assert_eq!(offset_of!(IO_STATUS_BLOCK, Information), 8);

    const_assert_eq!(size_of::<IRP>(), 208);
    const_assert_eq!(offset_of!(IRP, AssociatedIrp), 24);
    const_assert_eq!(offset_of!(IRP, IoStatus), 48);
    const_assert_eq!(offset_of!(IRP, RequestorMode), 64);
    const_assert_eq!(offset_of!(IRP, PendingReturned), 65);
    const_assert_eq!(offset_of!(IRP, StackCount), 66);
    const_assert_eq!(offset_of!(IRP, CurrentLocation), 67);
    const_assert_eq!(offset_of!(IRP, Cancel), 68);
    const_assert_eq!(offset_of!(IRP, CancelIrql), 69);
    const_assert_eq!(offset_of!(IRP, CancelRoutine), 0x68);
    const_assert_eq!(
        offset_of!(
            IRP,
            Tail.Overlay.__bindgen_anon_1.__bindgen_anon_1.DriverContext
        ),
        0x78
    );
    const_assert_eq!(offset_of!(IRP, Tail.Overlay.Thread), 152);
    const_assert_eq!(
        offset_of!(IRP, Tail.Overlay.__bindgen_anon_2.ListEntry),
        0xA8
    );
    const_assert_eq!(
        offset_of!(
            IRP,
            Tail.Overlay
                .__bindgen_anon_2
                .__bindgen_anon_1
                .CurrentStackLocation
        ),
        0xB8
    );
    const_assert_eq!(offset_of!(IRP, Tail.Overlay.OriginalFileObject), 192);

    const_assert_eq!(size_of::<IO_STACK_LOCATION>(), 0x48);
    const_assert_eq!(offset_of!(IO_STACK_LOCATION, MajorFunction), 0);
    const_assert_eq!(offset_of!(IO_STACK_LOCATION, MinorFunction), 1);
    const_assert_eq!(offset_of!(IO_STACK_LOCATION, Control), 3);
    const_assert_eq!(offset_of!(IO_STACK_LOCATION, Parameters), 8);
    const_assert_eq!(
        offset_of!(
            IO_STACK_LOCATION,
            Parameters.DeviceIoControl.OutputBufferLength
        ),
        8
    );
    const_assert_eq!(
        offset_of!(
            IO_STACK_LOCATION,
            Parameters.DeviceIoControl.InputBufferLength
        ),
        0x10
    );
    const_assert_eq!(
        offset_of!(IO_STACK_LOCATION, Parameters.DeviceIoControl.IoControlCode),
        0x18
    );
    const_assert_eq!(
        offset_of!(
            IO_STACK_LOCATION,
            Parameters.DeviceIoControl.Type3InputBuffer
        ),
        32
    );
    const_assert_eq!(offset_of!(IO_STACK_LOCATION, DeviceObject), 40);
    const_assert_eq!(offset_of!(IO_STACK_LOCATION, FileObject), 48);
    const_assert_eq!(offset_of!(IO_STACK_LOCATION, CompletionRoutine), 56);
    const_assert_eq!(offset_of!(IO_STACK_LOCATION, Context), 64);

    const_assert_eq!(offset_of!(DEVICE_OBJECT, DriverObject), 8);
    const_assert_eq!(offset_of!(DEVICE_OBJECT, NextDevice), 16);
    const_assert_eq!(offset_of!(DEVICE_OBJECT, Flags), 48);
    const_assert_eq!(offset_of!(DEVICE_OBJECT, DeviceExtension), 64);
    const_assert_eq!(offset_of!(DEVICE_OBJECT, StackSize), 76);

    const_assert_eq!(size_of::<DRIVER_OBJECT>(), 336);
    const_assert_eq!(offset_of!(DRIVER_OBJECT, DeviceObject), 8);
    const_assert_eq!(offset_of!(DRIVER_OBJECT, DriverStartIo), 96);
    const_assert_eq!(offset_of!(DRIVER_OBJECT, DriverUnload), 104);
    const_assert_eq!(offset_of!(DRIVER_OBJECT, MajorFunction), 112);

    const_assert_eq!(size_of::<IO_CSQ>(), 64);
    const_assert_eq!(offset_of!(IO_CSQ, CsqInsertIrp), 8);
    const_assert_eq!(offset_of!(IO_CSQ, CsqRemoveIrp), 16);
    const_assert_eq!(offset_of!(IO_CSQ, CsqPeekNextIrp), 24);
    const_assert_eq!(offset_of!(IO_CSQ, CsqAcquireLock), 32);
    const_assert_eq!(offset_of!(IO_CSQ, CsqReleaseLock), 40);
    const_assert_eq!(offset_of!(IO_CSQ, CsqCompleteCanceledIrp), 48);
    const_assert_eq!(offset_of!(IO_CSQ, ReservePointer), 56);
    const_assert_eq!(size_of::<IO_CSQ_IRP_CONTEXT>(), 24);
    const_assert_eq!(offset_of!(IO_CSQ_IRP_CONTEXT, Irp), 8);
    const_assert_eq!(offset_of!(IO_CSQ_IRP_CONTEXT, Csq), 16);

    const_assert_eq!(size_of::<KEVENT>(), 24);
    const_assert_eq!(size_of::<KSEMAPHORE>(), 32);
    const_assert_eq!(offset_of!(KSEMAPHORE, Limit), 24);
    const_assert_eq!(size_of::<KTIMER>(), 64);
    const_assert_eq!(offset_of!(KTIMER, Dpc), 48);
    const_assert_eq!(size_of::<KDPC>(), 64);
    const_assert_eq!(offset_of!(KDPC, DeferredRoutine), 24);
    const_assert_eq!(offset_of!(KDPC, DeferredContext), 32);
    const_assert_eq!(size_of::<KSPIN_LOCK>(), 8);
    const_assert_eq!(size_of::<IO_REMOVE_LOCK>(), 32);
}
