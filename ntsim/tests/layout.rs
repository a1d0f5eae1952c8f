//! Checks the Windows x64 layouts in `ntsim::ntdef` against `spec/x64-layouts.md`.
#![allow(non_snake_case)]

use core::mem::{align_of, offset_of, size_of};

use ntsim::ntdef::*;

#[test]
fn basic_types() {
    assert_eq!(size_of::<NTSTATUS>(), 4);
    assert_eq!(size_of::<KSPIN_LOCK>(), 8);
    assert_eq!(size_of::<LARGE_INTEGER>(), 8);
    assert_eq!(align_of::<LARGE_INTEGER>(), 8);
    assert_eq!(size_of::<PVOID>(), 8);
}

#[test]
fn list_entry() {
    assert_eq!(size_of::<LIST_ENTRY>(), 16);
    assert_eq!(offset_of!(LIST_ENTRY, Flink), 0);
    assert_eq!(offset_of!(LIST_ENTRY, Blink), 8);
    assert_eq!(size_of::<SINGLE_LIST_ENTRY>(), 8);
}

#[test]
fn unicode_string() {
    assert_eq!(size_of::<UNICODE_STRING>(), 16);
    assert_eq!(offset_of!(UNICODE_STRING, Length), 0);
    assert_eq!(offset_of!(UNICODE_STRING, MaximumLength), 2);
    assert_eq!(offset_of!(UNICODE_STRING, Buffer), 8);
}

#[test]
fn io_status_block() {
    assert_eq!(size_of::<IO_STATUS_BLOCK>(), 16);
    assert_eq!(offset_of!(IO_STATUS_BLOCK, u.Status), 0);
    assert_eq!(offset_of!(IO_STATUS_BLOCK, u.Pointer), 0);
    assert_eq!(offset_of!(IO_STATUS_BLOCK, Information), 8);
    let iosb = IO_STATUS_BLOCK::new(STATUS_CANCELLED, 7);
    assert_eq!(iosb.status(), STATUS_CANCELLED);
    assert_eq!(iosb.Information, 7);
}

#[test]
fn irp() {
    assert_eq!(size_of::<IRP>(), 0xD0);
    assert_eq!(align_of::<IRP>(), 8);
    assert_eq!(offset_of!(IRP, Type), 0);
    assert_eq!(offset_of!(IRP, Size), 2);
    assert_eq!(offset_of!(IRP, AllocationProcessorNumber), 4);
    assert_eq!(offset_of!(IRP, Reserved), 6);
    assert_eq!(offset_of!(IRP, MdlAddress), 8);
    assert_eq!(offset_of!(IRP, Flags), 16);
    assert_eq!(offset_of!(IRP, AssociatedIrp), 24);
    assert_eq!(offset_of!(IRP, AssociatedIrp.SystemBuffer), 24);
    assert_eq!(offset_of!(IRP, AssociatedIrp.MasterIrp), 24);
    assert_eq!(offset_of!(IRP, AssociatedIrp.IrpCount), 24);
    assert_eq!(offset_of!(IRP, ThreadListEntry), 32);
    assert_eq!(offset_of!(IRP, IoStatus), 48);
    assert_eq!(offset_of!(IRP, IoStatus.u.Status), 48);
    assert_eq!(offset_of!(IRP, IoStatus.Information), 56);
    assert_eq!(offset_of!(IRP, RequestorMode), 64);
    assert_eq!(offset_of!(IRP, PendingReturned), 65);
    assert_eq!(offset_of!(IRP, StackCount), 66);
    assert_eq!(offset_of!(IRP, CurrentLocation), 67);
    assert_eq!(offset_of!(IRP, Cancel), 68);
    assert_eq!(offset_of!(IRP, CancelIrql), 69);
    assert_eq!(offset_of!(IRP, ApcEnvironment), 70);
    assert_eq!(offset_of!(IRP, AllocationFlags), 71);
    assert_eq!(offset_of!(IRP, UserIosb), 72);
    assert_eq!(offset_of!(IRP, UserEvent), 80);
    assert_eq!(offset_of!(IRP, Overlay), 88);
    assert_eq!(
        offset_of!(IRP, Overlay.AsynchronousParameters.UserApcRoutine),
        88
    );
    assert_eq!(
        offset_of!(IRP, Overlay.AsynchronousParameters.UserApcContext),
        96
    );
    assert_eq!(offset_of!(IRP, Overlay.AllocationSize), 88);
    assert_eq!(offset_of!(IRP, CancelRoutine), 0x68);
    assert_eq!(offset_of!(IRP, UserBuffer), 112);
    assert_eq!(offset_of!(IRP, Tail), 120);
}

#[test]
fn irp_tail_overlay() {
    assert_eq!(size_of::<IRP_TAIL>(), 88);
    assert_eq!(size_of::<KAPC>(), 88);
    assert_eq!(offset_of!(IRP, Tail.Overlay.DeviceQueue), 0x78);
    assert_eq!(
        offset_of!(IRP, Tail.Overlay.DeviceQueue.DeviceQueueEntry),
        120
    );
    assert_eq!(offset_of!(IRP, Tail.Overlay.DeviceQueue.DriverContext), 120);
    let driver_context_3 =
        offset_of!(IRP, Tail.Overlay.DeviceQueue.DriverContext) + 3 * size_of::<PVOID>();
    assert_eq!(driver_context_3, 144);
    assert_eq!(offset_of!(IRP, Tail.Overlay.Thread), 152);
    assert_eq!(offset_of!(IRP, Tail.Overlay.AuxiliaryBuffer), 160);
    assert_eq!(offset_of!(IRP, Tail.Overlay.ListEntry), 0xA8);
    assert_eq!(offset_of!(IRP, Tail.Overlay.CurrentStackLocation), 0xB8);
    assert_eq!(offset_of!(IRP, Tail.Overlay.OriginalFileObject), 192);
    assert_eq!(offset_of!(IRP, Tail.Apc), 120);
    assert_eq!(offset_of!(IRP, Tail.CompletionKey), 120);
}

#[test]
fn irp_field_pointer_helpers() {
    let mut irp = IRP::zeroed();
    let p = &raw mut irp;
    let base = p as usize;
    assert_eq!(IRP::driver_context_ptr(p, 0) as usize - base, 120);
    assert_eq!(IRP::driver_context_ptr(p, 3) as usize - base, 144);
    assert_eq!(IRP::device_queue_entry_ptr(p) as usize - base, 120);
    assert_eq!(IRP::list_entry_ptr(p) as usize - base, 0xA8);
    assert_eq!(IRP::current_stack_location_ptr(p) as usize - base, 0xB8);
    assert_eq!(IRP::original_file_object_ptr(p) as usize - base, 192);
    assert_eq!(IRP::from_list_entry(IRP::list_entry_ptr(p)), p);
    assert_eq!(
        IRP::from_device_queue_entry(IRP::device_queue_entry_ptr(p)),
        p
    );

    // SAFETY: the pointer addresses DriverContext[3] of the live `irp`.
    unsafe { IRP::driver_context_ptr(p, 3).write(0x55 as PVOID) };
    // SAFETY: the IRP was zeroed, so every member of `Tail` is initialized.
    let overlay = unsafe { irp.Tail.Overlay };
    // SAFETY: as above; `DriverContext` covers the whole union.
    let context = unsafe { overlay.DeviceQueue.DriverContext };
    assert_eq!(context[3] as usize, 0x55);
}

#[test]
fn io_stack_location() {
    assert_eq!(size_of::<IO_STACK_LOCATION>(), 0x48);
    assert_eq!(offset_of!(IO_STACK_LOCATION, MajorFunction), 0);
    assert_eq!(offset_of!(IO_STACK_LOCATION, MinorFunction), 1);
    assert_eq!(offset_of!(IO_STACK_LOCATION, Flags), 2);
    assert_eq!(offset_of!(IO_STACK_LOCATION, Control), 3);
    assert_eq!(offset_of!(IO_STACK_LOCATION, Parameters), 8);
    assert_eq!(offset_of!(IO_STACK_LOCATION, DeviceObject), 40);
    assert_eq!(offset_of!(IO_STACK_LOCATION, FileObject), 48);
    assert_eq!(offset_of!(IO_STACK_LOCATION, CompletionRoutine), 56);
    assert_eq!(offset_of!(IO_STACK_LOCATION, Context), 64);
    assert_eq!(size_of::<IO_STACK_LOCATION_PARAMETERS>(), 32);
    assert_eq!(align_of::<IO_STACK_LOCATION_PARAMETERS>(), 8);
}

#[test]
fn io_stack_location_device_io_control() {
    assert_eq!(
        offset_of!(
            IO_STACK_LOCATION,
            Parameters.DeviceIoControl.OutputBufferLength
        ),
        8
    );
    assert_eq!(
        offset_of!(
            IO_STACK_LOCATION,
            Parameters.DeviceIoControl.InputBufferLength
        ),
        0x10
    );
    assert_eq!(
        offset_of!(IO_STACK_LOCATION, Parameters.DeviceIoControl.IoControlCode),
        0x18
    );
    assert_eq!(
        offset_of!(
            IO_STACK_LOCATION,
            Parameters.DeviceIoControl.Type3InputBuffer
        ),
        32
    );
}

#[test]
fn io_stack_location_read_write_create_others() {
    assert_eq!(offset_of!(IO_STACK_LOCATION, Parameters.Read.Length), 8);
    assert_eq!(offset_of!(IO_STACK_LOCATION, Parameters.Read.Key), 16);
    assert_eq!(offset_of!(IO_STACK_LOCATION, Parameters.Read.Flags), 20);
    assert_eq!(
        offset_of!(IO_STACK_LOCATION, Parameters.Read.ByteOffset),
        24
    );
    assert_eq!(offset_of!(IO_STACK_LOCATION, Parameters.Write.Length), 8);
    assert_eq!(offset_of!(IO_STACK_LOCATION, Parameters.Write.Key), 16);
    assert_eq!(
        offset_of!(IO_STACK_LOCATION, Parameters.Write.ByteOffset),
        24
    );
    assert_eq!(
        offset_of!(IO_STACK_LOCATION, Parameters.Create.SecurityContext),
        8
    );
    assert_eq!(offset_of!(IO_STACK_LOCATION, Parameters.Create.Options), 16);
    assert_eq!(
        offset_of!(IO_STACK_LOCATION, Parameters.Create.FileAttributes),
        24
    );
    assert_eq!(
        offset_of!(IO_STACK_LOCATION, Parameters.Create.ShareAccess),
        26
    );
    assert_eq!(
        offset_of!(IO_STACK_LOCATION, Parameters.Create.EaLength),
        32
    );
    assert_eq!(
        offset_of!(IO_STACK_LOCATION, Parameters.Others.Argument1),
        8
    );
    assert_eq!(
        offset_of!(IO_STACK_LOCATION, Parameters.Others.Argument2),
        16
    );
    assert_eq!(
        offset_of!(IO_STACK_LOCATION, Parameters.Others.Argument3),
        24
    );
    assert_eq!(
        offset_of!(IO_STACK_LOCATION, Parameters.Others.Argument4),
        32
    );

    let p = IO_STACK_LOCATION_DEVICE_IO_CONTROL::new(1, 2, 3, core::ptr::null_mut());
    assert_eq!(
        (p.OutputBufferLength, p.InputBufferLength, p.IoControlCode),
        (1, 2, 3)
    );
}

#[test]
fn device_object() {
    assert_eq!(size_of::<DEVICE_OBJECT>(), 0x150);
    assert_eq!(align_of::<DEVICE_OBJECT>(), 16);
    assert_eq!(offset_of!(DEVICE_OBJECT, Type), 0);
    assert_eq!(offset_of!(DEVICE_OBJECT, Size), 2);
    assert_eq!(offset_of!(DEVICE_OBJECT, ReferenceCount), 4);
    assert_eq!(offset_of!(DEVICE_OBJECT, DriverObject), 8);
    assert_eq!(offset_of!(DEVICE_OBJECT, NextDevice), 16);
    assert_eq!(offset_of!(DEVICE_OBJECT, AttachedDevice), 24);
    assert_eq!(offset_of!(DEVICE_OBJECT, CurrentIrp), 32);
    assert_eq!(offset_of!(DEVICE_OBJECT, Timer), 40);
    assert_eq!(offset_of!(DEVICE_OBJECT, Flags), 48);
    assert_eq!(offset_of!(DEVICE_OBJECT, Characteristics), 52);
    assert_eq!(offset_of!(DEVICE_OBJECT, Vpb), 56);
    assert_eq!(offset_of!(DEVICE_OBJECT, DeviceExtension), 64);
    assert_eq!(offset_of!(DEVICE_OBJECT, DeviceType), 72);
    assert_eq!(offset_of!(DEVICE_OBJECT, StackSize), 76);
    assert_eq!(offset_of!(DEVICE_OBJECT, Queue), 80);
    assert_eq!(offset_of!(DEVICE_OBJECT, Queue.ListEntry), 80);
    assert_eq!(offset_of!(DEVICE_OBJECT, Queue.Wcb), 80);
    assert_eq!(offset_of!(DEVICE_OBJECT, AlignmentRequirement), 152);
    assert_eq!(offset_of!(DEVICE_OBJECT, DeviceQueue), 160);
    assert_eq!(offset_of!(DEVICE_OBJECT, Dpc), 200);
    assert_eq!(offset_of!(DEVICE_OBJECT, ActiveThreadCount), 264);
    assert_eq!(offset_of!(DEVICE_OBJECT, SecurityDescriptor), 272);
    assert_eq!(offset_of!(DEVICE_OBJECT, DeviceLock), 280);
    assert_eq!(offset_of!(DEVICE_OBJECT, SectorSize), 304);
    assert_eq!(offset_of!(DEVICE_OBJECT, Spare1), 306);
    assert_eq!(offset_of!(DEVICE_OBJECT, DeviceObjectExtension), 312);
    assert_eq!(offset_of!(DEVICE_OBJECT, Reserved), 320);
}

#[test]
fn driver_object() {
    assert_eq!(size_of::<DRIVER_OBJECT>(), 336);
    assert_eq!(offset_of!(DRIVER_OBJECT, Type), 0);
    assert_eq!(offset_of!(DRIVER_OBJECT, Size), 2);
    assert_eq!(offset_of!(DRIVER_OBJECT, DeviceObject), 8);
    assert_eq!(offset_of!(DRIVER_OBJECT, Flags), 16);
    assert_eq!(offset_of!(DRIVER_OBJECT, DriverStart), 24);
    assert_eq!(offset_of!(DRIVER_OBJECT, DriverSize), 32);
    assert_eq!(offset_of!(DRIVER_OBJECT, DriverSection), 40);
    assert_eq!(offset_of!(DRIVER_OBJECT, DriverExtension), 48);
    assert_eq!(offset_of!(DRIVER_OBJECT, DriverName), 56);
    assert_eq!(offset_of!(DRIVER_OBJECT, HardwareDatabase), 72);
    assert_eq!(offset_of!(DRIVER_OBJECT, FastIoDispatch), 80);
    assert_eq!(offset_of!(DRIVER_OBJECT, DriverInit), 88);
    assert_eq!(offset_of!(DRIVER_OBJECT, DriverStartIo), 96);
    assert_eq!(offset_of!(DRIVER_OBJECT, DriverUnload), 104);
    assert_eq!(offset_of!(DRIVER_OBJECT, MajorFunction), 112);
    assert_eq!(size_of::<[PDRIVER_DISPATCH; IRP_MJ_COUNT]>(), 28 * 8);
    assert_eq!(IRP_MJ_COUNT, 28);

    assert_eq!(size_of::<DRIVER_EXTENSION>(), 40);
    assert_eq!(offset_of!(DRIVER_EXTENSION, DriverObject), 0);
    assert_eq!(offset_of!(DRIVER_EXTENSION, AddDevice), 8);
    assert_eq!(offset_of!(DRIVER_EXTENSION, Count), 16);
    assert_eq!(offset_of!(DRIVER_EXTENSION, ServiceKeyName), 24);
}

#[test]
fn file_object() {
    assert_eq!(size_of::<FILE_OBJECT>(), 216);
    assert_eq!(offset_of!(FILE_OBJECT, Type), 0);
    assert_eq!(offset_of!(FILE_OBJECT, Size), 2);
    assert_eq!(offset_of!(FILE_OBJECT, DeviceObject), 8);
    assert_eq!(offset_of!(FILE_OBJECT, Vpb), 16);
    assert_eq!(offset_of!(FILE_OBJECT, FsContext), 24);
    assert_eq!(offset_of!(FILE_OBJECT, FsContext2), 32);
    assert_eq!(offset_of!(FILE_OBJECT, SectionObjectPointer), 40);
    assert_eq!(offset_of!(FILE_OBJECT, PrivateCacheMap), 48);
    assert_eq!(offset_of!(FILE_OBJECT, FinalStatus), 56);
    assert_eq!(offset_of!(FILE_OBJECT, RelatedFileObject), 64);
    assert_eq!(offset_of!(FILE_OBJECT, LockOperation), 72);
    assert_eq!(offset_of!(FILE_OBJECT, DeletePending), 73);
    assert_eq!(offset_of!(FILE_OBJECT, ReadAccess), 74);
    assert_eq!(offset_of!(FILE_OBJECT, WriteAccess), 75);
    assert_eq!(offset_of!(FILE_OBJECT, DeleteAccess), 76);
    assert_eq!(offset_of!(FILE_OBJECT, SharedRead), 77);
    assert_eq!(offset_of!(FILE_OBJECT, SharedWrite), 78);
    assert_eq!(offset_of!(FILE_OBJECT, SharedDelete), 79);
    assert_eq!(offset_of!(FILE_OBJECT, Flags), 80);
    assert_eq!(offset_of!(FILE_OBJECT, FileName), 88);
    assert_eq!(offset_of!(FILE_OBJECT, CurrentByteOffset), 104);
    assert_eq!(offset_of!(FILE_OBJECT, Waiters), 112);
    assert_eq!(offset_of!(FILE_OBJECT, Busy), 116);
    assert_eq!(offset_of!(FILE_OBJECT, LastLock), 120);
    assert_eq!(offset_of!(FILE_OBJECT, Lock), 128);
    assert_eq!(offset_of!(FILE_OBJECT, Event), 152);
    assert_eq!(offset_of!(FILE_OBJECT, CompletionContext), 176);
    assert_eq!(offset_of!(FILE_OBJECT, IrpListLock), 184);
    assert_eq!(offset_of!(FILE_OBJECT, IrpList), 192);
    assert_eq!(offset_of!(FILE_OBJECT, FileObjectExtension), 208);
}

#[test]
fn io_csq() {
    assert_eq!(size_of::<IO_CSQ>(), 64);
    assert_eq!(offset_of!(IO_CSQ, Type), 0);
    assert_eq!(offset_of!(IO_CSQ, CsqInsertIrp), 8);
    assert_eq!(offset_of!(IO_CSQ, CsqRemoveIrp), 16);
    assert_eq!(offset_of!(IO_CSQ, CsqPeekNextIrp), 24);
    assert_eq!(offset_of!(IO_CSQ, CsqAcquireLock), 32);
    assert_eq!(offset_of!(IO_CSQ, CsqReleaseLock), 40);
    assert_eq!(offset_of!(IO_CSQ, CsqCompleteCanceledIrp), 48);
    assert_eq!(offset_of!(IO_CSQ, ReservePointer), 56);
    assert_eq!(
        size_of::<PIO_CSQ_INSERT_IRP_EX>(),
        size_of::<PIO_CSQ_INSERT_IRP>()
    );

    assert_eq!(size_of::<IO_CSQ_IRP_CONTEXT>(), 24);
    assert_eq!(offset_of!(IO_CSQ_IRP_CONTEXT, Type), 0);
    assert_eq!(offset_of!(IO_CSQ_IRP_CONTEXT, Irp), 8);
    assert_eq!(offset_of!(IO_CSQ_IRP_CONTEXT, Csq), 16);

    assert_eq!(
        (IO_TYPE_CSQ_IRP_CONTEXT, IO_TYPE_CSQ, IO_TYPE_CSQ_EX),
        (1, 2, 3)
    );
}

unsafe extern "system" fn insert_ex(_csq: *mut IO_CSQ, _irp: *mut IRP, ctx: PVOID) -> NTSTATUS {
    ctx as usize as NTSTATUS
}

#[test]
fn io_csq_insert_slot_reinterpretation() {
    let mut csq = IO_CSQ::zeroed();
    assert!(csq.insert_irp_ex().is_none());
    csq.set_insert_irp_ex(Some(insert_ex));
    assert!(csq.CsqInsertIrp.is_some());
    let routine = csq.insert_irp_ex().expect("slot was set");
    // SAFETY: the slot holds `insert_ex`, which ignores its pointer arguments.
    let status = unsafe { routine(&raw mut csq, core::ptr::null_mut(), 5 as PVOID) };
    assert_eq!(status, 5);
}

#[test]
fn dispatcher_header_and_objects() {
    assert_eq!(size_of::<DISPATCHER_HEADER>(), 24);
    assert_eq!(offset_of!(DISPATCHER_HEADER, Type), 0);
    assert_eq!(offset_of!(DISPATCHER_HEADER, Signalling), 1);
    assert_eq!(offset_of!(DISPATCHER_HEADER, Size), 2);
    assert_eq!(offset_of!(DISPATCHER_HEADER, Reserved1), 3);
    assert_eq!(offset_of!(DISPATCHER_HEADER, SignalState), 4);
    assert_eq!(offset_of!(DISPATCHER_HEADER, WaitListHead), 8);

    assert_eq!(size_of::<KEVENT>(), 24);
    assert_eq!(offset_of!(KEVENT, Header), 0);

    assert_eq!(size_of::<KSEMAPHORE>(), 32);
    assert_eq!(offset_of!(KSEMAPHORE, Header), 0);
    assert_eq!(offset_of!(KSEMAPHORE, Limit), 24);

    assert_eq!(size_of::<KTIMER>(), 64);
    assert_eq!(offset_of!(KTIMER, Header), 0);
    assert_eq!(offset_of!(KTIMER, DueTime), 24);
    assert_eq!(offset_of!(KTIMER, TimerListEntry), 32);
    assert_eq!(offset_of!(KTIMER, Dpc), 48);
    assert_eq!(offset_of!(KTIMER, Processor), 56);
    assert_eq!(offset_of!(KTIMER, Period), 60);

    // Header.Size is in 32-bit words.
    assert_eq!(size_of::<KEVENT>() / 4, 6);
    assert_eq!(size_of::<KSEMAPHORE>() / 4, 8);
    assert_eq!(size_of::<KTIMER>() / 4, 16);

    assert_eq!(offset_of!(KTHREAD, Header), 0);
    assert_eq!(offset_of!(ETHREAD, Tcb.Header), 0);
    assert_eq!(offset_of!(EPROCESS, Pcb.Header), 0);
}

#[test]
fn dispatcher_type_codes() {
    assert_eq!(EventNotificationObject, 0);
    assert_eq!(EventSynchronizationObject, 1);
    assert_eq!(SemaphoreObject, 5);
    assert_eq!(ThreadObject, 6);
    assert_eq!(TimerNotificationObject, 8);
    assert_eq!(TimerSynchronizationObject, 9);
    assert_eq!((NotificationEvent, SynchronizationEvent), (0, 1));
    assert_eq!((NotificationTimer, SynchronizationTimer), (0, 1));
}

#[test]
fn kdpc() {
    assert_eq!(size_of::<KDPC>(), 64);
    assert_eq!(offset_of!(KDPC, Type), 0);
    assert_eq!(offset_of!(KDPC, Importance), 1);
    assert_eq!(offset_of!(KDPC, Number), 2);
    assert_eq!(offset_of!(KDPC, DpcListEntry), 8);
    assert_eq!(offset_of!(KDPC, ProcessorHistory), 16);
    assert_eq!(offset_of!(KDPC, DeferredRoutine), 24);
    assert_eq!(offset_of!(KDPC, DeferredContext), 32);
    assert_eq!(offset_of!(KDPC, SystemArgument1), 40);
    assert_eq!(offset_of!(KDPC, SystemArgument2), 48);
    assert_eq!(offset_of!(KDPC, DpcData), 56);
}

#[test]
fn device_queue() {
    assert_eq!(size_of::<KDEVICE_QUEUE>(), 40);
    assert_eq!(offset_of!(KDEVICE_QUEUE, Type), 0);
    assert_eq!(offset_of!(KDEVICE_QUEUE, Size), 2);
    assert_eq!(offset_of!(KDEVICE_QUEUE, DeviceListHead), 8);
    assert_eq!(offset_of!(KDEVICE_QUEUE, Lock), 24);
    assert_eq!(offset_of!(KDEVICE_QUEUE, Busy), 32);

    assert_eq!(size_of::<KDEVICE_QUEUE_ENTRY>(), 24);
    assert_eq!(offset_of!(KDEVICE_QUEUE_ENTRY, DeviceListEntry), 0);
    assert_eq!(offset_of!(KDEVICE_QUEUE_ENTRY, SortKey), 16);
    assert_eq!(offset_of!(KDEVICE_QUEUE_ENTRY, Inserted), 20);
}

#[test]
fn remove_lock() {
    assert_eq!(size_of::<IO_REMOVE_LOCK>(), 32);
    assert_eq!(offset_of!(IO_REMOVE_LOCK, Common.Removed), 0);
    assert_eq!(offset_of!(IO_REMOVE_LOCK, Common.Reserved), 1);
    assert_eq!(offset_of!(IO_REMOVE_LOCK, Common.IoCount), 4);
    assert_eq!(offset_of!(IO_REMOVE_LOCK, Common.RemoveEvent), 8);
}

#[test]
fn opaque_objects() {
    assert_eq!(size_of::<KAPC>(), 88);
    assert_eq!(align_of::<KAPC>(), 8);
    assert_eq!(size_of::<WAIT_CONTEXT_BLOCK>(), 72);
}

#[test]
fn ctl_code() {
    let code = CTL_CODE(FILE_DEVICE_UNKNOWN, 0x800, METHOD_BUFFERED, FILE_ANY_ACCESS);
    assert_eq!(code, 0x0022_2000);
    assert_eq!(DEVICE_TYPE_FROM_CTL_CODE(code), FILE_DEVICE_UNKNOWN);
    assert_eq!(FUNCTION_FROM_CTL_CODE(code), 0x800);
    assert_eq!(METHOD_FROM_CTL_CODE(code), METHOD_BUFFERED);
    assert_eq!(ACCESS_FROM_CTL_CODE(code), FILE_ANY_ACCESS);
    let code = CTL_CODE(FILE_DEVICE_UNKNOWN, 0x801, METHOD_NEITHER, FILE_READ_ACCESS);
    assert_eq!(code, 0x0022_6007);
    assert_eq!(METHOD_FROM_CTL_CODE(code), METHOD_NEITHER);
    assert_eq!(ACCESS_FROM_CTL_CODE(code), FILE_READ_ACCESS);
}

#[test]
fn io_constants() {
    assert_eq!(IRP_MJ_CREATE, 0);
    assert_eq!(IRP_MJ_CLOSE, 2);
    assert_eq!(IRP_MJ_READ, 3);
    assert_eq!(IRP_MJ_WRITE, 4);
    assert_eq!(IRP_MJ_DEVICE_CONTROL, 0x0E);
    assert_eq!(IRP_MJ_INTERNAL_DEVICE_CONTROL, 0x0F);
    assert_eq!(IRP_MJ_CLEANUP, 0x12);
    assert_eq!(IRP_MJ_PNP, 0x1B);
    assert_eq!(IRP_MJ_MAXIMUM_FUNCTION, 0x1B);
    assert_eq!(SL_PENDING_RETURNED, 0x01);
    assert_eq!(
        (IO_TYPE_DEVICE, IO_TYPE_DRIVER, IO_TYPE_FILE, IO_TYPE_IRP),
        (3, 4, 5, 6)
    );
    assert_eq!(EVENT_ALL_ACCESS, 0x001F_0003);
    assert_eq!(FILE_ALL_ACCESS, 0x001F_01FF);
    assert_eq!(FILE_GENERIC_READ, 0x0012_0089);
    assert_eq!(FILE_GENERIC_WRITE, 0x0012_0116);
}

#[test]
fn status_values_and_classes() {
    assert_eq!(STATUS_PENDING, 0x103);
    assert_eq!(STATUS_TIMEOUT, 0x102);
    assert_eq!(STATUS_CANCELLED as u32, 0xC000_0120);
    assert_eq!(STATUS_DEVICE_BUSY as u32, 0x8000_0011);
    assert!(NT_SUCCESS(STATUS_SUCCESS));
    assert!(NT_SUCCESS(STATUS_PENDING));
    assert!(NT_SUCCESS(STATUS_TIMEOUT));
    assert!(!NT_SUCCESS(STATUS_CANCELLED));
    assert!(NT_ERROR(STATUS_CANCELLED));
    assert!(!NT_SUCCESS(STATUS_DEVICE_BUSY));
    assert!(NT_WARNING(STATUS_DEVICE_BUSY));
    assert!(!NT_ERROR(STATUS_DEVICE_BUSY));
    assert!(NT_INFORMATION(0x4000_0000));
    assert!(!NT_INFORMATION(STATUS_PENDING));
}

#[test]
fn status_names_round_trip() {
    for &(code, name, _) in STATUS_TABLE {
        assert_eq!(status_name(code), Some(name), "{code:#x}");
    }
    let mut codes: Vec<_> = STATUS_TABLE.iter().map(|e| e.0).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(
        codes.len(),
        STATUS_TABLE.len(),
        "status codes must be unique"
    );
    assert_eq!(status_name(STATUS_CANCELLED), Some("STATUS_CANCELLED"));
    assert_eq!(status_name(STATUS_WAIT_0), Some("STATUS_SUCCESS"));
    assert_eq!(status_name(0x1234_5678), None);
}

#[test]
fn dos_error_mapping() {
    assert_eq!(RtlNtStatusToDosError(STATUS_SUCCESS), 0);
    assert_eq!(RtlNtStatusToDosError(STATUS_CANCELLED), 995);
    assert_eq!(RtlNtStatusToDosError(STATUS_INVALID_PARAMETER), 87);
    assert_eq!(RtlNtStatusToDosError(STATUS_BUFFER_TOO_SMALL), 122);
    assert_eq!(RtlNtStatusToDosError(STATUS_NOT_IMPLEMENTED), 1);
    assert_eq!(RtlNtStatusToDosError(STATUS_INVALID_HANDLE), 6);
    assert_eq!(RtlNtStatusToDosError(STATUS_INSUFFICIENT_RESOURCES), 1450);
    assert_eq!(RtlNtStatusToDosError(STATUS_DELETE_PENDING), 5);
    assert_eq!(RtlNtStatusToDosError(STATUS_OBJECT_TYPE_MISMATCH), 6);
    assert_eq!(RtlNtStatusToDosError(STATUS_PENDING), 997);
    assert_eq!(
        RtlNtStatusToDosError(0xC0AB_CDEF_u32 as NTSTATUS),
        ERROR_MR_MID_NOT_FOUND
    );
    assert_eq!(
        RtlNtStatusToDosError(0xE000_0001_u32 as NTSTATUS),
        0xE000_0001
    );
    assert_eq!(RtlNtStatusToDosError(STATUS_WAIT_1 + 2), 3);
}

#[test]
fn zeroed_constructors_and_debug() {
    let irp = IRP::zeroed();
    assert!(irp.CancelRoutine.is_none());
    assert!(irp.MdlAddress.is_null());
    let dev = DEVICE_OBJECT::zeroed();
    assert!(format!("{dev:?}").starts_with("DEVICE_OBJECT"));
    let drv = DRIVER_OBJECT::zeroed();
    assert!(drv.MajorFunction.iter().all(Option::is_none));
    assert!(format!("{irp:?}").contains("IRP_TAIL"));
}
