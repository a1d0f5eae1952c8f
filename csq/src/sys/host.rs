//! The seam over ntsim (`cfg(not(windows))`): the same surface as `wdk.rs`, implemented by the
//! user-mode model of the kernel. ntsim's objects have the real Windows x64 layouts, so the
//! field accesses here are the ones `wdk.rs` makes on Windows.

use core::ffi::c_void;
use core::ptr;

use ntsim::ntdef as nt;

use crate::device::DeviceAccess;

use super::{
    CsqCallbacks, DispatchCancelFn, DispatchFn, DpcFn, DriverBug, Kirql, Ntstatus, StartIoFn,
    ThreadStartFn, UnloadFn,
};

pub(crate) use nt::{
    DEVICE_OBJECT as DeviceObject, DRIVER_OBJECT as DriverObject, ETHREAD as KThread,
    FILE_OBJECT as FileObject, IO_CSQ as IoCsq, IO_CSQ_IRP_CONTEXT as CsqIrpContext,
    IO_REMOVE_LOCK as RemoveLockObject, IRP as Irp, KDPC as KDpc, KEVENT as KEvent,
    KSEMAPHORE as KSemaphore, KSPIN_LOCK as KSpinLock, KTIMER as KTimer, LIST_ENTRY as ListEntry,
};

/// `DriverEntry` as ntsim's `load_driver` calls it.
pub(crate) type DriverEntryFn =
    unsafe extern "system" fn(driver: *mut DriverObject, registry_path: RegistryPath) -> Ntstatus;
/// The registry path argument of `DriverEntry`.
pub(crate) type RegistryPath = *mut nt::UNICODE_STRING;

/// `Executive`, the wait reason drivers use.
const EXECUTIVE: u32 = 0;

// ---------------------------------------------------------------------------------------------
// IRPs.

/// The current stack location, copied out.
///
/// # Safety
/// `irp` is a live IRP with a current stack location.
unsafe fn current_stack_location(irp: *mut Irp) -> nt::IO_STACK_LOCATION {
    // SAFETY: the caller guarantees a live IRP.
    let sl = unsafe { ntsim::irp::IoGetCurrentIrpStackLocation(irp) };
    // SAFETY: a live IRP's current stack location is readable.
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
    // SAFETY: every member of the Parameters union is plain integers and pointers, so reading
    // the DeviceIoControl view is defined whatever the request is.
    let p = unsafe { sl.Parameters.DeviceIoControl };
    (p.IoControlCode, p.InputBufferLength, p.OutputBufferLength)
}

pub(crate) unsafe fn irp_system_buffer(irp: *mut Irp) -> *mut u8 {
    // SAFETY: the caller guarantees a live IRP.
    let assoc = unsafe { (*irp).AssociatedIrp };
    // SAFETY: all members of the union are pointer-sized plain data.
    unsafe { assoc.SystemBuffer }.cast()
}

pub(crate) unsafe fn irp_file_object(irp: *mut Irp) -> *mut FileObject {
    // SAFETY: forwarded caller contract.
    unsafe { current_stack_location(irp) }.FileObject
}

pub(crate) unsafe fn irp_requestor_mode(irp: *mut Irp) -> i8 {
    // SAFETY: the caller guarantees a live IRP.
    unsafe { (*irp).RequestorMode }
}

pub(crate) unsafe fn irp_cancel_flag(irp: *mut Irp) -> bool {
    // SAFETY: the caller guarantees a live IRP; address only.
    let cancel = unsafe { &raw const (*irp).Cancel };
    // SAFETY: IoCancelIrp may write the byte concurrently, so read it once, volatile.
    unsafe { ptr::read_volatile(cancel) != 0 }
}

pub(crate) unsafe fn irp_is_marked_pending(irp: *mut Irp) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { current_stack_location(irp) }.Control & nt::SL_PENDING_RETURNED != 0
}

pub(crate) unsafe fn irp_mark_pending(irp: *mut Irp) {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::irp::IoMarkIrpPending(irp) }
}

pub(crate) unsafe fn irp_set_cancel_routine(
    irp: *mut Irp,
    routine: Option<DispatchCancelFn>,
) -> Option<DispatchCancelFn> {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::cancel::IoSetCancelRoutine(irp, routine) }
}

pub(crate) unsafe fn irp_complete(irp: *mut Irp, status: Ntstatus, information: usize) {
    // SAFETY: the caller owns the IRP.
    unsafe { (*irp).IoStatus = nt::IO_STATUS_BLOCK::new(status, information) };
    // SAFETY: the caller owns the IRP, its cancel routine is NULL and no lock is held.
    unsafe { ntsim::complete::IoCompleteRequest(irp, nt::IO_NO_INCREMENT) }
}

pub(crate) fn irp_list_entry(irp: *mut Irp) -> *mut ListEntry {
    Irp::list_entry_ptr(irp)
}

pub(crate) fn irp_from_list_entry(entry: *mut ListEntry) -> *mut Irp {
    Irp::from_list_entry(entry)
}

pub(crate) fn irp_driver_context(irp: *mut Irp, index: usize) -> *mut *mut c_void {
    Irp::driver_context_ptr(irp, index)
}

// ---------------------------------------------------------------------------------------------
// Lists: the same inline routines as on Windows.

pub(crate) unsafe fn list_init(head: *mut ListEntry) {
    // SAFETY: the caller guarantees `head` is writable.
    unsafe {
        head.write(ListEntry {
            Flink: head,
            Blink: head,
        })
    }
}

pub(crate) unsafe fn list_is_empty(head: *mut ListEntry) -> bool {
    // SAFETY: the caller guarantees an initialized head.
    unsafe { (*head).Flink == head }
}

pub(crate) unsafe fn list_next(entry: *mut ListEntry) -> *mut ListEntry {
    // SAFETY: the caller guarantees a linked entry.
    unsafe { (*entry).Flink }
}

pub(crate) unsafe fn list_insert_tail(head: *mut ListEntry, entry: *mut ListEntry) {
    // SAFETY: the caller guarantees a linked `head` and an unlinked `entry`, under its lock.
    let blink = unsafe { (*head).Blink };
    // SAFETY: as above.
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
    // SAFETY: the caller guarantees a linked entry, under its lock.
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
        ntsim::csq::IoCsqInitializeEx(
            csq,
            Some(cb.insert),
            Some(cb.remove),
            Some(cb.peek_next),
            Some(cb.acquire_lock),
            Some(cb.release_lock),
            Some(cb.complete_canceled),
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
    unsafe { ntsim::csq::IoCsqInsertIrpEx(csq, irp, context, insert_context) }
}

pub(crate) unsafe fn csq_remove_irp(csq: *mut IoCsq, context: *mut CsqIrpContext) -> *mut Irp {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::csq::IoCsqRemoveIrp(csq, context) }
}

pub(crate) unsafe fn csq_remove_next_irp(csq: *mut IoCsq, peek_context: *mut c_void) -> *mut Irp {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::csq::IoCsqRemoveNextIrp(csq, peek_context) }
}

// ---------------------------------------------------------------------------------------------
// IRQL and spin locks.

pub(crate) fn current_irql() -> Kirql {
    ntsim::irql::KeGetCurrentIrql()
}

pub(crate) unsafe fn spin_lock_init(lock: *mut KSpinLock) {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::spinlock::KeInitializeSpinLock(lock) }
}

pub(crate) unsafe fn spin_lock_acquire(lock: *mut KSpinLock) -> Kirql {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::spinlock::KeAcquireSpinLockRaiseToDpc(lock) }
}

pub(crate) unsafe fn spin_lock_release(lock: *mut KSpinLock, irql: Kirql) {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::spinlock::KeReleaseSpinLock(lock, irql) }
}

pub(crate) unsafe fn spin_lock_acquire_at_dpc(lock: *mut KSpinLock) {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::spinlock::KeAcquireSpinLockAtDpcLevel(lock) }
}

pub(crate) unsafe fn spin_lock_release_from_dpc(lock: *mut KSpinLock) {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::spinlock::KeReleaseSpinLockFromDpcLevel(lock) }
}

// ---------------------------------------------------------------------------------------------
// Dispatcher objects and waits.

pub(crate) unsafe fn event_init(event: *mut KEvent, notification: bool, signaled: bool) {
    let kind = if notification {
        nt::NotificationEvent
    } else {
        nt::SynchronizationEvent
    };
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::event::KeInitializeEvent(event, kind, u8::from(signaled)) }
}

pub(crate) unsafe fn event_set(event: *mut KEvent) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::event::KeSetEvent(event, 0, 0) != 0 }
}

pub(crate) unsafe fn event_reset(event: *mut KEvent) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::event::KeResetEvent(event) != 0 }
}

pub(crate) unsafe fn event_read(event: *mut KEvent) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::event::KeReadStateEvent(event) != 0 }
}

pub(crate) unsafe fn semaphore_init(sem: *mut KSemaphore, count: i32, limit: i32) {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::semaphore::KeInitializeSemaphore(sem, count, limit) }
}

pub(crate) unsafe fn semaphore_release(sem: *mut KSemaphore, adjustment: i32) -> i32 {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::semaphore::KeReleaseSemaphore(sem, 0, adjustment, 0) }
}

pub(crate) unsafe fn semaphore_read(sem: *mut KSemaphore) -> i32 {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::semaphore::KeReadStateSemaphore(sem) }
}

fn timeout_ptr(timeout: &mut Option<i64>) -> *mut i64 {
    match timeout {
        Some(t) => t,
        None => ptr::null_mut(),
    }
}

pub(crate) unsafe fn wait_single(object: *mut c_void, mut timeout: Option<i64>) -> Ntstatus {
    let t = timeout_ptr(&mut timeout);
    // SAFETY: forwarded caller contract; `t` is null or points to a live i64.
    unsafe { ntsim::wait::KeWaitForSingleObject(object, EXECUTIVE, nt::KernelMode, 0, t) }
}

pub(crate) unsafe fn wait_any(objects: &[*mut c_void], mut timeout: Option<i64>) -> Ntstatus {
    let t = timeout_ptr(&mut timeout);
    // SAFETY: forwarded caller contract; at most THREAD_WAIT_OBJECTS, so no wait block array.
    unsafe {
        ntsim::wait::KeWaitForMultipleObjects(
            objects.len() as u32,
            objects.as_ptr(),
            ntsim::wait::WaitAny,
            EXECUTIVE,
            nt::KernelMode,
            0,
            t,
            ptr::null_mut(),
        )
    }
}

pub(crate) fn delay(mut interval: i64) {
    // SAFETY: `interval` is a live i64.
    unsafe { ntsim::wait::KeDelayExecutionThread(nt::KernelMode, 0, &mut interval) };
}

pub(crate) unsafe fn timer_init(timer: *mut KTimer, notification: bool) {
    let kind = if notification {
        nt::NotificationTimer
    } else {
        nt::SynchronizationTimer
    };
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::timer::KeInitializeTimerEx(timer, kind) }
}

pub(crate) unsafe fn timer_set(
    timer: *mut KTimer,
    due: i64,
    period_ms: i32,
    dpc: *mut KDpc,
) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::timer::KeSetTimerEx(timer, due, period_ms, dpc) != 0 }
}

pub(crate) unsafe fn timer_cancel(timer: *mut KTimer) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::timer::KeCancelTimer(timer) != 0 }
}

pub(crate) unsafe fn timer_read(timer: *mut KTimer) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::timer::KeReadStateTimer(timer) != 0 }
}

pub(crate) unsafe fn dpc_init(dpc: *mut KDpc, routine: DpcFn, context: *mut c_void) {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::dpc::KeInitializeDpc(dpc, Some(routine), context) }
}

pub(crate) unsafe fn dpc_insert(dpc: *mut KDpc) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::dpc::KeInsertQueueDpc(dpc, ptr::null_mut(), ptr::null_mut()) != 0 }
}

pub(crate) unsafe fn dpc_remove(dpc: *mut KDpc) -> bool {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::dpc::KeRemoveQueueDpc(dpc) != 0 }
}

pub(crate) fn flush_queued_dpcs() {
    ntsim::dpc::KeFlushQueuedDpcs();
}

// ---------------------------------------------------------------------------------------------
// Threads and objects.

pub(crate) unsafe fn thread_create(
    start: ThreadStartFn,
    context: *mut c_void,
) -> Result<*mut KThread, Ntstatus> {
    let mut handle: nt::HANDLE = ptr::null_mut();
    // SAFETY: `handle` is writable; the caller guarantees `start`/`context`.
    let status = unsafe {
        ntsim::thread::PsCreateSystemThread(
            &mut handle,
            nt::SYNCHRONIZE,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            Some(start),
            context,
        )
    };
    if !nt::NT_SUCCESS(status) {
        return Err(status);
    }
    let mut object: nt::PVOID = ptr::null_mut();
    // SAFETY: `handle` is the kernel handle just returned; `object` is writable.
    let status = unsafe {
        ntsim::object::ObReferenceObjectByHandle(
            handle,
            nt::SYNCHRONIZE,
            ntsim::object::PsThreadType(),
            nt::KernelMode,
            &mut object,
            ptr::null_mut(),
        )
    };
    ntsim::object::ZwClose(handle);
    if nt::NT_SUCCESS(status) {
        Ok(object.cast())
    } else {
        Err(status)
    }
}

pub(crate) unsafe fn object_dereference(object: *mut c_void) {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::object::ObDereferenceObject(object) }
}

pub(crate) fn event_reference_by_handle(handle: usize, mode: i8) -> Result<*mut KEvent, Ntstatus> {
    let mut object: nt::PVOID = ptr::null_mut();
    // SAFETY: `object` is writable; a bad handle is reported by status, not by a fault.
    let status = unsafe {
        ntsim::object::ObReferenceObjectByHandle(
            handle as nt::HANDLE,
            nt::SYNCHRONIZE | nt::EVENT_MODIFY_STATE,
            ntsim::object::ExEventObjectType(),
            mode,
            &mut object,
            ptr::null_mut(),
        )
    };
    if nt::NT_SUCCESS(status) {
        Ok(object.cast())
    } else {
        Err(status)
    }
}

// ---------------------------------------------------------------------------------------------
// Drivers and devices.

/// A UNICODE_STRING over `s` (valid while `s` is).
fn unicode(s: &[u16]) -> nt::UNICODE_STRING {
    let bytes = (s.len() * 2) as u16;
    nt::UNICODE_STRING {
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
    access: DeviceAccess,
) -> Result<*mut DeviceObject, Ntstatus> {
    let mut name = unicode(name);
    // ntsim records the SDDL string that IoCreateDeviceSecure would be given; wdk.rs sets the
    // same DACL from `access.aces()`.
    let mut sddl = unicode(access.sddl_utf16());
    let mut device: *mut DeviceObject = ptr::null_mut();
    // SAFETY: the strings and `device` are live locals; the caller guarantees `driver`.
    let status = unsafe {
        ntsim::driver::IoCreateDeviceSecure(
            driver,
            extension_size,
            &mut name,
            device_type,
            characteristics,
            u8::from(exclusive),
            &mut sddl,
            ptr::null_mut(),
            &mut device,
        )
    };
    if nt::NT_SUCCESS(status) {
        Ok(device)
    } else {
        Err(status)
    }
}

pub(crate) unsafe fn device_extension(device: *mut DeviceObject) -> *mut c_void {
    // SAFETY: the caller guarantees a live device object.
    unsafe { (*device).DeviceExtension }
}

pub(crate) unsafe fn device_finish_init(device: *mut DeviceObject, buffered_io: bool) {
    // SAFETY: the caller guarantees its own device object, not yet visible to I/O.
    let flags = unsafe { &mut (*device).Flags };
    if buffered_io {
        *flags |= nt::DO_BUFFERED_IO;
    }
    *flags &= !nt::DO_DEVICE_INITIALIZING;
}

pub(crate) unsafe fn device_delete(device: *mut DeviceObject) {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::driver::IoDeleteDevice(device) }
}

pub(crate) unsafe fn driver_first_device(driver: *mut DriverObject) -> *mut DeviceObject {
    // SAFETY: the caller guarantees its own driver object.
    unsafe { (*driver).DeviceObject }
}

pub(crate) fn symbolic_link_create(link: &[u16], target: &[u16]) -> Ntstatus {
    let mut link = unicode(link);
    let mut target = unicode(target);
    // SAFETY: both strings are live locals.
    unsafe { ntsim::driver::IoCreateSymbolicLink(&mut link, &mut target) }
}

pub(crate) fn symbolic_link_delete(link: &[u16]) -> Ntstatus {
    let mut link = unicode(link);
    // SAFETY: the string is a live local.
    unsafe { ntsim::driver::IoDeleteSymbolicLink(&mut link) }
}

pub(crate) unsafe fn driver_set_dispatch(
    driver: *mut DriverObject,
    major: usize,
    routine: DispatchFn,
) {
    // SAFETY: the caller guarantees its own driver object during DriverEntry.
    unsafe { (*driver).MajorFunction[major] = Some(routine) }
}

pub(crate) unsafe fn driver_set_unload(driver: *mut DriverObject, routine: UnloadFn) {
    // SAFETY: as above.
    unsafe { (*driver).DriverUnload = Some(routine) }
}

// ---------------------------------------------------------------------------------------------
// IoStartPacket / StartIo and the cancel spin lock.

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
    unsafe { ntsim::spinlock::IoAcquireCancelSpinLock(&mut old) };
    old
}

pub(crate) unsafe fn cancel_lock_release(irql: Kirql) {
    ntsim::spinlock::IoReleaseCancelSpinLock(irql);
}

pub(crate) fn irql_raise_to_dispatch() -> Kirql {
    ntsim::irql::KfRaiseIrql(nt::DISPATCH_LEVEL)
}

pub(crate) unsafe fn irql_lower(irql: Kirql) {
    ntsim::irql::KeLowerIrql(irql);
}

pub(crate) unsafe fn device_queue_remove_irp(device: *mut DeviceObject, irp: *mut Irp) -> bool {
    // SAFETY: the caller guarantees a live device object; address only.
    let queue = unsafe { &raw mut (*device).DeviceQueue };
    // SAFETY: the device's queue and the IRP's entry, both live (caller contract).
    unsafe {
        ntsim::device_queue::KeRemoveEntryDeviceQueue(queue, Irp::device_queue_entry_ptr(irp)) != 0
    }
}

pub(crate) unsafe fn device_queue_next_irp(device: *mut DeviceObject, after: *mut Irp) -> *mut Irp {
    // SAFETY: the caller guarantees a live device object; address only.
    let head = unsafe { &raw mut (*device).DeviceQueue.DeviceListHead };
    // `DeviceListEntry` is the first field of KDEVICE_QUEUE_ENTRY.
    let from = if after.is_null() {
        head
    } else {
        Irp::device_queue_entry_ptr(after).cast::<nt::LIST_ENTRY>()
    };
    // SAFETY: a linked entry of the queue, stable under the cancel spin lock (caller contract).
    let next = unsafe { (*from).Flink };
    if next == head {
        ptr::null_mut()
    } else {
        Irp::from_device_queue_entry(next.cast())
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
    // SAFETY: forwarded caller contract; `key_ptr` is null or a live local.
    unsafe { ntsim::startio::IoStartPacket(device, irp, key_ptr, Some(cancel)) }
}

pub(crate) unsafe fn start_next_packet(device: *mut DeviceObject, cancelable: bool) {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::startio::IoStartNextPacket(device, u8::from(cancelable)) }
}

pub(crate) unsafe fn set_start_io_attributes(
    device: *mut DeviceObject,
    deferred: bool,
    non_cancelable: bool,
) {
    // SAFETY: forwarded caller contract.
    unsafe {
        ntsim::startio::IoSetStartIoAttributes(device, u8::from(deferred), u8::from(non_cancelable))
    }
}

pub(crate) unsafe fn driver_set_start_io(driver: *mut DriverObject, routine: StartIoFn) {
    // SAFETY: the caller guarantees its own driver object.
    unsafe { (*driver).DriverStartIo = Some(routine) }
}

pub(crate) unsafe fn device_driver(device: *mut DeviceObject) -> *mut DriverObject {
    // SAFETY: the caller guarantees a live device object.
    unsafe { (*device).DriverObject }
}

// ---------------------------------------------------------------------------------------------
// Remove locks.

pub(crate) unsafe fn remove_lock_init(lock: *mut RemoveLockObject, tag: u32) {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::remove_lock::IoInitializeRemoveLock(lock, tag, 0, 0) }
}

pub(crate) unsafe fn remove_lock_acquire(lock: *mut RemoveLockObject) -> Ntstatus {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::remove_lock::IoAcquireRemoveLock(lock, ptr::null_mut()) }
}

pub(crate) unsafe fn remove_lock_release(lock: *mut RemoveLockObject) {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::remove_lock::IoReleaseRemoveLock(lock, ptr::null_mut()) }
}

pub(crate) unsafe fn remove_lock_release_and_wait(lock: *mut RemoveLockObject) {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::remove_lock::IoReleaseRemoveLockAndWait(lock, ptr::null_mut()) }
}

// ---------------------------------------------------------------------------------------------
// Diagnostics.

pub(crate) fn report_driver_bug(bug: DriverBug, irp: *mut Irp, message: &str) {
    let rule = match bug {
        DriverBug::IrpDropped => ntsim::Rule::IrpDropped,
        DriverBug::TicketDropped => ntsim::Rule::TicketDropped,
    };
    if irp.is_null() {
        ntsim::driver_bugs::report_driver_bug(rule, message);
    } else {
        ntsim::driver_bugs::report_irp_bug(rule, irp, message);
    }
}

pub(crate) fn debug_print(message: &str) {
    ntsim::driver_bugs::debug_print(message);
}

pub(crate) fn control_point(name: &'static str) {
    ntsim::breakpoint::named_point(name);
}

// ---------------------------------------------------------------------------------------------
// Pool.

pub(crate) fn pool_alloc(size: usize, tag: u32) -> *mut c_void {
    ntsim::pool::ExAllocatePool2(ntsim::pool::POOL_FLAG_NON_PAGED, size, tag)
}

pub(crate) unsafe fn pool_free(p: *mut c_void, tag: u32) {
    // SAFETY: forwarded caller contract.
    unsafe { ntsim::pool::ExFreePoolWithTag(p, tag) }
}
