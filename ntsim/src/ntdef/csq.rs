//! Cancel-safe IRP queue objects (`IoCsq*`).

use core::mem::size_of;

use super::basic::{KIRQL, NTSTATUS, PVOID, ULONG};
use super::irp::IRP;

/// `IO_CSQ_IRP_CONTEXT.Type`.
pub const IO_TYPE_CSQ_IRP_CONTEXT: ULONG = 1;
/// `IO_CSQ.Type` after `IoCsqInitialize`.
pub const IO_TYPE_CSQ: ULONG = 2;
/// `IO_CSQ.Type` after `IoCsqInitializeEx`.
pub const IO_TYPE_CSQ_EX: ULONG = 3;

/// Inserts an IRP into the driver's queue (`IoCsqInitialize` flavour).
pub type PIO_CSQ_INSERT_IRP = Option<unsafe extern "system" fn(Csq: *mut IO_CSQ, Irp: *mut IRP)>;
/// Inserts an IRP into the driver's queue (`IoCsqInitializeEx` flavour); a failure status makes
/// `IoCsqInsertIrpEx` return it without queuing.
pub type PIO_CSQ_INSERT_IRP_EX = Option<
    unsafe extern "system" fn(Csq: *mut IO_CSQ, Irp: *mut IRP, InsertContext: PVOID) -> NTSTATUS,
>;
/// Unlinks an IRP from the driver's queue.
pub type PIO_CSQ_REMOVE_IRP = Option<unsafe extern "system" fn(Csq: *mut IO_CSQ, Irp: *mut IRP)>;
/// Returns the IRP after `Irp` (or the first if `Irp` is null) matching `PeekContext`, or null.
pub type PIO_CSQ_PEEK_NEXT_IRP = Option<
    unsafe extern "system" fn(Csq: *mut IO_CSQ, Irp: *mut IRP, PeekContext: PVOID) -> *mut IRP,
>;
/// Acquires the driver's queue lock, storing the previous IRQL.
pub type PIO_CSQ_ACQUIRE_LOCK =
    Option<unsafe extern "system" fn(Csq: *mut IO_CSQ, Irql: *mut KIRQL)>;
/// Releases the driver's queue lock, restoring the IRQL.
pub type PIO_CSQ_RELEASE_LOCK = Option<unsafe extern "system" fn(Csq: *mut IO_CSQ, Irql: KIRQL)>;
/// Completes an IRP that was cancelled while queued (called without the queue lock).
pub type PIO_CSQ_COMPLETE_CANCELED_IRP =
    Option<unsafe extern "system" fn(Csq: *mut IO_CSQ, Irp: *mut IRP)>;

/// A cancel-safe queue: the driver's callbacks plus a type tag.
///
/// **The `CsqInsertIrp` slot is reinterpreted** according to `Type`: with [`IO_TYPE_CSQ`] it holds
/// a [`PIO_CSQ_INSERT_IRP`], with [`IO_TYPE_CSQ_EX`] a [`PIO_CSQ_INSERT_IRP_EX`] (both are one
/// code pointer; see [`IO_CSQ::insert_irp_ex`]). `ReservePointer` is reset to null by the
/// `IoCsq*` routines on every call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_CSQ {
    pub Type: ULONG,
    pub CsqInsertIrp: PIO_CSQ_INSERT_IRP,
    pub CsqRemoveIrp: PIO_CSQ_REMOVE_IRP,
    pub CsqPeekNextIrp: PIO_CSQ_PEEK_NEXT_IRP,
    pub CsqAcquireLock: PIO_CSQ_ACQUIRE_LOCK,
    pub CsqReleaseLock: PIO_CSQ_RELEASE_LOCK,
    pub CsqCompleteCanceledIrp: PIO_CSQ_COMPLETE_CANCELED_IRP,
    pub ReservePointer: PVOID,
}
const _: () = assert!(size_of::<IO_CSQ>() == 64);

impl IO_CSQ {
    /// The `CsqInsertIrp` slot read as the `Ex` flavour (meaningful when `Type` is
    /// [`IO_TYPE_CSQ_EX`]).
    #[must_use]
    pub fn insert_irp_ex(&self) -> PIO_CSQ_INSERT_IRP_EX {
        // SAFETY: both types are `Option` of a function pointer, with the same size and the
        // null-pointer niche, so the bits transmute to a valid value; calling the result is only
        // sound if the slot was stored as a `PIO_CSQ_INSERT_IRP_EX`, which callers check via
        // `Type` before calling (the call itself is `unsafe`).
        unsafe {
            core::mem::transmute::<PIO_CSQ_INSERT_IRP, PIO_CSQ_INSERT_IRP_EX>(self.CsqInsertIrp)
        }
    }

    /// Stores an `Ex` insert routine in the `CsqInsertIrp` slot.
    pub fn set_insert_irp_ex(&mut self, routine: PIO_CSQ_INSERT_IRP_EX) {
        // SAFETY: same size and niche as above; the slot is only called through the type that
        // `Type` says it holds.
        self.CsqInsertIrp =
            unsafe { core::mem::transmute::<PIO_CSQ_INSERT_IRP_EX, PIO_CSQ_INSERT_IRP>(routine) };
    }
}

/// Optional per-IRP context for `IoCsqInsertIrp`/`IoCsqRemoveIrp`; `Type` is
/// [`IO_TYPE_CSQ_IRP_CONTEXT`]. `Irp` is null once the IRP has left the queue.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_CSQ_IRP_CONTEXT {
    pub Type: ULONG,
    pub Irp: *mut IRP,
    pub Csq: *mut IO_CSQ,
}
const _: () = assert!(size_of::<IO_CSQ_IRP_CONTEXT>() == 24);

impl_zeroed!(IO_CSQ, IO_CSQ_IRP_CONTEXT);
