//! The export table: every routine and variable of `ntoskrnl.exe` and `HAL.dll` that ntsim
//! offers to driver images, in ONE list (the `exports!` invocation below).
//!
//! Each function gets an `unsafe extern "win64"` entry point with the real signature that
//! forwards to ntsim's routine (or to the image-specific one in a sibling module); each data
//! export is storage ntsim owns, holding what the variable holds on Windows (a `POBJECT_TYPE`
//! for the `*ObjectType`/`Ps*Type` variables). The loader writes the address of the entry point
//! (or of the variable) into the image's import address table.
//!
//! C inline routines and macros (`IoGetCurrentIrpStackLocation`, `IoSetCancelRoutine`,
//! `IoMarkIrpPending`, `KeInitializeSpinLock`, `KeQueryInterruptTime` on x64, …) are not exports
//! of the real kernel and are not listed: an image carries its own code for them.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::ntdef::*;
use crate::object::POBJECT_TYPE;

/// The modules an export may be imported from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dll {
    /// `ntoskrnl.exe`.
    Nt,
    /// `HAL.dll`.
    Hal,
}

impl Dll {
    fn from_name(name: &str) -> Option<Dll> {
        match name.to_ascii_lowercase().as_str() {
            "ntoskrnl.exe" => Some(Dll::Nt),
            "hal.dll" => Some(Dll::Hal),
            _ => None,
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            Dll::Nt => "ntoskrnl.exe",
            Dll::Hal => "HAL.dll",
        }
    }
}

/// One export: its name, the modules it is found in, and its address in this process.
#[derive(Clone, Debug)]
pub(crate) struct Export {
    pub(crate) name: &'static str,
    pub(crate) dlls: &'static [Dll],
    pub(crate) address: usize,
    pub(crate) is_data: bool,
}

macro_rules! exports {
    (
        functions {
            $( [$($fdll:ident),+] $fname:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?
                => $target:path; )*
        }
        entry_points {
            $( [$($rdll:ident),+] $rname:ident => $raddress:expr; )*
        }
        data {
            $( [$($ddll:ident),+] $dname:ident: $dty:ty = $dinit:expr; )*
        }
    ) => {
        /// The `win64` entry points of the `functions` section.
        mod thunks {
            use super::*;
            $(
                #[allow(unused_unsafe, clippy::too_many_arguments)]
                pub(super) unsafe extern "win64" fn $fname($($arg: $ty),*) $(-> $ret)? {
                    // SAFETY: the image called the routine with the real signature; the caller
                    // contract of the ntsim routine is the kernel routine's, which the image
                    // owes it as it would on Windows.
                    unsafe { $target($($arg),*) }
                }
            )*
        }

        /// The storage of the data exports.
        #[allow(non_upper_case_globals)]
        mod data {
            use super::*;
            $( pub(super) static $dname: AtomicUsize = AtomicUsize::new(0); )*
        }

        fn build() -> Vec<Export> {
            $( data::$dname.store({ let v: $dty = $dinit; v as usize }, Ordering::SeqCst); )*
            vec![
                $( Export {
                    name: stringify!($fname),
                    dlls: &[$(Dll::$fdll),+],
                    address: thunks::$fname as *const () as usize,
                    is_data: false,
                }, )*
                $( Export {
                    name: stringify!($rname),
                    dlls: &[$(Dll::$rdll),+],
                    address: $raddress,
                    is_data: false,
                }, )*
                $( Export {
                    name: stringify!($dname),
                    dlls: &[$(Dll::$ddll),+],
                    address: &data::$dname as *const AtomicUsize as usize,
                    is_data: true,
                }, )*
            ]
        }
    };
}

exports! {
    functions {
        // Events, semaphores, waits.
        [Nt] KeInitializeEvent(Event: PKEVENT, Type: EVENT_TYPE, State: BOOLEAN)
            => crate::event::KeInitializeEvent;
        [Nt] KeSetEvent(Event: PKEVENT, Increment: KPRIORITY, Wait: BOOLEAN) -> LONG
            => crate::event::KeSetEvent;
        [Nt] KeResetEvent(Event: PKEVENT) -> LONG => crate::event::KeResetEvent;
        [Nt] KeClearEvent(Event: PKEVENT) => crate::event::KeClearEvent;
        [Nt] KePulseEvent(Event: PKEVENT, Increment: KPRIORITY, Wait: BOOLEAN) -> LONG
            => crate::event::KePulseEvent;
        [Nt] KeReadStateEvent(Event: PKEVENT) -> LONG => crate::event::KeReadStateEvent;
        [Nt] KeInitializeSemaphore(Semaphore: PKSEMAPHORE, Count: LONG, Limit: LONG)
            => crate::semaphore::KeInitializeSemaphore;
        [Nt] KeReleaseSemaphore(
            Semaphore: PKSEMAPHORE, Increment: KPRIORITY, Adjustment: LONG, Wait: BOOLEAN,
        ) -> LONG => crate::semaphore::KeReleaseSemaphore;
        [Nt] KeReadStateSemaphore(Semaphore: PKSEMAPHORE) -> LONG
            => crate::semaphore::KeReadStateSemaphore;
        [Nt] KeWaitForSingleObject(
            Object: PVOID, WaitReason: u32, WaitMode: KPROCESSOR_MODE, Alertable: BOOLEAN,
            Timeout: *mut LARGE_INTEGER,
        ) -> NTSTATUS => crate::wait::KeWaitForSingleObject;
        [Nt] KeWaitForMultipleObjects(
            Count: ULONG, Object: *const PVOID, WaitType: u32, WaitReason: u32,
            WaitMode: KPROCESSOR_MODE, Alertable: BOOLEAN, Timeout: *mut LARGE_INTEGER,
            WaitBlockArray: PVOID,
        ) -> NTSTATUS => crate::wait::KeWaitForMultipleObjects;
        [Nt] KeDelayExecutionThread(
            WaitMode: KPROCESSOR_MODE, Alertable: BOOLEAN, Interval: *mut LARGE_INTEGER,
        ) -> NTSTATUS => crate::wait::KeDelayExecutionThread;

        // Timers, DPCs, time.
        [Nt] KeInitializeTimer(Timer: PKTIMER) => crate::timer::KeInitializeTimer;
        [Nt] KeInitializeTimerEx(Timer: PKTIMER, Type: TIMER_TYPE)
            => crate::timer::KeInitializeTimerEx;
        [Nt] KeSetTimer(Timer: PKTIMER, DueTime: LARGE_INTEGER, Dpc: PKDPC) -> BOOLEAN
            => crate::timer::KeSetTimer;
        [Nt] KeSetTimerEx(Timer: PKTIMER, DueTime: LARGE_INTEGER, Period: LONG, Dpc: PKDPC)
            -> BOOLEAN => crate::timer::KeSetTimerEx;
        [Nt] KeCancelTimer(Timer: PKTIMER) -> BOOLEAN => crate::timer::KeCancelTimer;
        [Nt] KeReadStateTimer(Timer: PKTIMER) -> BOOLEAN => crate::timer::KeReadStateTimer;
        [Nt] KeInitializeDpc(Dpc: PKDPC, DeferredRoutine: PKDEFERRED_ROUTINE, DeferredContext: PVOID)
            => crate::dpc::KeInitializeDpc;
        [Nt] KeInsertQueueDpc(Dpc: PKDPC, SystemArgument1: PVOID, SystemArgument2: PVOID)
            -> BOOLEAN => crate::dpc::KeInsertQueueDpc;
        [Nt] KeRemoveQueueDpc(Dpc: PKDPC) -> BOOLEAN => crate::dpc::KeRemoveQueueDpc;
        [Nt] KeFlushQueuedDpcs() => crate::dpc::KeFlushQueuedDpcs;
        [Nt] KeQueryInterruptTimePrecise(QpcTimeStamp: *mut u64) -> u64
            => crate::image::time::KeQueryInterruptTimePrecise;
        [Nt] KeQueryUnbiasedInterruptTime() -> u64 => crate::image::time::KeQueryUnbiasedInterruptTime;
        [Nt] KeQuerySystemTimePrecise(CurrentTime: *mut LARGE_INTEGER)
            => crate::image::time::KeQuerySystemTimePrecise;
        [Nt] KeQueryTimeIncrement() -> ULONG => crate::image::time::KeQueryTimeIncrement;
        [Nt, Hal] KeQueryPerformanceCounter(PerformanceFrequency: *mut LARGE_INTEGER)
            -> LARGE_INTEGER => crate::image::time::KeQueryPerformanceCounter;

        // IRQL, spin locks.
        [Nt] KeGetCurrentIrql() -> KIRQL => crate::irql::KeGetCurrentIrql;
        [Nt] KfRaiseIrql(NewIrql: KIRQL) -> KIRQL => crate::irql::KfRaiseIrql;
        [Nt] KeRaiseIrqlToDpcLevel() -> KIRQL => crate::irql::KeRaiseIrqlToDpcLevel;
        [Nt] KeLowerIrql(NewIrql: KIRQL) => crate::irql::KeLowerIrql;
        [Nt] KeAcquireSpinLockRaiseToDpc(SpinLock: *mut KSPIN_LOCK) -> KIRQL
            => crate::spinlock::KeAcquireSpinLockRaiseToDpc;
        [Nt] KeReleaseSpinLock(SpinLock: *mut KSPIN_LOCK, NewIrql: KIRQL)
            => crate::spinlock::KeReleaseSpinLock;
        [Nt] KeAcquireSpinLockAtDpcLevel(SpinLock: *mut KSPIN_LOCK)
            => crate::spinlock::KeAcquireSpinLockAtDpcLevel;
        [Nt] KeReleaseSpinLockFromDpcLevel(SpinLock: *mut KSPIN_LOCK)
            => crate::spinlock::KeReleaseSpinLockFromDpcLevel;
        [Nt] KeTryToAcquireSpinLockAtDpcLevel(SpinLock: *mut KSPIN_LOCK) -> BOOLEAN
            => crate::spinlock::KeTryToAcquireSpinLockAtDpcLevel;
        [Nt] IoAcquireCancelSpinLock(Irql: *mut KIRQL) => crate::spinlock::IoAcquireCancelSpinLock;
        [Nt] IoReleaseCancelSpinLock(Irql: KIRQL) => crate::spinlock::IoReleaseCancelSpinLock;

        // Threads.
        [Nt] PsCreateSystemThread(
            ThreadHandle: *mut HANDLE, DesiredAccess: ACCESS_MASK, ObjectAttributes: PVOID,
            ProcessHandle: HANDLE, ClientId: PVOID, StartRoutine: PKSTART_ROUTINE,
            StartContext: PVOID,
        ) -> NTSTATUS => crate::thread::PsCreateSystemThread;
        [Nt] PsTerminateSystemThread(ExitStatus: NTSTATUS) -> NTSTATUS
            => crate::thread::PsTerminateSystemThread;
        [Nt] PsGetCurrentThread() -> PETHREAD => crate::thread::PsGetCurrentThread;
        [Nt] KeGetCurrentThread() -> PETHREAD => crate::thread::KeGetCurrentThread;
        [Nt] KeEnterCriticalRegion() => crate::thread::KeEnterCriticalRegion;
        [Nt] KeLeaveCriticalRegion() => crate::thread::KeLeaveCriticalRegion;

        // Objects and handles.
        [Nt] ObReferenceObjectByHandle(
            Handle: HANDLE, DesiredAccess: ACCESS_MASK, ObjectType: POBJECT_TYPE,
            AccessMode: KPROCESSOR_MODE, Object: *mut PVOID, HandleInformation: PVOID,
        ) -> NTSTATUS => crate::object::ObReferenceObjectByHandle;
        [Nt] ObfReferenceObject(Object: PVOID) -> LONG_PTR => crate::object::ObfReferenceObject;
        [Nt] ObfDereferenceObject(Object: PVOID) -> LONG_PTR
            => crate::object::ObfDereferenceObject;
        [Nt] ObDereferenceObject(Object: PVOID) => crate::object::ObDereferenceObject;
        [Nt] ZwClose(Handle: HANDLE) -> NTSTATUS => crate::object::ZwClose;

        // Drivers, devices, names.
        [Nt] IoCreateDevice(
            DriverObject: PDRIVER_OBJECT, DeviceExtensionSize: ULONG, DeviceName: PUNICODE_STRING,
            DeviceType: ULONG, DeviceCharacteristics: ULONG, Exclusive: BOOLEAN,
            DeviceObject: *mut PDEVICE_OBJECT,
        ) -> NTSTATUS => crate::driver::IoCreateDevice;
        // wdmsec.lib's routine (statically linked with the real WDK), offered for images
        // whose import library lists it.
        [Nt] IoCreateDeviceSecure(
            DriverObject: PDRIVER_OBJECT, DeviceExtensionSize: ULONG, DeviceName: PUNICODE_STRING,
            DeviceType: ULONG, DeviceCharacteristics: ULONG, Exclusive: BOOLEAN,
            DefaultSDDLString: PUNICODE_STRING, DeviceClassGuid: PVOID,
            DeviceObject: *mut PDEVICE_OBJECT,
        ) -> NTSTATUS => crate::driver::IoCreateDeviceSecure;
        [Nt] IoDeleteDevice(DeviceObject: PDEVICE_OBJECT) => crate::driver::IoDeleteDevice;
        // A device's DACL without wdmsec.lib (what csq does): security.rs.
        [Nt] RtlLengthSid(Sid: PVOID) -> ULONG => crate::security::RtlLengthSid;
        [Nt] RtlCreateAcl(Acl: PVOID, AclLength: ULONG, AclRevision: ULONG) -> NTSTATUS
            => crate::security::RtlCreateAcl;
        [Nt] RtlAddAccessAllowedAce(Acl: PVOID, AceRevision: ULONG, AccessMask: ULONG, Sid: PVOID)
            -> NTSTATUS => crate::security::RtlAddAccessAllowedAce;
        [Nt] RtlCreateSecurityDescriptor(SecurityDescriptor: PVOID, Revision: ULONG) -> NTSTATUS
            => crate::security::RtlCreateSecurityDescriptor;
        [Nt] RtlSetDaclSecurityDescriptor(
            SecurityDescriptor: PVOID, DaclPresent: BOOLEAN, Dacl: PVOID, DaclDefaulted: BOOLEAN,
        ) -> NTSTATUS => crate::security::RtlSetDaclSecurityDescriptor;
        [Nt] ObSetSecurityObjectByPointer(
            Object: PVOID, SecurityInformation: ULONG, SecurityDescriptor: PVOID,
        ) -> NTSTATUS => crate::security::ObSetSecurityObjectByPointer;
        [Nt] IoCreateSymbolicLink(SymbolicLinkName: PUNICODE_STRING, DeviceName: PUNICODE_STRING)
            -> NTSTATUS => crate::driver::IoCreateSymbolicLink;
        [Nt] IoDeleteSymbolicLink(SymbolicLinkName: PUNICODE_STRING) -> NTSTATUS
            => crate::driver::IoDeleteSymbolicLink;
        [Nt] RtlInitUnicodeString(DestinationString: PUNICODE_STRING, SourceString: *const u16)
            => crate::driver::RtlInitUnicodeString;
        [Nt] RtlNtStatusToDosError(Status: NTSTATUS) -> ULONG => crate::ntdef::RtlNtStatusToDosError;

        // IRPs, completion, cancel.
        [Nt] IoAllocateIrp(StackSize: CCHAR, ChargeQuota: BOOLEAN) -> PIRP
            => crate::irp::IoAllocateIrp;
        [Nt] IoInitializeIrp(Irp: PIRP, PacketSize: USHORT, StackSize: CCHAR)
            => crate::irp::IoInitializeIrp;
        [Nt] IoFreeIrp(Irp: PIRP) => crate::irp::IoFreeIrp;
        [Nt] IofCompleteRequest(Irp: PIRP, PriorityBoost: CCHAR)
            => crate::complete::IofCompleteRequest;
        [Nt] IoCompleteRequest(Irp: PIRP, PriorityBoost: CCHAR)
            => crate::complete::IoCompleteRequest;
        [Nt] IoCancelIrp(Irp: PIRP) -> BOOLEAN => crate::cancel::IoCancelIrp;
        [Nt] IofCallDriver(DeviceObject: PDEVICE_OBJECT, Irp: PIRP) -> NTSTATUS
            => crate::driver::IofCallDriver;
        [Nt] IoCallDriver(DeviceObject: PDEVICE_OBJECT, Irp: PIRP) -> NTSTATUS
            => crate::driver::IoCallDriver;

        // Remove locks (the macros IoAcquireRemoveLock & co. call the Ex routines).
        [Nt] IoInitializeRemoveLockEx(
            Lock: *mut IO_REMOVE_LOCK, AllocateTag: ULONG, MaxLockedMinutes: ULONG,
            HighWatermark: ULONG, RemlockSize: ULONG,
        ) => crate::remove_lock::IoInitializeRemoveLockEx;
        [Nt] IoAcquireRemoveLockEx(
            RemoveLock: *mut IO_REMOVE_LOCK, Tag: PVOID, File: *const i8, Line: ULONG,
            RemlockSize: ULONG,
        ) -> NTSTATUS => crate::remove_lock::IoAcquireRemoveLockEx;
        [Nt] IoReleaseRemoveLockEx(RemoveLock: *mut IO_REMOVE_LOCK, Tag: PVOID, RemlockSize: ULONG)
            => crate::remove_lock::IoReleaseRemoveLockEx;
        [Nt] IoReleaseRemoveLockAndWaitEx(
            RemoveLock: *mut IO_REMOVE_LOCK, Tag: PVOID, RemlockSize: ULONG,
        ) => crate::remove_lock::IoReleaseRemoveLockAndWaitEx;

        // Cancel-safe queues.
        [Nt] IoCsqInitialize(
            Csq: PIO_CSQ, CsqInsertIrp: PIO_CSQ_INSERT_IRP, CsqRemoveIrp: PIO_CSQ_REMOVE_IRP,
            CsqPeekNextIrp: PIO_CSQ_PEEK_NEXT_IRP, CsqAcquireLock: PIO_CSQ_ACQUIRE_LOCK,
            CsqReleaseLock: PIO_CSQ_RELEASE_LOCK,
            CsqCompleteCanceledIrp: PIO_CSQ_COMPLETE_CANCELED_IRP,
        ) -> NTSTATUS => crate::csq::IoCsqInitialize;
        [Nt] IoCsqInitializeEx(
            Csq: PIO_CSQ, CsqInsertIrp: PIO_CSQ_INSERT_IRP_EX, CsqRemoveIrp: PIO_CSQ_REMOVE_IRP,
            CsqPeekNextIrp: PIO_CSQ_PEEK_NEXT_IRP, CsqAcquireLock: PIO_CSQ_ACQUIRE_LOCK,
            CsqReleaseLock: PIO_CSQ_RELEASE_LOCK,
            CsqCompleteCanceledIrp: PIO_CSQ_COMPLETE_CANCELED_IRP,
        ) -> NTSTATUS => crate::csq::IoCsqInitializeEx;
        [Nt] IoCsqInsertIrp(Csq: PIO_CSQ, Irp: PIRP, Context: PIO_CSQ_IRP_CONTEXT)
            => crate::csq::IoCsqInsertIrp;
        [Nt] IoCsqInsertIrpEx(
            Csq: PIO_CSQ, Irp: PIRP, Context: PIO_CSQ_IRP_CONTEXT, InsertContext: PVOID,
        ) -> NTSTATUS => crate::csq::IoCsqInsertIrpEx;
        [Nt] IoCsqRemoveNextIrp(Csq: PIO_CSQ, PeekContext: PVOID) -> PIRP
            => crate::csq::IoCsqRemoveNextIrp;
        [Nt] IoCsqRemoveIrp(Csq: PIO_CSQ, Context: PIO_CSQ_IRP_CONTEXT) -> PIRP
            => crate::csq::IoCsqRemoveIrp;

        // Device queues and StartIo.
        [Nt] KeInitializeDeviceQueue(DeviceQueue: *mut KDEVICE_QUEUE)
            => crate::device_queue::KeInitializeDeviceQueue;
        [Nt] KeInsertDeviceQueue(
            DeviceQueue: *mut KDEVICE_QUEUE, DeviceQueueEntry: *mut KDEVICE_QUEUE_ENTRY,
        ) -> BOOLEAN => crate::device_queue::KeInsertDeviceQueue;
        [Nt] KeInsertByKeyDeviceQueue(
            DeviceQueue: *mut KDEVICE_QUEUE, DeviceQueueEntry: *mut KDEVICE_QUEUE_ENTRY,
            SortKey: ULONG,
        ) -> BOOLEAN => crate::device_queue::KeInsertByKeyDeviceQueue;
        [Nt] KeRemoveDeviceQueue(DeviceQueue: *mut KDEVICE_QUEUE) -> *mut KDEVICE_QUEUE_ENTRY
            => crate::device_queue::KeRemoveDeviceQueue;
        [Nt] KeRemoveByKeyDeviceQueue(DeviceQueue: *mut KDEVICE_QUEUE, SortKey: ULONG)
            -> *mut KDEVICE_QUEUE_ENTRY => crate::device_queue::KeRemoveByKeyDeviceQueue;
        [Nt] KeRemoveByKeyDeviceQueueIfBusy(DeviceQueue: *mut KDEVICE_QUEUE, SortKey: ULONG)
            -> *mut KDEVICE_QUEUE_ENTRY => crate::device_queue::KeRemoveByKeyDeviceQueueIfBusy;
        [Nt] KeRemoveEntryDeviceQueue(
            DeviceQueue: *mut KDEVICE_QUEUE, DeviceQueueEntry: *mut KDEVICE_QUEUE_ENTRY,
        ) -> BOOLEAN => crate::device_queue::KeRemoveEntryDeviceQueue;
        [Nt] IoStartPacket(
            DeviceObject: PDEVICE_OBJECT, Irp: PIRP, Key: *mut ULONG, CancelFunction: PDRIVER_CANCEL,
        ) => crate::startio::IoStartPacket;
        [Nt] IoStartNextPacket(DeviceObject: PDEVICE_OBJECT, Cancelable: BOOLEAN)
            => crate::startio::IoStartNextPacket;
        [Nt] IoStartNextPacketByKey(DeviceObject: PDEVICE_OBJECT, Cancelable: BOOLEAN, Key: ULONG)
            => crate::startio::IoStartNextPacketByKey;
        [Nt] IoSetStartIoAttributes(
            DeviceObject: PDEVICE_OBJECT, DeferredStartIo: BOOLEAN, NonCancelable: BOOLEAN,
        ) => crate::startio::IoSetStartIoAttributes;

        // Pool (charged to the driver whose code runs, for the leak report at unload).
        [Nt] ExAllocatePool2(Flags: u64, NumberOfBytes: usize, Tag: ULONG) -> PVOID
            => crate::pool::ExAllocatePool2;
        [Nt] ExAllocatePoolWithTag(PoolType: u32, NumberOfBytes: usize, Tag: ULONG) -> PVOID
            => crate::pool::ExAllocatePoolWithTag;
        [Nt] ExAllocatePoolWithQuotaTag(PoolType: u32, NumberOfBytes: usize, Tag: ULONG) -> PVOID
            => crate::image::pool::ExAllocatePoolWithQuotaTag;
        [Nt] ExAllocatePool(PoolType: u32, NumberOfBytes: usize) -> PVOID
            => crate::image::pool::ExAllocatePool;
        [Nt] ExFreePoolWithTag(P: PVOID, Tag: ULONG) => crate::pool::ExFreePoolWithTag;
        [Nt] ExFreePool(P: PVOID) => crate::pool::ExFreePool;

        // Debugging.
        [Nt] DbgBreakPoint() => crate::image::dbgprint::DbgBreakPoint;
        [Nt] DbgBreakPointWithStatus(Status: ULONG) => crate::image::dbgprint::DbgBreakPointWithStatus;
        [Nt] KeBugCheck(BugCheckCode: ULONG) => crate::image::bugcheck::KeBugCheck;
        [Nt] KeBugCheckEx(
            BugCheckCode: ULONG, BugCheckParameter1: ULONG_PTR, BugCheckParameter2: ULONG_PTR,
            BugCheckParameter3: ULONG_PTR, BugCheckParameter4: ULONG_PTR,
        ) => crate::image::bugcheck::KeBugCheckEx;

        // Run-time library.
        [Nt] memset(Dest: *mut u8, Value: i32, Count: usize) -> *mut u8 => crate::image::crt::memset;
        [Nt] memcpy(Dest: *mut u8, Src: *const u8, Count: usize) -> *mut u8 => crate::image::crt::memcpy;
        [Nt] memmove(Dest: *mut u8, Src: *const u8, Count: usize) -> *mut u8
            => crate::image::crt::memmove;
        [Nt] memcmp(A: *const u8, B: *const u8, Count: usize) -> i32 => crate::image::crt::memcmp;
        [Nt] strlen(S: *const u8) -> usize => crate::image::crt::strlen;
        [Nt] wcslen(S: *const u16) -> usize => crate::image::crt::wcslen;
        [Nt] RtlCopyMemory(Destination: *mut u8, Source: *const u8, Length: usize)
            => crate::image::crt::RtlCopyMemory;
        [Nt] RtlMoveMemory(Destination: *mut u8, Source: *const u8, Length: usize)
            => crate::image::crt::RtlCopyMemory;
        [Nt] RtlZeroMemory(Destination: *mut u8, Length: usize) => crate::image::crt::RtlZeroMemory;
        [Nt] RtlFillMemory(Destination: *mut u8, Length: usize, Fill: u8)
            => crate::image::crt::RtlFillMemory;
        [Nt] RtlCompareMemory(Source1: *const u8, Source2: *const u8, Length: usize) -> usize
            => crate::image::crt::RtlCompareMemory;
    }
    entry_points {
        // Variadic: hand-written win64 entry points (see dbgprint.rs).
        [Nt] DbgPrint => crate::image::dbgprint::DbgPrint as *const () as usize;
        [Nt] DbgPrintEx => crate::image::dbgprint::DbgPrintEx as *const () as usize;
        // Register-preserving stack probe in assembly (see crt.rs).
        [Nt] __chkstk => crate::image::crt::chkstk_address();
    }
    data {
        [Nt] ExEventObjectType: POBJECT_TYPE = crate::object::ExEventObjectType();
        [Nt] ExSemaphoreObjectType: POBJECT_TYPE = crate::object::ExSemaphoreObjectType();
        [Nt] PsThreadType: POBJECT_TYPE = crate::object::PsThreadType();
        [Nt] PsProcessType: POBJECT_TYPE = crate::object::PsProcessType();
        [Nt] IoFileObjectType: POBJECT_TYPE = crate::object::IoFileObjectType();
        [Nt] SeExports: PVOID = crate::security::se_exports();
    }
}

fn table() -> &'static HashMap<&'static str, Export> {
    static TABLE: OnceLock<HashMap<&'static str, Export>> = OnceLock::new();
    TABLE.get_or_init(|| build().into_iter().map(|e| (e.name, e)).collect())
}

/// The address to bind an import of `dll!name` to, or the line that explains why it cannot be.
pub(crate) fn resolve(dll: &str, name: &str) -> Result<usize, String> {
    let Some(module) = Dll::from_name(dll) else {
        return Err(format!(
            "image imports {dll}!{name}, but ntsim provides only ntoskrnl.exe and HAL.dll"
        ));
    };
    match table().get(name) {
        Some(e) if e.dlls.contains(&module) => Ok(e.address),
        Some(e) => Err(format!(
            "image imports {dll}!{name}, which ntsim provides only from {}",
            e.dlls[0].file_name()
        )),
        None => Err(format!(
            "image imports {dll}!{name}, which ntsim does not provide"
        )),
    }
}

/// Every export ntsim offers: (module, name, whether it is a variable), sorted by name.
pub fn exported_names() -> Vec<(&'static str, &'static str, bool)> {
    let mut v: Vec<_> = table()
        .values()
        .flat_map(|e| {
            e.dlls
                .iter()
                .map(move |d| (d.file_name(), e.name, e.is_data))
        })
        .collect();
    v.sort_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(b.0)));
    v
}
