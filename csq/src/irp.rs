//! IRP ownership in the types: [`Irp`], the right to complete one IRP, and the tokens a dispatch
//! routine returns ([`Pending`], [`Completed`], [`DispatchStatus`]).
//!
//! `Irp->CancelRoutine` changes only by atomic exchange, and whoever swaps a non-NULL value out
//! owns the IRP and is the only party that may complete it (spec A.3). An [`Irp`] value *is*
//! that ownership: the dispatch routine receives one, completing consumes it, a queue consumes it
//! and gives back [`Pending`], and every way out of a queue (remove-next, remove-by-ticket, the
//! cancellation callback) produces one again. Because it cannot be copied, an IRP cannot be
//! completed twice, nor completed while it sits in a queue.

use core::ffi::c_void;
use core::fmt;
use core::mem::ManuallyDrop;
use core::ops::Deref;
use core::ptr::NonNull;

use crate::status::NtStatus;
use crate::sys::{self, Opaque};

/// An IRP major function code (`IRP_MJ_*`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct MajorFunction(pub u8);

impl MajorFunction {
    /// `IRP_MJ_CREATE`.
    pub const CREATE: MajorFunction = MajorFunction(0x00);
    /// `IRP_MJ_CLOSE`.
    pub const CLOSE: MajorFunction = MajorFunction(0x02);
    /// `IRP_MJ_READ`.
    pub const READ: MajorFunction = MajorFunction(0x03);
    /// `IRP_MJ_WRITE`.
    pub const WRITE: MajorFunction = MajorFunction(0x04);
    /// `IRP_MJ_FLUSH_BUFFERS`.
    pub const FLUSH_BUFFERS: MajorFunction = MajorFunction(0x09);
    /// `IRP_MJ_DEVICE_CONTROL`.
    pub const DEVICE_CONTROL: MajorFunction = MajorFunction(0x0E);
    /// `IRP_MJ_INTERNAL_DEVICE_CONTROL`.
    pub const INTERNAL_DEVICE_CONTROL: MajorFunction = MajorFunction(0x0F);
    /// `IRP_MJ_SHUTDOWN`.
    pub const SHUTDOWN: MajorFunction = MajorFunction(0x10);
    /// `IRP_MJ_CLEANUP`.
    pub const CLEANUP: MajorFunction = MajorFunction(0x12);
}

/// The mode a request came from (`Irp->RequestorMode`): user-mode callers' handles and buffers
/// must be checked, kernel-mode callers are trusted.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ProcessorMode {
    /// `KernelMode`.
    Kernel,
    /// `UserMode`.
    User,
}

impl ProcessorMode {
    pub(crate) fn raw(self) -> i8 {
        match self {
            ProcessorMode::Kernel => 0,
            ProcessorMode::User => 1,
        }
    }
}

/// The identity of a file object (one open handle's kernel object), for matching the requests
/// of one handle (e.g. in `IRP_MJ_CLEANUP`). It is only compared, never dereferenced.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FileObject(usize);

impl FileObject {
    /// The file object's address, as a number (for logs and tests).
    ///
    /// IRQL: any (no kernel call).
    #[must_use]
    pub const fn addr(self) -> usize {
        self.0
    }

    /// A file object identity from an address (for tests that build IRPs by hand).
    ///
    /// IRQL: any (no kernel call).
    #[must_use]
    pub const fn from_addr(addr: usize) -> FileObject {
        FileObject(addr)
    }
}

/// Buffering method of an I/O control code (its low two bits).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TransferMethod {
    /// `METHOD_BUFFERED`: one system buffer holds the input, then the output.
    Buffered,
    /// `METHOD_IN_DIRECT`.
    InDirect,
    /// `METHOD_OUT_DIRECT`.
    OutDirect,
    /// `METHOD_NEITHER`.
    Neither,
}

/// `CTL_CODE(device_type, function, method, access)`.
///
/// IRQL: any.
#[must_use]
pub const fn ctl_code(device_type: u32, function: u32, method: TransferMethod, access: u32) -> u32 {
    let m = match method {
        TransferMethod::Buffered => 0,
        TransferMethod::InDirect => 1,
        TransferMethod::OutDirect => 2,
        TransferMethod::Neither => 3,
    };
    (device_type << 16) | (access << 14) | (function << 2) | m
}

/// The parameters of a device-control request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct IoctlParameters {
    /// `IoControlCode`.
    pub code: u32,
    /// `InputBufferLength`.
    pub input_length: u32,
    /// `OutputBufferLength`.
    pub output_length: u32,
}

impl IoctlParameters {
    /// The buffering method encoded in the control code.
    ///
    /// IRQL: any (no kernel call).
    #[must_use]
    pub const fn method(&self) -> TransferMethod {
        match self.code & 3 {
            0 => TransferMethod::Buffered,
            1 => TransferMethod::InDirect,
            2 => TransferMethod::OutDirect,
            _ => TransferMethod::Neither,
        }
    }
}

/// A read-only view of an IRP that the viewer may inspect but not complete: what a queue policy
/// or a remove filter sees of a queued IRP, and what [`Irp`] dereferences to.
///
/// Only ever used behind a reference made from a live IRP's address; it has no public
/// constructor.
#[repr(transparent)]
pub struct IrpView(Opaque<sys::Irp>);

impl IrpView {
    /// A view of the IRP at `irp`.
    ///
    /// # Safety
    /// `irp` is a live IRP with a current stack location, and stays so for `'a` (the caller
    /// owns it, or holds the lock of the queue it sits in).
    pub(crate) unsafe fn from_raw<'a>(irp: *mut sys::Irp) -> &'a IrpView {
        // SAFETY: `IrpView` is a transparent wrapper of `Opaque<IRP>`, itself transparent over
        // the IRP's storage; the caller guarantees it lives for `'a`.
        unsafe { &*irp.cast::<IrpView>() }
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::Irp {
        self.0.get()
    }

    /// The IRP's address (for logs and tests; never dereference it).
    ///
    /// IRQL: any.
    #[must_use]
    pub fn addr(&self) -> usize {
        self.as_ptr() as usize
    }

    /// The current stack location's major function.
    ///
    /// IRQL: any.
    #[must_use]
    pub fn major_function(&self) -> MajorFunction {
        // SAFETY: type invariant: a live IRP with a current stack location.
        MajorFunction(unsafe { sys::irp_major_function(self.as_ptr()) })
    }

    /// The current stack location's minor function.
    ///
    /// IRQL: any.
    #[must_use]
    pub fn minor_function(&self) -> u8 {
        // SAFETY: as above.
        unsafe { sys::irp_minor_function(self.as_ptr()) }
    }

    /// The device-control parameters, for `IRP_MJ_DEVICE_CONTROL` and
    /// `IRP_MJ_INTERNAL_DEVICE_CONTROL` requests; `None` for other requests.
    ///
    /// IRQL: any.
    #[must_use]
    pub fn ioctl(&self) -> Option<IoctlParameters> {
        let mj = self.major_function();
        if mj != MajorFunction::DEVICE_CONTROL && mj != MajorFunction::INTERNAL_DEVICE_CONTROL {
            return None;
        }
        // SAFETY: as above.
        let (code, input_length, output_length) =
            unsafe { sys::irp_ioctl_parameters(self.as_ptr()) };
        Some(IoctlParameters {
            code,
            input_length,
            output_length,
        })
    }

    /// The I/O control code of a device-control request.
    ///
    /// IRQL: any.
    #[must_use]
    pub fn ioctl_code(&self) -> Option<u32> {
        self.ioctl().map(|p| p.code)
    }

    /// `InputBufferLength` of a device-control request (0 for other requests).
    ///
    /// IRQL: any.
    #[must_use]
    pub fn input_buffer_length(&self) -> u32 {
        self.ioctl().map_or(0, |p| p.input_length)
    }

    /// `OutputBufferLength` of a device-control request (0 for other requests).
    ///
    /// IRQL: any.
    #[must_use]
    pub fn output_buffer_length(&self) -> u32 {
        self.ioctl().map_or(0, |p| p.output_length)
    }

    /// The input of a `METHOD_BUFFERED` device-control request (`InputBufferLength` bytes of the
    /// system buffer); empty for other requests or when there is no buffer.
    ///
    /// IRQL: any (the system buffer is non-paged).
    #[must_use]
    pub fn buffered_input(&self) -> &[u8] {
        match self.ioctl() {
            Some(p) if p.method() == TransferMethod::Buffered => {
                // SAFETY: a live IRP.
                let buf = unsafe { sys::irp_system_buffer(self.as_ptr()) };
                if buf.is_null() || p.input_length == 0 {
                    return &[];
                }
                // SAFETY: for METHOD_BUFFERED the I/O manager allocated the system buffer with at
                // least max(input, output) bytes and copied the input in; it lives until the IRP
                // completes, which needs the `Irp` that `self` borrows from (or the queue lock).
                unsafe { core::slice::from_raw_parts(buf, p.input_length as usize) }
            }
            _ => &[],
        }
    }

    /// The file object the request was sent on (`None` for requests without one).
    ///
    /// IRQL: any.
    #[must_use]
    pub fn file_object(&self) -> Option<FileObject> {
        // SAFETY: a live IRP.
        let f = unsafe { sys::irp_file_object(self.as_ptr()) };
        (!f.is_null()).then_some(FileObject(f as usize))
    }

    /// `Irp->RequestorMode`: whether handles and buffers of the request come from user mode.
    ///
    /// IRQL: any.
    #[must_use]
    pub fn requestor_mode(&self) -> ProcessorMode {
        // SAFETY: a live IRP.
        if unsafe { sys::irp_requestor_mode(self.as_ptr()) } == 0 {
            ProcessorMode::Kernel
        } else {
            ProcessorMode::User
        }
    }

    /// `Irp->Cancel`: whether IoCancelIrp was called on the IRP (it may become true at any time).
    ///
    /// IRQL: any.
    #[must_use]
    pub fn is_cancel_requested(&self) -> bool {
        // SAFETY: a live IRP.
        unsafe { sys::irp_cancel_flag(self.as_ptr()) }
    }
}

impl fmt::Debug for IrpView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Irp")
            .field("addr", &format_args!("{:#x}", self.addr()))
            .field("major", &self.major_function())
            .finish_non_exhaustive()
    }
}

/// The right to complete one IRP (spec A.3's owner).
///
/// A dispatch routine receives one; it ends in exactly one of these ways:
/// - [`Irp::complete`] (consumes it; returns the [`Completed`] token a dispatch routine returns);
/// - a queue's `insert` (consumes it; returns [`Pending`], or gives it back when refused);
/// - [`Irp::mark_pending`] then keeping it somewhere to complete later.
///
/// Dropping an `Irp` is a driver bug: the IRP would never complete and its thread could never
/// exit. The drop reports it (through the verifier on ntsim, with `DbgPrint` on Windows) and
/// completes the IRP with `STATUS_CANCELLED` so that the system survives.
///
/// `Irp` is [`Send`]: ownership can move to another thread (a worker) or a DPC.
///
/// # Invariants
///
/// `raw` is a live IRP with a current stack location; this value is its only owner in the sense
/// of spec A.3 (nobody else may complete it), and its cancel routine is NULL.
pub struct Irp {
    raw: NonNull<sys::Irp>,
}

// SAFETY: an IRP may be completed from any thread or DPC at <= DISPATCH_LEVEL; the value is the
// unique right to do so, so moving it between threads moves that right.
unsafe impl Send for Irp {}

impl Irp {
    /// Takes ownership of a raw `PIRP`: the hatch for code that receives IRPs from elsewhere
    /// (a driver being migrated step by step, a test harness that builds IRPs).
    ///
    /// IRQL: any.
    ///
    /// # Safety
    /// `irp` is a live IRP with a current stack location and a NULL cancel routine, and the
    /// caller owns it (spec A.3: nobody else may complete it) and gives that ownership up.
    pub unsafe fn from_raw(irp: *mut c_void) -> Irp {
        // SAFETY: forwarded caller contract.
        unsafe { Irp::from_sys(irp.cast()) }
    }

    /// Gives up ownership and returns the raw `PIRP`; the caller becomes responsible for
    /// completing it.
    ///
    /// IRQL: any.
    #[must_use = "the raw IRP must still be completed"]
    pub fn into_raw(self) -> *mut c_void {
        self.into_sys().cast()
    }

    /// Takes ownership of an IRP handed over by the kernel.
    ///
    /// # Safety
    /// As [`Irp::from_raw`].
    pub(crate) unsafe fn from_sys(irp: *mut sys::Irp) -> Irp {
        // INVARIANT: the caller's guarantees.
        Irp {
            raw: NonNull::new(irp).expect("an IRP pointer is never null"),
        }
    }

    /// Gives up ownership and returns the raw IRP (for handing it to the kernel).
    pub(crate) fn into_sys(self) -> *mut sys::Irp {
        let me = ManuallyDrop::new(self);
        me.raw.as_ptr()
    }

    /// Completes the IRP with `status` and `information` (usually a byte count) and returns the
    /// token a dispatch routine returns: `status` itself, or `STATUS_PENDING` if the IRP had
    /// been marked pending (spec A.6: a dispatch routine that marked the IRP pending must return
    /// STATUS_PENDING whatever it completes it with).
    ///
    /// IRQL: <= DISPATCH_LEVEL, holding no spin lock (spec A.7; completing under a lock can
    /// deadlock, ntsim reports rule C4). The IRP's completion routines run inside this call.
    ///
    /// # Panics
    /// If `status` is `STATUS_PENDING` (a bugcheck on Windows, rule C3).
    pub fn complete(self, status: NtStatus, information: usize) -> Completed {
        assert!(
            status != NtStatus::PENDING,
            "an IRP cannot be completed with STATUS_PENDING"
        );
        let irp = self.into_sys();
        // SAFETY: type invariant: we own a live IRP with a current stack location.
        let pending = unsafe { sys::irp_is_marked_pending(irp) };
        // SAFETY: we own the IRP, its cancel routine is NULL, the status is not PENDING, and
        // `irp` is not used after this call.
        unsafe { sys::irp_complete(irp, status.0, information) };
        Completed {
            irp: irp as usize,
            status: if pending { NtStatus::PENDING } else { status },
        }
    }

    /// Marks the IRP pending (`IoMarkIrpPending`) and returns the [`Pending`] token for the
    /// dispatch routine, while the caller keeps the IRP to complete it later (e.g. after a queue
    /// refused it and the driver starts the I/O itself, spec A.9.3).
    ///
    /// The mark happens while this `&mut` borrow proves that nobody else can complete the IRP
    /// yet, as spec A.6 requires. IRQL: any.
    pub fn mark_pending(&mut self) -> Pending {
        // SAFETY: type invariant; we own the IRP, so nobody can complete it concurrently.
        unsafe { sys::irp_mark_pending(self.raw.as_ptr()) };
        Pending {
            irp: self.raw.as_ptr() as usize,
        }
    }

    /// The output of a `METHOD_BUFFERED` device-control request: the first `OutputBufferLength`
    /// bytes of the system buffer, which the I/O manager copies back to the caller (`information`
    /// bytes of it, on success). Empty for other requests. Reading it before writing sees the
    /// input (the same buffer holds both).
    ///
    /// IRQL: any (the system buffer is non-paged).
    pub fn buffered_output(&mut self) -> &mut [u8] {
        match self.ioctl() {
            Some(p) if p.method() == TransferMethod::Buffered => {
                // SAFETY: type invariant.
                let buf = unsafe { sys::irp_system_buffer(self.raw.as_ptr()) };
                if buf.is_null() || p.output_length == 0 {
                    return &mut [];
                }
                // SAFETY: the system buffer has at least max(input, output) bytes and lives
                // until completion, which needs `self`; `&mut self` makes this the only access.
                unsafe { core::slice::from_raw_parts_mut(buf, p.output_length as usize) }
            }
            _ => &mut [],
        }
    }

    /// Per-IRP scratch words (`DriverContext[0..3]`) for the queue's use while it owns the IRP.
    pub(crate) fn context_word(irp: *mut sys::Irp, index: usize) -> *mut *mut c_void {
        sys::irp_driver_context(irp, index)
    }
}

impl Deref for Irp {
    type Target = IrpView;

    fn deref(&self) -> &IrpView {
        // SAFETY: type invariant: a live IRP that `self` owns for as long as the borrow.
        unsafe { IrpView::from_raw(self.raw.as_ptr()) }
    }
}

impl fmt::Debug for Irp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl Drop for Irp {
    fn drop(&mut self) {
        let irp = self.raw.as_ptr();
        sys::report_driver_bug(
            sys::DriverBug::IrpDropped,
            irp,
            "an Irp was dropped without being completed or handed off; completing it with STATUS_CANCELLED",
        );
        // SAFETY: type invariant: we own the IRP; it is not used again.
        unsafe { sys::irp_complete(irp, NtStatus::CANCELLED.0, 0) };
    }
}

/// Proof that an IRP was marked pending and handed to someone who will complete it: what a
/// dispatch routine returns (as `STATUS_PENDING`) after queueing its IRP.
///
/// Produced only by a successful queue insert (the IRP was marked pending under the queue lock
/// by `IoCsqInsertIrpEx`, spec A.9.3 step 4) or by [`Irp::mark_pending`].
#[must_use = "a dispatch routine must return STATUS_PENDING for an IRP it queued"]
#[derive(Debug)]
pub struct Pending {
    irp: usize,
}

impl Pending {
    /// The token of an IRP that was just marked pending.
    pub(crate) fn new(irp: *mut sys::Irp) -> Pending {
        Pending { irp: irp as usize }
    }
}

/// What [`Irp::complete`] returns: the status a dispatch routine that completed its IRP must
/// return.
#[derive(Debug)]
pub struct Completed {
    irp: usize,
    status: NtStatus,
}

impl Completed {
    /// The status the dispatch routine returns (`STATUS_PENDING` if the IRP had been marked
    /// pending).
    ///
    /// IRQL: any (no kernel call).
    #[must_use]
    pub fn status(&self) -> NtStatus {
        self.status
    }
}

/// The return value of a dispatch routine: built only from [`Completed`] or [`Pending`], so a
/// dispatch routine cannot return a status that contradicts what it did with its IRP (spec A.6).
#[derive(Debug)]
pub struct DispatchStatus {
    irp: usize,
    status: NtStatus,
}

impl DispatchStatus {
    /// The status to return to the I/O manager.
    ///
    /// IRQL: any (no kernel call).
    #[must_use]
    pub fn status(&self) -> NtStatus {
        self.status
    }

    /// The address of the IRP the token belongs to (checked against the dispatched IRP).
    pub(crate) fn irp_addr(&self) -> usize {
        self.irp
    }
}

impl From<Completed> for DispatchStatus {
    fn from(c: Completed) -> DispatchStatus {
        DispatchStatus {
            irp: c.irp,
            status: c.status,
        }
    }
}

impl From<Pending> for DispatchStatus {
    fn from(p: Pending) -> DispatchStatus {
        DispatchStatus {
            irp: p.irp,
            status: NtStatus::PENDING,
        }
    }
}
