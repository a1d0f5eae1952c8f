//! The seam over `wdk-sys` (`cfg(windows)`): the same surface as `host.rs`, mirroring it
//! function by function.
//!
//! `wdk-sys` binds the routines ntoskrnl exports. The WDK headers also define routines that are
//! not exports at all but C inlines or macros; a driver written in C compiles them into its own
//! image. They are rewritten here in Rust (the `Inline routines of the WDK headers` section),
//! each with a note on what the header version does. bindgen names C anonymous unions and
//! structs `__bindgen_anon_N`; the field paths below follow `wdm.h`'s nesting, and the layout
//! assertions right below pin every size and offset this file relies on to
//! `shared/spec/x64-layouts.md`, so that a binding that drifts fails to compile.
//!
//! Data exported by ntoskrnl (`SeExports`, `PsThreadType`, `ExEventObjectType`) is read
//! through its import slot (`__imp_<name>`): wdk-sys declares these variables as plain
//! `extern` statics, which the linker would resolve to a code thunk (or not at all with a real
//! WDK import library, whose data exports only define `__imp_<name>`).

use core::arch::asm;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

use static_assertions::{const_assert, const_assert_eq};
use wdk_sys::ntddk;

use crate::device::{DeviceAccess, Trustee};

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

use wdk_sys::IO_STACK_LOCATION as IoStackLocation;

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
/// `KernelMode` as a `KPROCESSOR_MODE` (a `CCHAR`).
const KERNEL_MODE: wdk_sys::KPROCESSOR_MODE = 0;
/// `Executive`, the wait reason drivers use.
const EXECUTIVE: wdk_sys::KWAIT_REASON = wdk_sys::_KWAIT_REASON::Executive;
/// `WaitAny`.
const WAIT_ANY: wdk_sys::WAIT_TYPE = wdk_sys::_WAIT_TYPE::WaitAny;
/// `IO_NO_INCREMENT`.
const IO_NO_INCREMENT: wdk_sys::CCHAR = 0;
/// `SECURITY_DESCRIPTOR_REVISION`.
const SECURITY_DESCRIPTOR_REVISION: u32 = 1;
/// `ACL_REVISION`.
const ACL_REVISION: u32 = 2;
/// `SE_DACL_PROTECTED` in a security descriptor's `Control`: no ACE is inherited (SDDL `D:P`).
const SE_DACL_PROTECTED: u16 = 0x1000;
/// `DACL_SECURITY_INFORMATION`.
const DACL_SECURITY_INFORMATION: u32 = 0x0000_0004;
/// `STATUS_BUFFER_TOO_SMALL`.
const STATUS_BUFFER_TOO_SMALL: Ntstatus = 0xC000_0023_u32 as i32;
/// `POOL_FLAG_NON_PAGED`.
const POOL_FLAG_NON_PAGED: wdk_sys::POOL_FLAGS = 0x40;
/// `POOL_FLAG_UNINITIALIZED`: the pool does not zero the block.
const POOL_FLAG_UNINITIALIZED: wdk_sys::POOL_FLAGS = 0x02;

// ---------------------------------------------------------------------------------------------
// Layout facts (shared/spec/x64-layouts.md). Every size and offset this file (or the kernel,
// through an object embedded in a Rust value) relies on; a binding that drifts fails here.

use core::mem::{offset_of, size_of};

// IRP: 0xD0 bytes; the fields read or written here.
const_assert_eq!(size_of::<Irp>(), 0xD0);
const_assert_eq!(offset_of!(Irp, AssociatedIrp), 24);
const_assert_eq!(offset_of!(Irp, IoStatus), 48);
const_assert_eq!(offset_of!(Irp, RequestorMode), 64);
const_assert_eq!(offset_of!(Irp, CurrentLocation), 67);
const_assert_eq!(offset_of!(Irp, PendingReturned), 65);
const_assert_eq!(offset_of!(Irp, StackCount), 66);
const_assert_eq!(offset_of!(Irp, Cancel), 68);
const_assert_eq!(offset_of!(Irp, CancelIrql), 69);
const_assert_eq!(offset_of!(Irp, CancelRoutine), 0x68);
const_assert_eq!(size_of::<wdk_sys::PDRIVER_CANCEL>(), size_of::<usize>());
const_assert_eq!(offset_of!(Irp, Tail), 120);
// Tail.Overlay: DriverContext[4] at 0x78 (slot 3, IoCsq's, at 144), ListEntry at 0xA8,
// CurrentStackLocation at 0xB8.
const_assert_eq!(
    offset_of!(
        Irp,
        Tail.Overlay.__bindgen_anon_1.__bindgen_anon_1.DriverContext
    ),
    0x78
);
const_assert_eq!(
    offset_of!(
        Irp,
        Tail.Overlay.__bindgen_anon_1.__bindgen_anon_1.DriverContext
    ) + 3 * size_of::<*mut c_void>(),
    144
);
const_assert_eq!(
    offset_of!(Irp, Tail.Overlay.__bindgen_anon_2.ListEntry),
    0xA8
);
const_assert_eq!(
    offset_of!(
        Irp,
        Tail.Overlay
            .__bindgen_anon_2
            .__bindgen_anon_1
            .CurrentStackLocation
    ),
    0xB8
);
// DeviceQueueEntry shares DriverContext's storage (IoStartPacket's device queue).
const_assert_eq!(
    offset_of!(Irp, Tail.Overlay.__bindgen_anon_1.DeviceQueueEntry),
    0x78
);
const_assert_eq!(offset_of!(Irp, Tail.Overlay.Thread), 152);
const_assert_eq!(offset_of!(Irp, Tail.Overlay.OriginalFileObject), 192);
// LIST_ENTRY and IO_STATUS_BLOCK.
const_assert_eq!(offset_of!(ListEntry, Blink), 8);
const_assert_eq!(size_of::<wdk_sys::IO_STATUS_BLOCK>(), 16);
const_assert_eq!(offset_of!(wdk_sys::IO_STATUS_BLOCK, Information), 8);
// IO_STACK_LOCATION: 0x48 bytes; Parameters.DeviceIoControl's lengths and code are
// POINTER_ALIGNMENT members (0x10 and 0x18, not 0xC and 0x10: spec errata).
const_assert_eq!(size_of::<IoStackLocation>(), 0x48);
const_assert_eq!(offset_of!(IoStackLocation, Control), 3);
const_assert_eq!(offset_of!(IoStackLocation, Parameters), 8);
const_assert_eq!(
    offset_of!(
        IoStackLocation,
        Parameters.DeviceIoControl.OutputBufferLength
    ),
    0x08
);
const_assert_eq!(
    offset_of!(
        IoStackLocation,
        Parameters.DeviceIoControl.InputBufferLength
    ),
    0x10
);
const_assert_eq!(
    offset_of!(IoStackLocation, Parameters.DeviceIoControl.IoControlCode),
    0x18
);
const_assert_eq!(
    offset_of!(IoStackLocation, Parameters.DeviceIoControl.Type3InputBuffer),
    32
);
const_assert_eq!(offset_of!(IoStackLocation, DeviceObject), 40);
const_assert_eq!(offset_of!(IoStackLocation, FileObject), 48);
const_assert_eq!(offset_of!(IoStackLocation, CompletionRoutine), 56);
const_assert_eq!(offset_of!(IoStackLocation, Context), 64);
// Kernel objects embedded in Rust values (sized and placed by the safe layer).
const_assert_eq!(size_of::<ListEntry>(), 16);
const_assert_eq!(size_of::<IoCsq>(), 64);
const_assert_eq!(offset_of!(IoCsq, CsqInsertIrp), 8);
const_assert_eq!(offset_of!(IoCsq, CsqRemoveIrp), 16);
const_assert_eq!(offset_of!(IoCsq, CsqPeekNextIrp), 24);
const_assert_eq!(offset_of!(IoCsq, CsqAcquireLock), 32);
const_assert_eq!(offset_of!(IoCsq, CsqReleaseLock), 40);
const_assert_eq!(offset_of!(IoCsq, CsqCompleteCanceledIrp), 48);
const_assert_eq!(offset_of!(IoCsq, ReservePointer), 56);
const_assert_eq!(size_of::<CsqIrpContext>(), 24);
const_assert_eq!(offset_of!(CsqIrpContext, Irp), 8);
const_assert_eq!(offset_of!(CsqIrpContext, Csq), 16);
const_assert_eq!(size_of::<KTimer>(), 64);
const_assert_eq!(offset_of!(KTimer, Dpc), 48);
const_assert_eq!(size_of::<KDpc>(), 64);
const_assert_eq!(offset_of!(KDpc, DeferredRoutine), 24);
const_assert_eq!(offset_of!(KDpc, DeferredContext), 32);
const_assert_eq!(size_of::<KEvent>(), 24);
const_assert_eq!(size_of::<KSemaphore>(), 32);
const_assert_eq!(offset_of!(KSemaphore, Limit), 24);
const_assert_eq!(size_of::<KSpinLock>(), 8);
// IO_REMOVE_LOCK: the free-build layout (32 bytes: the common block only). wdk-sys binds it
// (no `DBG` debug block); `REMOVE_LOCK_SIZE` below tells the ...Ex routines so.
const_assert_eq!(size_of::<RemoveLockObject>(), 32);
// DEVICE_OBJECT: the WDK declares it 16-byte aligned, so its size is 336; bindgen over the
// mingw-w64 headers gives 328 (spec errata). The seam never sizes one (the I/O manager
// allocates it); it relies on the offsets below, identical in both.
const_assert!(size_of::<DeviceObject>() == 336 || size_of::<DeviceObject>() == 328);
const_assert_eq!(offset_of!(DeviceObject, DriverObject), 8);
const_assert_eq!(offset_of!(DeviceObject, NextDevice), 16);
const_assert_eq!(offset_of!(DeviceObject, CurrentIrp), 32);
const_assert_eq!(offset_of!(DeviceObject, Flags), 48);
const_assert_eq!(offset_of!(DeviceObject, Characteristics), 52);
const_assert_eq!(offset_of!(DeviceObject, DeviceExtension), 64);
const_assert_eq!(offset_of!(DeviceObject, StackSize), 76);
const_assert_eq!(offset_of!(DeviceObject, DeviceQueue), 160);
// DRIVER_OBJECT.
const_assert_eq!(size_of::<DriverObject>(), 336);
const_assert_eq!(offset_of!(DriverObject, DeviceObject), 8);
const_assert_eq!(offset_of!(DriverObject, DriverStartIo), 96);
const_assert_eq!(offset_of!(DriverObject, DriverUnload), 104);
const_assert_eq!(offset_of!(DriverObject, MajorFunction), 112);
const_assert_eq!(
    size_of::<[wdk_sys::PDRIVER_DISPATCH; super::IRP_MJ_COUNT]>(),
    size_of::<[*mut c_void; 28]>()
);
const_assert_eq!(offset_of!(wdk_sys::FILE_OBJECT, FsContext), 24);
// The well-known SIDs read from SE_EXPORTS (the table only ever grew; ntsim's image loader
// serves the same offsets).
const_assert_eq!(offset_of!(wdk_sys::SE_EXPORTS, SeWorldSid), 192);
const_assert_eq!(offset_of!(wdk_sys::SE_EXPORTS, SeLocalSystemSid), 264);
const_assert_eq!(offset_of!(wdk_sys::SE_EXPORTS, SeAliasAdminsSid), 272);
// The absolute security descriptor built by `device_create`.
const_assert_eq!(size_of::<wdk_sys::SECURITY_DESCRIPTOR>(), 40);
const_assert_eq!(size_of::<wdk_sys::ACL>(), 8);

/// Converts one of our `extern "system"` callbacks to the `extern "C"` pointer type bindgen
/// declares. On x86-64 Windows both names denote the same (Microsoft x64) convention.
macro_rules! as_c_callback {
    ($f:expr, $from:ty => $to:ty) => {{
        let f: $from = $f;
        // SAFETY: same size (one code pointer) and the same calling convention on this target.
        let c = unsafe { core::mem::transmute::<$from, $to>(f) };
        Some(c)
    }};
}

// ---------------------------------------------------------------------------------------------
// Inline routines of the WDK headers, rewritten. None of these is an ntoskrnl export.

/// `IoGetCurrentIrpStackLocation`: the header version returns
/// `Irp->Tail.Overlay.CurrentStackLocation` (asserting in checked builds that
/// `CurrentLocation <= StackCount`).
///
/// # Safety
/// `irp` is a live IRP.
unsafe fn io_get_current_irp_stack_location(irp: *mut Irp) -> *mut IoStackLocation {
    // SAFETY: caller contract; the union member at this offset is the stack-location pointer
    // for any IRP being processed by a driver (PacketType is for completion-port packets only).
    unsafe { current_stack_location_slot(irp).read() }
}

/// `&Irp->Tail.Overlay.CurrentStackLocation` (an address computation; the offset is asserted
/// above).
fn current_stack_location_slot(irp: *mut Irp) -> *mut *mut IoStackLocation {
    irp.wrapping_byte_add(IRP_CURRENT_STACK_LOCATION).cast()
}

/// `IoGetNextIrpStackLocation`: the header version returns the current location minus one
/// (stack locations are an array after the IRP, used from the end towards the start).
///
/// # Safety
/// `irp` is a live IRP with a location below the current one (`CurrentLocation > 1`).
unsafe fn io_get_next_irp_stack_location(irp: *mut Irp) -> *mut IoStackLocation {
    // SAFETY: caller contract.
    let current = unsafe { io_get_current_irp_stack_location(irp) };
    current.wrapping_sub(1)
}

/// `IoSetNextIrpStackLocation`: the header version decrements `Irp->CurrentLocation` and moves
/// `CurrentStackLocation` one location down (what `IoCallDriver` does before calling the next
/// driver).
///
/// # Safety
/// `irp` is a live IRP the caller owns, with a location below the current one.
unsafe fn io_set_next_irp_stack_location(irp: *mut Irp) {
    // SAFETY: caller contract.
    let next = unsafe { io_get_next_irp_stack_location(irp) };
    // SAFETY: caller contract: the caller owns the IRP.
    unsafe { (*irp).CurrentLocation -= 1 };
    // SAFETY: as above.
    unsafe { current_stack_location_slot(irp).write(next) };
}

/// `IoMarkIrpPending`: the header version ORs `SL_PENDING_RETURNED` into the current stack
/// location's `Control`.
///
/// # Safety
/// `irp` is a live IRP the caller owns.
unsafe fn io_mark_irp_pending(irp: *mut Irp) {
    // SAFETY: caller contract.
    let sl = unsafe { io_get_current_irp_stack_location(irp) };
    // SAFETY: the caller owns the IRP, so nobody else writes its current location.
    unsafe { (*sl).Control |= SL_PENDING_RETURNED };
}

/// `IoSetCancelRoutine`: the header version is `InterlockedExchangePointer` on
/// `Irp->CancelRoutine` (a full-barrier atomic exchange), returning the old value; spec A.3.
///
/// # Safety
/// `irp` is a live IRP.
unsafe fn io_set_cancel_routine(
    irp: *mut Irp,
    routine: Option<DispatchCancelFn>,
) -> Option<DispatchCancelFn> {
    // SAFETY: caller contract; address only.
    let field = unsafe { &raw mut (*irp).CancelRoutine };
    // SAFETY: the field is a pointer-sized, pointer-aligned code pointer (asserted above) that
    // the kernel and drivers only change by atomic exchange while the IRP is live.
    let word = unsafe { AtomicUsize::from_ptr(field.cast::<usize>()) };
    let new = routine.map_or(0, |f| f as usize);
    let old = word.swap(new, Ordering::SeqCst);
    if old == 0 {
        None
    } else {
        // SAFETY: a non-zero value was stored from a DRIVER_CANCEL pointer.
        Some(unsafe { core::mem::transmute::<usize, DispatchCancelFn>(old) })
    }
}

/// `IoCompleteRequest`: a macro for the exported `IofCompleteRequest` (fastcall on x86; the same
/// convention as everything else on x64).
///
/// # Safety
/// The caller owns `irp`, its cancel routine is NULL and it holds no spin lock.
unsafe fn io_complete_request(irp: *mut Irp, boost: wdk_sys::CCHAR) {
    // SAFETY: caller contract.
    unsafe { ntddk::IofCompleteRequest(irp, boost) };
}

/// `KeGetCurrentIrql`: on x64 the header version reads CR8, the APIC task-priority register the
/// kernel keeps equal to the IRQL.
fn ke_get_current_irql() -> Kirql {
    let cr8: u64;
    // SAFETY: kernel code runs at CPL 0, where reading CR8 is allowed; it has no side effect.
    unsafe { asm!("mov {}, cr8", out(reg) cr8, options(nomem, nostack, preserves_flags)) };
    cr8 as Kirql
}

/// `KeRaiseIrql`: on x64 the header version (`KzRaiseIrql`) reads CR8 as the old IRQL and
/// writes the new one (checked builds bug-check if it is lower). `KfRaiseIrql` is not an x64
/// export.
///
/// # Safety
/// `new` >= the current IRQL; the caller lowers it again with [`ke_lower_irql`].
unsafe fn ke_raise_irql(new: Kirql) -> Kirql {
    let old = ke_get_current_irql();
    debug_assert!(new >= old, "KeRaiseIrql to a lower IRQL");
    // SAFETY: CPL 0; raising the task priority only masks interrupts (caller contract).
    unsafe { asm!("mov cr8, {}", in(reg) u64::from(new), options(nostack, preserves_flags)) };
    old
}

/// `KeLowerIrql`: on x64 the header version (`KzLowerIrql`) writes CR8; lowering it lets the
/// APIC deliver the software interrupts (DPC, APC) that became pending meanwhile.
///
/// # Safety
/// `old` is what the matching [`ke_raise_irql`] (or spin lock acquire) returned.
unsafe fn ke_lower_irql(old: Kirql) {
    // SAFETY: CPL 0; the caller restores an IRQL it raised from (caller contract).
    unsafe { asm!("mov cr8, {}", in(reg) u64::from(old), options(nostack, preserves_flags)) };
}

// The exported equivalents of the IRQL inlines (x64 ntoskrnl exports them for binary
// compatibility; wdk-sys does not bind them because the headers define the names as inlines).
// Used unless the `header-inlines` feature is on: ntsim's image loader binds these imports,
// while an inline CR8 access cannot be intercepted in a user-mode process.
unsafe extern "system" {
    #[link_name = "KeGetCurrentIrql"]
    fn KeGetCurrentIrqlExport() -> Kirql;
    fn KeRaiseIrqlToDpcLevel() -> Kirql;
    #[link_name = "KeLowerIrql"]
    fn KeLowerIrqlExport(NewIrql: Kirql);
}

/// The current IRQL: [`ke_get_current_irql`] or the `KeGetCurrentIrql` export.
fn current_irql_impl() -> Kirql {
    if cfg!(feature = "header-inlines") {
        ke_get_current_irql()
    } else {
        // SAFETY: no preconditions; callable at any IRQL.
        unsafe { KeGetCurrentIrqlExport() }
    }
}

/// Raises the IRQL to DISPATCH_LEVEL: [`ke_raise_irql`] or the `KeRaiseIrqlToDpcLevel` export.
///
/// # Safety
/// The current IRQL is <= DISPATCH_LEVEL; the caller lowers it again with [`lower_irql_impl`].
unsafe fn raise_irql_to_dpc_impl() -> Kirql {
    if cfg!(feature = "header-inlines") {
        // SAFETY: forwarded caller contract.
        unsafe { ke_raise_irql(super::DISPATCH_LEVEL) }
    } else {
        // SAFETY: forwarded caller contract.
        unsafe { KeRaiseIrqlToDpcLevel() }
    }
}

/// Lowers the IRQL: [`ke_lower_irql`] or the `KeLowerIrql` export.
///
/// # Safety
/// As [`ke_lower_irql`].
unsafe fn lower_irql_impl(old: Kirql) {
    if cfg!(feature = "header-inlines") {
        // SAFETY: forwarded caller contract.
        unsafe { ke_lower_irql(old) }
    } else {
        // SAFETY: forwarded caller contract.
        unsafe { KeLowerIrqlExport(old) }
    }
}

/// `KeInitializeSpinLock`: the header version stores 0 (released) in the lock word.
///
/// # Safety
/// `lock` is valid for writes.
unsafe fn ke_initialize_spin_lock(lock: *mut KSpinLock) {
    // SAFETY: caller contract.
    unsafe { lock.write(0) }
}

/// `KeAcquireSpinLock`: on x64 a macro for the exported `KeAcquireSpinLockRaiseToDpc`
/// (returns the old IRQL instead of storing it through a pointer).
///
/// # Safety
/// As the seam's `spin_lock_acquire`.
unsafe fn ke_acquire_spin_lock(lock: *mut KSpinLock) -> Kirql {
    // SAFETY: caller contract.
    unsafe { ntddk::KeAcquireSpinLockRaiseToDpc(lock) }
}

/// `ObDereferenceObject`: a macro for the exported `ObfDereferenceObject` (the new count is
/// dropped).
///
/// # Safety
/// The caller holds a reference to `object` and gives it up.
unsafe fn ob_dereference_object(object: *mut c_void) {
    // SAFETY: caller contract.
    unsafe { ntddk::ObfDereferenceObject(object) };
}

/// `KeGetCurrentThread` (and `PsGetCurrentThread`, the same pointer typed as an `ETHREAD`): on
/// x64 the header version reads `gs:[0x188]`, the processor control block's `CurrentThread`
/// (GS points at the current processor's KPCR in kernel mode; its PRCB starts at 0x180).
fn ke_get_current_thread() -> *mut KThread {
    let thread: *mut KThread;
    // SAFETY: in kernel mode GS is the current processor's KPCR, readable at any IRQL; the
    // value read is the running thread, which cannot change under the running code.
    unsafe {
        asm!("mov {}, gs:[0x188]", out(reg) thread, options(nostack, readonly, preserves_flags));
    }
    thread
}

/// The remove-lock macros (`IoInitializeRemoveLock`, `IoAcquireRemoveLock`,
/// `IoReleaseRemoveLock`, `IoReleaseRemoveLockAndWait`) call the exported `...Ex` routines with
/// `sizeof(IO_REMOVE_LOCK)`, which tells the kernel whether the caller was built with the
/// checked (debug block) or the free layout; the acquire macro also passes `__FILE__` and
/// `__LINE__` for the checked build's tracking.
const REMOVE_LOCK_SIZE: u32 = size_of::<RemoveLockObject>() as u32;

/// `__fastfail(FAST_FAIL_CORRUPT_LIST_ENTRY)`: `int 0x29` with the code in ECX, which the
/// kernel turns into bug check 0x139 (KERNEL_SECURITY_CHECK_FAILURE) without unwinding.
fn fast_fail_corrupt_list_entry() -> ! {
    // SAFETY: `int 0x29` never returns (the kernel bug-checks); nothing is read or written.
    unsafe { asm!("int 0x29", in("ecx") 3u32, options(noreturn, nomem, nostack)) }
}

// ---------------------------------------------------------------------------------------------
// IRPs.

/// The current stack location, copied out.
///
/// # Safety
/// `irp` is a live IRP with a current stack location.
unsafe fn current_stack_location(irp: *mut Irp) -> IoStackLocation {
    // SAFETY: caller contract.
    let sl = unsafe { io_get_current_irp_stack_location(irp) };
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
    unsafe { current_stack_location(irp) }.Control & SL_PENDING_RETURNED != 0
}

pub(crate) unsafe fn irp_mark_pending(irp: *mut Irp) {
    // SAFETY: forwarded caller contract.
    unsafe { io_mark_irp_pending(irp) }
}

pub(crate) unsafe fn irp_set_cancel_routine(
    irp: *mut Irp,
    routine: Option<DispatchCancelFn>,
) -> Option<DispatchCancelFn> {
    // SAFETY: forwarded caller contract.
    unsafe { io_set_cancel_routine(irp, routine) }
}

pub(crate) unsafe fn irp_complete(irp: *mut Irp, status: Ntstatus, information: usize) {
    let iosb = wdk_sys::IO_STATUS_BLOCK {
        __bindgen_anon_1: wdk_sys::_IO_STATUS_BLOCK__bindgen_ty_1 { Status: status },
        Information: information as wdk_sys::ULONG_PTR,
    };
    // SAFETY: the caller owns the IRP.
    unsafe { (*irp).IoStatus = iosb };
    // SAFETY: the caller owns the IRP, its cancel routine is NULL and no lock is held.
    unsafe { io_complete_request(irp, IO_NO_INCREMENT) }
}

/// Offset of `Tail.Overlay.CurrentStackLocation` in an IRP.
const IRP_CURRENT_STACK_LOCATION: usize = offset_of!(
    Irp,
    Tail.Overlay
        .__bindgen_anon_2
        .__bindgen_anon_1
        .CurrentStackLocation
);
/// Offset of `Tail.Overlay.ListEntry` in an IRP.
const IRP_LIST_ENTRY: usize = offset_of!(Irp, Tail.Overlay.__bindgen_anon_2.ListEntry);
/// Offset of `Tail.Overlay.DriverContext` in an IRP.
const IRP_DRIVER_CONTEXT: usize = offset_of!(
    Irp,
    Tail.Overlay.__bindgen_anon_1.__bindgen_anon_1.DriverContext
);

pub(crate) fn irp_list_entry(irp: *mut Irp) -> *mut ListEntry {
    irp.wrapping_byte_add(IRP_LIST_ENTRY).cast()
}

pub(crate) fn irp_from_list_entry(entry: *mut ListEntry) -> *mut Irp {
    entry.wrapping_byte_sub(IRP_LIST_ENTRY).cast()
}

pub(crate) fn irp_driver_context(irp: *mut Irp, index: usize) -> *mut *mut c_void {
    irp.wrapping_byte_add(IRP_DRIVER_CONTEXT)
        .cast::<*mut c_void>()
        .wrapping_add(index)
}

// ---------------------------------------------------------------------------------------------
// Lists: InitializeListHead, IsListEmpty, InsertTailList and RemoveEntryList are header inlines.
// The WDK's InsertTailList and RemoveEntryList first check that the neighbours point back at
// the entry (or head) and fast-fail with FAST_FAIL_CORRUPT_LIST_ENTRY if not; so do these.

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
    // SAFETY: `blink` is linked in the same list.
    if unsafe { (*blink).Flink } != head {
        fast_fail_corrupt_list_entry();
    }
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
    let next_back = unsafe { (*next).Blink };
    // SAFETY: as above.
    let prev_forward = unsafe { (*prev).Flink };
    if next_back != entry || prev_forward != entry {
        fast_fail_corrupt_list_entry();
    }
    // SAFETY: as above.
    unsafe { (*prev).Flink = next };
    // SAFETY: as above.
    unsafe { (*next).Blink = prev };
}

// ---------------------------------------------------------------------------------------------
// Cancel-safe queues.

pub(crate) unsafe fn csq_initialize_ex(csq: *mut IoCsq, cb: CsqCallbacks) -> Ntstatus {
    let insert = as_c_callback!(
        cb.insert,
        super::CsqInsertIrpExFn => unsafe extern "C" fn(*mut IoCsq, *mut Irp, *mut c_void) -> Ntstatus
    );
    let remove = as_c_callback!(
        cb.remove,
        super::CsqIrpFn => unsafe extern "C" fn(*mut IoCsq, *mut Irp)
    );
    let peek_next = as_c_callback!(
        cb.peek_next,
        super::CsqPeekNextIrpFn => unsafe extern "C" fn(*mut IoCsq, *mut Irp, *mut c_void) -> *mut Irp
    );
    let acquire_lock = as_c_callback!(
        cb.acquire_lock,
        super::CsqAcquireLockFn => unsafe extern "C" fn(*mut IoCsq, *mut Kirql)
    );
    let release_lock = as_c_callback!(
        cb.release_lock,
        super::CsqReleaseLockFn => unsafe extern "C" fn(*mut IoCsq, Kirql)
    );
    let complete_canceled = as_c_callback!(
        cb.complete_canceled,
        super::CsqIrpFn => unsafe extern "C" fn(*mut IoCsq, *mut Irp)
    );
    // SAFETY: forwarded caller contract; the callbacks have the IoCsq signatures.
    unsafe {
        ntddk::IoCsqInitializeEx(
            csq,
            insert,
            remove,
            peek_next,
            acquire_lock,
            release_lock,
            complete_canceled,
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
    current_irql_impl()
}

pub(crate) unsafe fn spin_lock_init(lock: *mut KSpinLock) {
    // SAFETY: forwarded caller contract.
    unsafe { ke_initialize_spin_lock(lock) }
}

pub(crate) unsafe fn spin_lock_acquire(lock: *mut KSpinLock) -> Kirql {
    // SAFETY: forwarded caller contract.
    unsafe { ke_acquire_spin_lock(lock) }
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

/// A `PLARGE_INTEGER` timeout (`LARGE_INTEGER` is a union over an `i64`) or NULL.
fn timeout_ptr(timeout: &mut Option<i64>) -> *mut wdk_sys::LARGE_INTEGER {
    match timeout {
        Some(t) => ptr::from_mut(t).cast(),
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
    // built-in wait blocks are used (no wait block array); the array is only read.
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
    // SAFETY: `interval` is a live LARGE_INTEGER-sized local. A non-alertable kernel-mode wait
    // only returns STATUS_SUCCESS.
    let _ = unsafe { ntddk::KeDelayExecutionThread(KERNEL_MODE, 0, (&raw mut interval).cast()) };
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
        DpcFn => unsafe extern "C" fn(*mut KDpc, *mut c_void, *mut c_void, *mut c_void)
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
// Data exports, read through their import slots (see the module docs).

// SAFETY: the import library defines each `__imp_` symbol as the import address table slot of
// that ntoskrnl export; the loader fills the slot with the variable's address before any code
// of the image runs, and never changes it.
unsafe extern "C" {
    /// `&PsThreadType` (an `OBJECT_TYPE**` variable).
    #[link_name = "__imp_PsThreadType"]
    static IMP_PS_THREAD_TYPE: *const wdk_sys::POBJECT_TYPE;
    /// `&ExEventObjectType`.
    #[link_name = "__imp_ExEventObjectType"]
    static IMP_EX_EVENT_OBJECT_TYPE: *const wdk_sys::POBJECT_TYPE;
    /// `&SeExports` (a `PSE_EXPORTS` variable).
    #[link_name = "__imp_SeExports"]
    static IMP_SE_EXPORTS: *const wdk_sys::PSE_EXPORTS;
}

/// `*PsThreadType` or `*ExEventObjectType`, given its import slot's value.
///
/// # Safety
/// `variable` is the address of an exported `POBJECT_TYPE` variable.
unsafe fn object_type(variable: *const wdk_sys::POBJECT_TYPE) -> wdk_sys::POBJECT_TYPE {
    // SAFETY: caller contract; the kernel sets these variables before loading drivers.
    unsafe { variable.read() }
}

fn ps_thread_type() -> wdk_sys::POBJECT_TYPE {
    // SAFETY: the loader filled the slot (see the extern block).
    let variable = unsafe { IMP_PS_THREAD_TYPE };
    // SAFETY: it is the address of `PsThreadType`.
    unsafe { object_type(variable) }
}

fn ex_event_object_type() -> wdk_sys::POBJECT_TYPE {
    // SAFETY: the loader filled the slot (see the extern block).
    let variable = unsafe { IMP_EX_EVENT_OBJECT_TYPE };
    // SAFETY: it is the address of `ExEventObjectType`.
    unsafe { object_type(variable) }
}

/// The well-known SID `SeExports` holds for `trustee` (kernel memory, valid forever).
fn well_known_sid(trustee: Trustee) -> wdk_sys::PSID {
    // SAFETY: the loader filled the slot (see the extern block).
    let variable = unsafe { IMP_SE_EXPORTS };
    // SAFETY: it is the address of `SeExports`, set during system initialization.
    let exports = unsafe { variable.read() };
    // SAFETY: `SeExports` points at the kernel's SE_EXPORTS table, which never changes after
    // initialization; the SID fields read here exist in every version (it only grows).
    let exports = unsafe { &*exports };
    match trustee {
        Trustee::LocalSystem => exports.SeLocalSystemSid,
        Trustee::Administrators => exports.SeAliasAdminsSid,
        Trustee::Everyone => exports.SeWorldSid,
    }
}

// ---------------------------------------------------------------------------------------------
// Threads and objects.

pub(crate) unsafe fn thread_create(
    start: ThreadStartFn,
    context: *mut c_void,
) -> Result<*mut KThread, Ntstatus> {
    let mut handle: wdk_sys::HANDLE = ptr::null_mut();
    let start = as_c_callback!(start, ThreadStartFn => unsafe extern "C" fn(*mut c_void));
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
    // SAFETY: `handle` is the kernel handle just returned; `object` is writable.
    let status = unsafe {
        ntddk::ObReferenceObjectByHandle(
            handle,
            SYNCHRONIZE,
            ps_thread_type(),
            KERNEL_MODE,
            &mut object,
            ptr::null_mut(),
        )
    };
    // SAFETY: our own kernel handle, closed once; closing a valid handle succeeds.
    let _ = unsafe { ntddk::ZwClose(handle) };
    if status < 0 { Err(status) } else { Ok(object) }
}

pub(crate) unsafe fn object_dereference(object: *mut c_void) {
    // SAFETY: forwarded caller contract.
    unsafe { ob_dereference_object(object) }
}

pub(crate) fn event_reference_by_handle(handle: usize, mode: i8) -> Result<*mut KEvent, Ntstatus> {
    let mut object: *mut c_void = ptr::null_mut();
    // SAFETY: `object` is writable; a bad handle is reported by status, not by a fault.
    let status = unsafe {
        ntddk::ObReferenceObjectByHandle(
            handle as wdk_sys::HANDLE,
            SYNCHRONIZE | EVENT_MODIFY_STATE,
            ex_event_object_type(),
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

/// A UNICODE_STRING over `s` (valid while `s` is).
fn unicode(s: &[u16]) -> wdk_sys::UNICODE_STRING {
    let bytes = (s.len() * 2) as u16;
    wdk_sys::UNICODE_STRING {
        Length: bytes,
        MaximumLength: bytes,
        Buffer: s.as_ptr().cast_mut(),
    }
}

// Not bound by wdk-sys (declared in ntifs.h), exported by ntoskrnl.
unsafe extern "system" {
    fn ObSetSecurityObjectByPointer(
        Object: *mut c_void,
        SecurityInformation: wdk_sys::SECURITY_INFORMATION,
        SecurityDescriptor: wdk_sys::PSECURITY_DESCRIPTOR,
    ) -> Ntstatus;
}

/// Room for the DACL of any [`DeviceAccess`]: the ACL header and at most three ACEs of 8 bytes
/// plus a SID (12 or 16 bytes for the well-known SIDs used).
const DACL_BUFFER: usize = 128;

/// A ULONG-aligned buffer for an ACL (`RtlCreateAcl` requires that alignment).
#[repr(C, align(8))]
struct AclBuffer([u8; DACL_BUFFER]);

/// Builds `access`'s DACL and sets it on `device` (what `IoCreateDeviceSecure` does with an
/// SDDL string): an absolute security descriptor with a protected DACL of access-allowed ACEs,
/// applied with `ObSetSecurityObjectByPointer(DACL_SECURITY_INFORMATION)`, which copies it.
///
/// # Safety
/// `device` is a device object of the caller's driver, not yet visible to I/O.
unsafe fn device_set_dacl(device: *mut DeviceObject, access: DeviceAccess) -> Ntstatus {
    let aces = access.aces();
    // The ACL's size: the header, then each ACE (its header and mask, 8 bytes) and its SID.
    let mut size = size_of::<wdk_sys::ACL>();
    for ace in aces {
        // SAFETY: a well-known SID of the kernel.
        size += 8 + unsafe { ntddk::RtlLengthSid(well_known_sid(ace.trustee)) } as usize;
    }
    if size > DACL_BUFFER {
        return STATUS_BUFFER_TOO_SMALL;
    }
    let mut buffer = AclBuffer([0; DACL_BUFFER]);
    let acl = (&raw mut buffer).cast::<wdk_sys::ACL>();
    // SAFETY: `acl` points at `size` writable, 8-aligned bytes.
    let status = unsafe { ntddk::RtlCreateAcl(acl, size as u32, ACL_REVISION) };
    if status < 0 {
        return status;
    }
    for ace in aces {
        // SAFETY: an initialized ACL with room for this ACE (sized above); a valid SID.
        let status = unsafe {
            ntddk::RtlAddAccessAllowedAce(
                acl,
                ACL_REVISION,
                ace.rights.mask(),
                well_known_sid(ace.trustee),
            )
        };
        if status < 0 {
            return status;
        }
    }
    // SAFETY: SECURITY_DESCRIPTOR is plain data; zero is a valid starting value.
    let mut sd: wdk_sys::SECURITY_DESCRIPTOR = unsafe { core::mem::zeroed() };
    let sd_ptr = &raw mut sd;
    let psd: wdk_sys::PSECURITY_DESCRIPTOR = sd_ptr.cast();
    // SAFETY: `sd` is a writable absolute security descriptor.
    let status = unsafe { ntddk::RtlCreateSecurityDescriptor(psd, SECURITY_DESCRIPTOR_REVISION) };
    if status < 0 {
        return status;
    }
    // SAFETY: `sd` is initialized; `acl` stays valid until the descriptor is applied below.
    let status = unsafe { ntddk::RtlSetDaclSecurityDescriptor(psd, 1, acl, 0) };
    if status < 0 {
        return status;
    }
    // `D:P`: the DACL is protected from inheritable ACEs of the parent directory.
    // SAFETY: `sd_ptr` points at the initialized local descriptor (all accesses go through it).
    unsafe { (*sd_ptr).Control |= SE_DACL_PROTECTED };
    // SAFETY: caller contract: our fresh device object; the descriptor and the ACL are live
    // locals, copied by the object manager.
    unsafe { ObSetSecurityObjectByPointer(device.cast(), DACL_SECURITY_INFORMATION, psd) }
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
    let mut device: *mut DeviceObject = ptr::null_mut();
    // IoCreateDeviceSecure lives in wdmsec.lib (a static library, not an ntoskrnl export): its
    // job is done here with ntoskrnl exports.
    // SAFETY: the string and `device` are live locals; the caller guarantees `driver`.
    let status = unsafe {
        ntddk::IoCreateDevice(
            driver,
            extension_size,
            &mut name,
            device_type,
            characteristics,
            u8::from(exclusive),
            &mut device,
        )
    };
    if status < 0 {
        return Err(status);
    }
    // SAFETY: our fresh device, not visible to I/O yet (DO_DEVICE_INITIALIZING).
    let status = unsafe { device_set_dacl(device, access) };
    if status < 0 {
        // SAFETY: as above: nothing else knows the device.
        unsafe { ntddk::IoDeleteDevice(device) };
        return Err(status);
    }
    Ok(device)
}

pub(crate) unsafe fn device_extension(device: *mut DeviceObject) -> *mut c_void {
    // SAFETY: the caller guarantees a live device object.
    unsafe { (*device).DeviceExtension }
}

pub(crate) unsafe fn device_finish_init(device: *mut DeviceObject, buffered_io: bool) {
    // SAFETY: the caller guarantees its own device object, not yet visible to I/O.
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
    // SAFETY: the caller guarantees its own driver object.
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
        DispatchFn => unsafe extern "C" fn(*mut DeviceObject, *mut Irp) -> Ntstatus
    );
    // SAFETY: the caller guarantees its own driver object during DriverEntry.
    unsafe { (*driver).MajorFunction[major] = routine }
}

pub(crate) unsafe fn driver_set_unload(driver: *mut DriverObject, routine: UnloadFn) {
    let routine = as_c_callback!(routine, UnloadFn => unsafe extern "C" fn(*mut DriverObject));
    // SAFETY: as above.
    unsafe { (*driver).DriverUnload = routine }
}

// ---------------------------------------------------------------------------------------------
// IoStartPacket / StartIo and the cancel spin lock (KeRaiseIrql/KeLowerIrql: the inline
// routines section).

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

/// Raises the IRQL to DISPATCH_LEVEL unless it already is that high (what IoStartPacket's
/// callers do with `KeRaiseIrql`); returns the previous IRQL for [`irql_lower`].
pub(crate) fn irql_raise_to_dispatch() -> Kirql {
    let old = current_irql_impl();
    if old < super::DISPATCH_LEVEL {
        // SAFETY: raising from below DISPATCH_LEVEL; the caller lowers it with `irql_lower`.
        unsafe { raise_irql_to_dpc_impl() };
    }
    old
}

pub(crate) unsafe fn irql_lower(irql: Kirql) {
    // SAFETY: forwarded caller contract (`irql` is what `irql_raise_to_dispatch` returned).
    unsafe { lower_irql_impl(irql) }
}

pub(crate) unsafe fn device_queue_remove_irp(device: *mut DeviceObject, irp: *mut Irp) -> bool {
    // SAFETY: the caller guarantees a live device object; address only.
    let queue = unsafe { &raw mut (*device).DeviceQueue };
    let entry = irp
        .wrapping_byte_add(offset_of!(
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
    let cancel = as_c_callback!(
        cancel,
        DispatchCancelFn => unsafe extern "C" fn(*mut DeviceObject, *mut Irp)
    );
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
    let routine = as_c_callback!(
        routine,
        StartIoFn => unsafe extern "C" fn(*mut DeviceObject, *mut Irp)
    );
    // SAFETY: caller contract: our driver object.
    unsafe { (*driver).DriverStartIo = routine }
}

pub(crate) unsafe fn device_driver(device: *mut DeviceObject) -> *mut DriverObject {
    // SAFETY: the caller guarantees a live device object.
    unsafe { (*device).DriverObject }
}

// ---------------------------------------------------------------------------------------------
// Remove locks (the IoXxxRemoveLock names are macros over the Ex routines, see
// `REMOVE_LOCK_SIZE`).

pub(crate) unsafe fn remove_lock_init(lock: *mut RemoveLockObject, tag: u32) {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::IoInitializeRemoveLockEx(lock, tag, 0, 0, REMOVE_LOCK_SIZE) }
}

pub(crate) unsafe fn remove_lock_acquire(lock: *mut RemoveLockObject) -> Ntstatus {
    // SAFETY: forwarded caller contract.
    unsafe {
        ntddk::IoAcquireRemoveLockEx(
            lock,
            ptr::null_mut(),
            c"csq".as_ptr(),
            line!(),
            REMOVE_LOCK_SIZE,
        )
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
// Kernel image glue (panic handler and global allocator of a driver image, `crate::image`).

/// `KeBugCheckEx`: stops the machine; never returns.
pub(crate) fn bug_check(code: u32, p1: usize, p2: usize, p3: usize, p4: usize) -> ! {
    // SAFETY: KeBugCheckEx may be called at any IRQL and does not return.
    unsafe { ntddk::KeBugCheckEx(code, p1 as u64, p2 as u64, p3 as u64, p4 as u64) }
}

/// `ExAllocatePool2(POOL_FLAG_NON_PAGED [| POOL_FLAG_UNINITIALIZED], size, tag)`: a block of
/// non-paged pool, 16-byte aligned (page aligned from a page up), or null.
///
/// IRQL: <= DISPATCH_LEVEL.
pub(crate) fn image_pool_alloc(size: usize, tag: u32, zeroed: bool) -> *mut u8 {
    let flags = if zeroed {
        POOL_FLAG_NON_PAGED
    } else {
        POOL_FLAG_NON_PAGED | POOL_FLAG_UNINITIALIZED
    };
    // SAFETY: no pointer arguments; failure is a NULL return.
    unsafe { ntddk::ExAllocatePool2(flags, size as wdk_sys::SIZE_T, tag) }.cast()
}

/// `ExFreePoolWithTag`.
///
/// # Safety
/// `p` came from [`image_pool_alloc`] with `tag` and nothing uses it any more.
pub(crate) unsafe fn image_pool_free(p: *mut u8, tag: u32) {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::ExFreePoolWithTag(p.cast(), tag) }
}

// ---------------------------------------------------------------------------------------------
// Diagnostics.

pub(crate) fn report_driver_bug(bug: DriverBug, irp: *mut Irp, message: &str) {
    let rule = match bug {
        DriverBug::IrpDropped => c"F1",
        DriverBug::TicketDropped => c"F2",
    };
    // SAFETY: "%s" with a NUL-terminated string and "%p" with a pointer.
    unsafe {
        ntddk::DbgPrint(
            c"csq: driver bug %s (IRP %p): ".as_ptr(),
            rule.as_ptr(),
            irp,
        )
    };
    debug_print(message);
}

pub(crate) fn debug_print(message: &str) {
    // SAFETY: "%.*s" with a length and a pointer to that many bytes.
    unsafe { ntddk::DbgPrint(c"%.*s\n".as_ptr(), message.len() as i32, message.as_ptr()) };
}

/// Test-only control points exist on ntsim only (`host.rs`): nothing here.
#[inline(always)]
pub(crate) fn control_point(_name: &'static str) {}

// ---------------------------------------------------------------------------------------------
// Pool.

pub(crate) fn pool_alloc(size: usize, tag: u32) -> *mut c_void {
    // SAFETY: no pointer arguments; NULL on failure.
    unsafe { ntddk::ExAllocatePool2(POOL_FLAG_NON_PAGED, size as wdk_sys::SIZE_T, tag) }
}

pub(crate) unsafe fn pool_free(p: *mut c_void, tag: u32) {
    // SAFETY: forwarded caller contract.
    unsafe { ntddk::ExFreePoolWithTag(p, tag) }
}
