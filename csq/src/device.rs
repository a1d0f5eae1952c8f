//! Device and driver glue: [`DriverObject`], [`DeviceConfig`], [`Device`], the
//! [`DeviceHandler`] trait whose methods are the dispatch routines, and the entry points that
//! [`driver_entry!`](crate::driver_entry) generates.
//!
//! Every device a driver creates through this module has a device extension that starts with a
//! small header (a table of the extension type's functions), followed by the driver's own
//! extension type `E`, built in place. One dispatch trampoline serves every major function of
//! every device: it finds the header in the device's extension and calls the `E` method.

use core::fmt;
use core::marker::PhantomData;
use core::pin::Pin;
use core::ptr::{self, NonNull};

use pinned_init::PinInit;

use crate::irp::{DispatchStatus, Irp, MajorFunction};
use crate::startio::StartIoHandler;
use crate::status::NtStatus;
use crate::sys;

/// The dispatch routines of a device, implemented by its extension type. Each method receives
/// the request's [`Irp`] and returns what it did with it ([`DispatchStatus`], built only from
/// `Irp::complete` or a queue's `Pending`).
///
/// Every method is called at PASSIVE_LEVEL in the context of the requesting thread (for the
/// top-level driver that these samples are). The defaults complete create, close and cleanup
/// with `STATUS_SUCCESS`, and every other request with `STATUS_INVALID_DEVICE_REQUEST`.
pub trait DeviceHandler: Sync + Send + Sized + 'static {
    /// `IRP_MJ_CREATE`.
    fn create(&self, irp: Irp) -> DispatchStatus {
        irp.complete(NtStatus::SUCCESS, 0).into()
    }

    /// `IRP_MJ_CLOSE`: the last reference to the file object is gone.
    fn close(&self, irp: Irp) -> DispatchStatus {
        irp.complete(NtStatus::SUCCESS, 0).into()
    }

    /// `IRP_MJ_CLEANUP`: the last handle was closed; complete the requests still queued for
    /// its file object (`CancelSafeQueue::flush_file`, spec A.8).
    fn cleanup(&self, irp: Irp) -> DispatchStatus {
        irp.complete(NtStatus::SUCCESS, 0).into()
    }

    /// `IRP_MJ_READ`.
    fn read(&self, irp: Irp) -> DispatchStatus {
        irp.complete(NtStatus::INVALID_DEVICE_REQUEST, 0).into()
    }

    /// `IRP_MJ_WRITE`.
    fn write(&self, irp: Irp) -> DispatchStatus {
        irp.complete(NtStatus::INVALID_DEVICE_REQUEST, 0).into()
    }

    /// `IRP_MJ_DEVICE_CONTROL`.
    fn device_control(&self, irp: Irp) -> DispatchStatus {
        irp.complete(NtStatus::INVALID_DEVICE_REQUEST, 0).into()
    }

    /// Every other major function.
    fn other(&self, irp: Irp) -> DispatchStatus {
        irp.complete(NtStatus::INVALID_DEVICE_REQUEST, 0).into()
    }
}

/// How to create a device.
#[derive(Clone, Copy, Debug)]
pub struct DeviceConfig {
    /// The device name, e.g. `wstr!("\\Device\\CsqEvent")`.
    pub name: &'static [u16],
    /// A symbolic link to create to it, e.g. `wstr!("\\DosDevices\\CsqEvent")`; deleted with
    /// the device.
    pub symbolic_link: Option<&'static [u16]>,
    /// Who may open the device: the device object's DACL (see [`DeviceAccess`]).
    pub access: DeviceAccess,
    /// `FILE_DEVICE_*` (e.g. `0x22`, FILE_DEVICE_UNKNOWN).
    pub device_type: u32,
    /// Device characteristics. `FILE_DEVICE_SECURE_OPEN` (0x100) is always added, so that the
    /// DACL also guards opens of names below the device (`\Device\X\anything`).
    pub characteristics: u32,
    /// Whether only one handle may be open at a time.
    pub exclusive: bool,
    /// Whether reads and writes use buffered I/O (`DO_BUFFERED_IO`).
    pub buffered_io: bool,
}

/// `FILE_DEVICE_SECURE_OPEN`: the device's security descriptor also applies to opens of names
/// in the device's namespace. Always set by [`DriverObject::create_device`].
pub(crate) const FILE_DEVICE_SECURE_OPEN: u32 = 0x100;

/// Who may open a device: a fixed, protected DACL for the device object (no inherited ACEs).
///
/// On Windows the DACL is built from the kernel's well-known SIDs (`SeExports`) and set on the
/// new device object (`IoCreateDevice` then `ObSetSecurityObjectByPointer`), which is what
/// `IoCreateDeviceSecure` does with the equivalent SDDL string ([`DeviceAccess::sddl`]); on
/// ntsim that SDDL string is recorded for the device (`ntsim::driver::device_security`).
/// Each generic right of the SDDL is stored already mapped to the file-object rights
/// (`GA` = `FILE_ALL_ACCESS`, `GR` = `FILE_GENERIC_READ`, `GW` = `FILE_GENERIC_WRITE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceAccess {
    /// Only the kernel and services running as LocalSystem: `D:P(A;;GA;;;SY)`.
    SystemOnly,
    /// LocalSystem and the Administrators group, all access: `D:P(A;;GA;;;SY)(A;;GA;;;BA)`
    /// (the usual choice for a control device; an elevated client can open it).
    SystemAndAdministrators,
    /// As [`SystemAndAdministrators`](Self::SystemAndAdministrators), and everyone else may
    /// read and write: `D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GRGW;;;WD)`.
    EveryoneReadWrite,
}

/// A well-known account or group an access-allowed ACE names.
// Read by the Windows backend only (sys/wdk.rs) and by the unit test.
#[cfg_attr(not(windows), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trustee {
    /// `S-1-5-18` (`SY`, `SeExports->SeLocalSystemSid`).
    LocalSystem,
    /// `S-1-5-32-544` (`BA`, `SeExports->SeAliasAdminsSid`).
    Administrators,
    /// `S-1-1-0` (`WD`, `SeExports->SeWorldSid`).
    Everyone,
}

/// The rights an access-allowed ACE grants.
// Read by the Windows backend only (sys/wdk.rs) and by the unit test.
#[cfg_attr(not(windows), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rights {
    /// `GA`: `FILE_ALL_ACCESS`.
    All,
    /// `GRGW`: `FILE_GENERIC_READ | FILE_GENERIC_WRITE`.
    ReadWrite,
}

#[cfg_attr(not(windows), allow(dead_code))]
impl Rights {
    /// The access mask, mapped to file-object rights.
    pub(crate) const fn mask(self) -> u32 {
        const FILE_ALL_ACCESS: u32 = 0x001F_01FF;
        const FILE_GENERIC_READ: u32 = 0x0012_0089;
        const FILE_GENERIC_WRITE: u32 = 0x0012_0116;
        match self {
            Rights::All => FILE_ALL_ACCESS,
            Rights::ReadWrite => FILE_GENERIC_READ | FILE_GENERIC_WRITE,
        }
    }
}

/// One access-allowed ACE of a [`DeviceAccess`] DACL.
// Read by the Windows backend only (sys/wdk.rs) and by the unit test.
#[cfg_attr(not(windows), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ace {
    pub(crate) trustee: Trustee,
    pub(crate) rights: Rights,
}

impl DeviceAccess {
    /// The DACL's access-allowed ACEs, in order.
    #[cfg_attr(not(windows), allow(dead_code))]
    pub(crate) const fn aces(self) -> &'static [Ace] {
        const SY_ALL: Ace = Ace {
            trustee: Trustee::LocalSystem,
            rights: Rights::All,
        };
        const BA_ALL: Ace = Ace {
            trustee: Trustee::Administrators,
            rights: Rights::All,
        };
        const WD_RW: Ace = Ace {
            trustee: Trustee::Everyone,
            rights: Rights::ReadWrite,
        };
        match self {
            DeviceAccess::SystemOnly => &[SY_ALL],
            DeviceAccess::SystemAndAdministrators => &[SY_ALL, BA_ALL],
            DeviceAccess::EveryoneReadWrite => &[SY_ALL, BA_ALL, WD_RW],
        }
    }

    /// The same DACL as an SDDL string (what `IoCreateDeviceSecure` would be given).
    ///
    /// IRQL: any (no kernel call).
    #[must_use]
    pub const fn sddl(self) -> &'static str {
        match self {
            DeviceAccess::SystemOnly => "D:P(A;;GA;;;SY)",
            DeviceAccess::SystemAndAdministrators => "D:P(A;;GA;;;SY)(A;;GA;;;BA)",
            DeviceAccess::EveryoneReadWrite => "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GRGW;;;WD)",
        }
    }

    /// [`sddl`](Self::sddl) in UTF-16.
    // Read by the ntsim backend only (sys/host.rs) and by the unit test.
    #[cfg_attr(windows, allow(dead_code))]
    pub(crate) const fn sddl_utf16(self) -> &'static [u16] {
        match self {
            DeviceAccess::SystemOnly => crate::wstr!("D:P(A;;GA;;;SY)"),
            DeviceAccess::SystemAndAdministrators => crate::wstr!("D:P(A;;GA;;;SY)(A;;GA;;;BA)"),
            DeviceAccess::EveryoneReadWrite => {
                crate::wstr!("D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GRGW;;;WD)")
            }
        }
    }
}

/// The start of every extension made by this module.
#[repr(C)]
struct Header {
    vtable: &'static VTable,
    symbolic_link: Option<&'static [u16]>,
}

/// What the type-erased trampolines need to know about an extension type.
struct VTable {
    dispatch: unsafe fn(ext: *const Header, irp: *mut sys::Irp) -> sys::Ntstatus,
    drop: unsafe fn(ext: *mut Header),
    /// StartIo and the StartIo cancel routine, for devices made by `create_startio_device`.
    start_io: Option<StartIoFns>,
}

/// The StartIo entry points of an extension type.
#[derive(Clone, Copy)]
struct StartIoFns {
    start_io: unsafe fn(ext: *const Header, dev: *mut sys::DeviceObject, irp: *mut sys::Irp),
    cancel: unsafe fn(ext: *const Header, dev: *mut sys::DeviceObject, irp: *mut sys::Irp),
}

/// The device extension: the header, then the driver's type.
#[repr(C)]
struct Extension<E> {
    header: Header,
    ext: E,
}

impl<E: DeviceHandler> Extension<E> {
    const VTABLE: &'static VTable = &VTable {
        dispatch: Self::dispatch,
        drop: Self::drop_in_place,
        start_io: None,
    };

    /// # Safety
    /// `ext` is the header of a live `Extension<E>`; the caller owns `irp`, dispatched to it.
    unsafe fn dispatch(ext: *const Header, irp: *mut sys::Irp) -> sys::Ntstatus {
        // SAFETY: caller contract; the header is the first field of `Extension<E>`.
        let e = unsafe { &(*ext.cast::<Self>()).ext };
        // SAFETY: the I/O manager hands the dispatch routine ownership of the IRP.
        let irp = unsafe { Irp::from_sys(irp) };
        let addr = irp.addr();
        let st = match irp.major_function() {
            MajorFunction::CREATE => e.create(irp),
            MajorFunction::CLOSE => e.close(irp),
            MajorFunction::CLEANUP => e.cleanup(irp),
            MajorFunction::READ => e.read(irp),
            MajorFunction::WRITE => e.write(irp),
            MajorFunction::DEVICE_CONTROL => e.device_control(irp),
            _ => e.other(irp),
        };
        if st.irp_addr() != addr {
            sys::debug_print("csq: a dispatch routine returned the status token of another IRP");
        }
        st.status().0
    }

    /// # Safety
    /// `ext` is the header of a live `Extension<E>` that nothing uses any more.
    unsafe fn drop_in_place(ext: *mut Header) {
        // SAFETY: caller contract; address only.
        let e = unsafe { &raw mut (*ext.cast::<Self>()).ext };
        // SAFETY: caller contract: initialized and unused.
        unsafe { ptr::drop_in_place(e) };
    }
}

impl<E: StartIoHandler> Extension<E> {
    const STARTIO_VTABLE: &'static VTable = &VTable {
        dispatch: Self::dispatch,
        drop: Self::drop_in_place,
        start_io: Some(StartIoFns {
            start_io: Self::start_io,
            cancel: Self::cancel,
        }),
    };

    /// # Safety
    /// `ext` is the header of a live `Extension<E>` of `dev`; the kernel calls StartIo for `irp`.
    unsafe fn start_io(ext: *const Header, dev: *mut sys::DeviceObject, irp: *mut sys::Irp) {
        // SAFETY: caller contract; the header is the first field of `Extension<E>`.
        let e = unsafe { &(*ext.cast::<Self>()).ext };
        // SAFETY: forwarded caller contract.
        unsafe { crate::startio::run_start_io(e, dev, irp) }
    }

    /// # Safety
    /// `ext` is the header of a live `Extension<E>` of `dev`; the kernel calls the cancel routine
    /// for `irp` with the cancel spin lock held.
    unsafe fn cancel(ext: *const Header, dev: *mut sys::DeviceObject, irp: *mut sys::Irp) {
        // SAFETY: caller contract.
        let e = unsafe { &(*ext.cast::<Self>()).ext };
        // SAFETY: forwarded caller contract.
        unsafe { crate::startio::run_cancel(e, dev, irp) }
    }
}

/// The StartIo entry points of the extension of `dev`.
///
/// # Safety
/// `dev` is a live device made by this module.
unsafe fn startio_fns(dev: *mut sys::DeviceObject) -> (*const Header, StartIoFns) {
    // SAFETY: caller contract: the extension starts with our header.
    let header = unsafe { sys::device_extension(dev) }.cast::<Header>();
    // SAFETY: as above.
    let fns = unsafe { (*header).vtable }
        .start_io
        .expect("IoStartPacket is only used on devices made by create_startio_device");
    (header, fns)
}

/// The driver's StartIo routine (`DriverObject->DriverStartIo`): routes to the device's
/// [`StartIoHandler`].
unsafe extern "system" fn startio_trampoline(dev: *mut sys::DeviceObject, irp: *mut sys::Irp) {
    // SAFETY: the kernel calls StartIo only for devices of this driver that use IoStartPacket,
    // i.e. devices made by `create_startio_device`.
    let (header, fns) = unsafe { startio_fns(dev) };
    // SAFETY: the header of `dev`'s extension; the kernel's StartIo call.
    unsafe { (fns.start_io)(header, dev, irp) }
}

/// The cancel routine that [`StartIoQueue::start_packet`](crate::StartIoQueue::start_packet)
/// installs: routes to the device's StartIo queue (spec A.11.4).
pub(crate) unsafe extern "system" fn startio_cancel_trampoline(
    dev: *mut sys::DeviceObject,
    irp: *mut sys::Irp,
) {
    // SAFETY: the routine is only installed on IRPs of devices made by `create_startio_device`,
    // and the kernel passes the IRP's current device.
    let (header, fns) = unsafe { startio_fns(dev) };
    // SAFETY: as above; called as a cancel routine, with the cancel spin lock held.
    unsafe { (fns.cancel)(header, dev, irp) }
}

/// The driver object, as `DriverEntry` and unload see it.
pub struct DriverObject {
    raw: *mut sys::DriverObject,
}

impl DriverObject {
    /// Creates a device (`IoCreateDevice` with `FILE_DEVICE_SECURE_OPEN`, then the DACL of
    /// `config.access`) whose extension is `E`, built in place by
    /// `init`, then its symbolic link (`IoCreateSymbolicLink`), then clears
    /// `DO_DEVICE_INITIALIZING`. Its dispatch routines are `E`'s [`DeviceHandler`] methods. The
    /// device lives until [`Device::delete`] or the driver's unload.
    ///
    /// IRQL: PASSIVE_LEVEL (DriverEntry).
    ///
    /// # Errors
    /// `STATUS_OBJECT_NAME_COLLISION`, `STATUS_INSUFFICIENT_RESOURCES`, an error of setting the
    /// device's security descriptor (Windows), or `init`'s error; nothing is left behind.
    pub fn create_device<E, Err>(
        &self,
        config: &DeviceConfig,
        init: impl PinInit<E, Err>,
    ) -> Result<Device<E>, NtStatus>
    where
        E: DeviceHandler,
        Err: Into<NtStatus>,
    {
        self.create_device_with(config, init, Extension::<E>::VTABLE)
    }

    /// Creates a device like [`create_device`](Self::create_device) whose requests can be
    /// serialized through the kernel's device queue and StartIo: `E` also implements
    /// [`StartIoHandler`], the driver's `DriverStartIo` routes to it, and its
    /// [`StartIoQueue`](crate::StartIoQueue) is attached to the device. StartIo attributes
    /// (spec A.11.3): DeferredStartIo is always on (StartIo nests at most twice even when it
    /// completes requests synchronously); NonCancelable follows
    /// [`StartIoHandler::NON_CANCELABLE`].
    ///
    /// IRQL: PASSIVE_LEVEL (DriverEntry).
    ///
    /// # Errors
    /// As [`create_device`](Self::create_device).
    pub fn create_startio_device<E, Err>(
        &self,
        config: &DeviceConfig,
        init: impl PinInit<E, Err>,
    ) -> Result<Device<E>, NtStatus>
    where
        E: StartIoHandler,
        Err: Into<NtStatus>,
    {
        // SAFETY: our driver object, in DriverEntry, before any IRP reaches the device.
        unsafe { sys::driver_set_start_io(self.raw, startio_trampoline) };
        let device = self.create_device_with(config, init, Extension::<E>::STARTIO_VTABLE)?;
        device
            .extension()
            .start_io_queue()
            .attach(device.raw.as_ptr(), E::NON_CANCELABLE);
        Ok(device)
    }

    fn create_device_with<E, Err>(
        &self,
        config: &DeviceConfig,
        init: impl PinInit<E, Err>,
        vtable: &'static VTable,
    ) -> Result<Device<E>, NtStatus>
    where
        E: DeviceHandler,
        Err: Into<NtStatus>,
    {
        const {
            assert!(
                core::mem::align_of::<Extension<E>>() <= 16,
                "a device extension is 16-byte aligned"
            )
        };
        let size = u32::try_from(core::mem::size_of::<Extension<E>>())
            .map_err(|_| NtStatus::INSUFFICIENT_RESOURCES)?;
        // SAFETY: our driver object, in DriverEntry.
        let dev = unsafe {
            sys::device_create(
                self.raw,
                size,
                config.name,
                config.device_type,
                config.characteristics | FILE_DEVICE_SECURE_OPEN,
                config.exclusive,
                config.access,
            )
        }
        .map_err(NtStatus)?;
        // SAFETY: a fresh device with an extension of `size` bytes.
        let ext = unsafe { sys::device_extension(dev) }.cast::<Extension<E>>();
        // SAFETY: address only.
        let header = unsafe { &raw mut (*ext).header };
        // SAFETY: the extension's storage is writable and 16-byte aligned.
        unsafe {
            header.write(Header {
                vtable,
                symbolic_link: None,
            })
        };
        // SAFETY: as above; address only.
        let slot = unsafe { &raw mut (*ext).ext };
        // SAFETY: `slot` is writable and never moves (the device object does not).
        if let Err(e) = unsafe { init.__pinned_init(slot) } {
            // SAFETY: our device, not visible to I/O yet.
            unsafe { sys::device_delete(dev) };
            return Err(e.into());
        }
        if let Some(link) = config.symbolic_link {
            let status = NtStatus(sys::symbolic_link_create(link, config.name));
            if !status.is_success() {
                // SAFETY: the extension was initialized above; then the device goes.
                unsafe { Extension::<E>::drop_in_place(ext.cast()) };
                // SAFETY: our device, not visible to I/O yet.
                unsafe { sys::device_delete(dev) };
                return Err(status);
            }
            // SAFETY: initialized header.
            unsafe { (*ext).header.symbolic_link = Some(link) };
        }
        // SAFETY: our device; from now on I/O may arrive.
        unsafe { sys::device_finish_init(dev, config.buffered_io) };
        Ok(Device {
            raw: NonNull::new(dev).ok_or(NtStatus::INSUFFICIENT_RESOURCES)?,
            _ext: PhantomData,
        })
    }

    /// Deletes every device of the driver (what unload does after the driver's unload hook).
    ///
    /// # Safety
    /// No I/O can reach the devices any more, and their extensions were made by this module.
    unsafe fn delete_all_devices(&self) {
        loop {
            // SAFETY: our driver object.
            let dev = unsafe { sys::driver_first_device(self.raw) };
            if dev.is_null() {
                break;
            }
            // SAFETY: caller contract.
            unsafe { delete_device(dev) };
        }
    }
}

impl fmt::Debug for DriverObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DriverObject").finish_non_exhaustive()
    }
}

/// Drops a device's extension, deletes its symbolic link, deletes the device.
///
/// # Safety
/// `dev` was made by [`DriverObject::create_device`] and no I/O can reach it any more.
unsafe fn delete_device(dev: *mut sys::DeviceObject) {
    // SAFETY: caller contract: the extension starts with our header.
    let header = unsafe { sys::device_extension(dev) }.cast::<Header>();
    // SAFETY: as above.
    let Header {
        vtable,
        symbolic_link: link,
    } = unsafe { header.read() };
    if let Some(link) = link {
        sys::symbolic_link_delete(link);
    }
    // SAFETY: nothing uses the extension any more (caller contract).
    unsafe { (vtable.drop)(header) };
    // SAFETY: as above.
    unsafe { sys::device_delete(dev) };
}

/// A device made by [`DriverObject::create_device`], with extension `E`.
pub struct Device<E> {
    raw: NonNull<sys::DeviceObject>,
    _ext: PhantomData<E>,
}

// SAFETY: the handle only gives shared access to `E`, which is `Sync`.
unsafe impl<E: DeviceHandler> Send for Device<E> {}
// SAFETY: as above.
unsafe impl<E: DeviceHandler> Sync for Device<E> {}

impl<E: DeviceHandler> Device<E> {
    /// The device's extension.
    ///
    /// IRQL: any.
    pub fn extension(&self) -> Pin<&E> {
        // SAFETY: a live device made by `create_device`.
        let ext = unsafe { sys::device_extension(self.raw.as_ptr()) }.cast::<Extension<E>>();
        // SAFETY: its extension is an initialized `Extension<E>`, alive as long as the device
        // (which `self` keeps).
        let e = unsafe { &(*ext).ext };
        // SAFETY: pinned in the device object.
        unsafe { Pin::new_unchecked(e) }
    }

    /// Drops the extension, deletes the symbolic link and the device (`IoDeleteDevice`).
    ///
    /// IRQL: PASSIVE_LEVEL. Call it only when no more I/O can reach the device (normally the
    /// driver's unload, which deletes the remaining devices itself).
    pub fn delete(self) {
        // SAFETY: made by `create_device`; the caller stops I/O first (documented contract of a
        // safe API that mirrors IoDeleteDevice's: the I/O manager does not send IRPs to a
        // device during unload).
        unsafe { delete_device(self.raw.as_ptr()) };
    }
}

impl<E> fmt::Debug for Device<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device").finish_non_exhaustive()
    }
}

/// The one dispatch routine: finds the device's extension type and calls its handler.
unsafe extern "system" fn dispatch_trampoline(
    device: *mut sys::DeviceObject,
    irp: *mut sys::Irp,
) -> sys::Ntstatus {
    // SAFETY: the I/O manager passes one of our devices, whose extension starts with a header.
    let header = unsafe { sys::device_extension(device) }.cast::<Header>();
    // SAFETY: as above.
    let vtable = unsafe { (*header).vtable };
    // SAFETY: the header belongs to the extension; the IRP is the dispatch routine's.
    unsafe { (vtable.dispatch)(header, irp) }
}

/// What [`driver_entry!`](crate::driver_entry) calls: installs the dispatch trampoline for every
/// major function and the unload routine, then runs the driver's init. On failure, every device
/// it created is deleted again.
///
/// # Safety
/// Called once, by the kernel's call of DriverEntry, with its driver object.
///
/// IRQL: PASSIVE_LEVEL (the kernel calls DriverEntry there). Returns what the init function returns.
#[doc(hidden)]
pub unsafe fn driver_entry(
    driver: *mut sys::DriverObject,
    init: fn(&DriverObject) -> Result<(), NtStatus>,
    unload: sys::UnloadFn,
) -> sys::Ntstatus {
    for major in 0..sys::IRP_MJ_COUNT {
        // SAFETY: our driver object, in DriverEntry.
        unsafe { sys::driver_set_dispatch(driver, major, dispatch_trampoline) };
    }
    // SAFETY: as above.
    unsafe { sys::driver_set_unload(driver, unload) };
    let d = DriverObject { raw: driver };
    match init(&d) {
        Ok(()) => sys::STATUS_SUCCESS,
        Err(status) => {
            // SAFETY: DriverEntry failed: no I/O reached the devices.
            unsafe { d.delete_all_devices() };
            status.0
        }
    }
}

/// What the unload routine generated by [`driver_entry!`](crate::driver_entry) calls: the
/// driver's hook, then deletion of every remaining device (dropping its extension: queues are
/// flushed, timers cancelled and flushed, threads joined).
///
/// # Safety
/// Called once, by the kernel's call of the unload routine.
///
/// IRQL: PASSIVE_LEVEL (the kernel calls DriverUnload there).
#[doc(hidden)]
pub unsafe fn driver_unload(driver: *mut sys::DriverObject, hook: Option<fn(&DriverObject)>) {
    let d = DriverObject { raw: driver };
    if let Some(hook) = hook {
        hook(&d);
    }
    // SAFETY: at unload the I/O manager sends no more IRPs.
    unsafe { d.delete_all_devices() };
}

/// UTF-16 of an ASCII string, at compile time (for [`wstr!`](crate::wstr)).
///
/// IRQL: any (no kernel call).
#[doc(hidden)]
#[must_use]
pub const fn ascii_to_utf16<const N: usize>(s: &str) -> [u16; N] {
    let b = s.as_bytes();
    assert!(b.len() == N, "length mismatch");
    let mut out = [0u16; N];
    let mut i = 0;
    while i < N {
        assert!(b[i] < 0x80, "wstr!: ASCII only");
        out[i] = b[i] as u16;
        i += 1;
    }
    out
}

/// A `&'static [u16]` UTF-16 string from an ASCII literal, built at compile time (device names,
/// symbolic links).
///
/// ```
/// const NAME: &[u16] = csq::wstr!("\\Device\\CsqEvent");
/// assert_eq!(NAME.len(), 16);
/// ```
#[macro_export]
macro_rules! wstr {
    ($s:literal) => {{
        const S: &str = $s;
        const W: [u16; S.len()] = $crate::__private::ascii_to_utf16::<{ S.len() }>(S);
        &W as &'static [u16]
    }};
}

/// Generates the driver's entry point: `DriverEntry` on Windows; on ntsim, a function with the
/// same signature to pass to `ntsim::driver::load_driver`.
///
/// ```ignore
/// fn init(driver: &csq::DriverObject) -> Result<(), csq::NtStatus> { /* create devices */ Ok(()) }
/// fn unload(driver: &csq::DriverObject) { /* optional: stop what the devices do not own */ }
/// csq::driver_entry!(pub fn driver_entry = init; unload = unload);
/// ```
///
/// The generated function installs one dispatch trampoline for every major function (routing
/// to the devices' [`DeviceHandler`]s) and an unload routine that calls `unload` and then
/// deletes every device, dropping its extension. If `init` fails, the devices it created are
/// deleted and DriverEntry returns its status.
#[macro_export]
macro_rules! driver_entry {
    ($vis:vis fn $name:ident = $init:path $(; unload = $unload:path)? $(;)?) => {
        /// The driver's entry point (generated by `csq::driver_entry!`).
        ///
        /// # Safety
        /// Called by the kernel (or ntsim's `load_driver`) once, with a fresh driver object.
        #[cfg_attr(windows, unsafe(export_name = "DriverEntry"))]
        $vis unsafe extern "system" fn $name(
            driver: *mut $crate::__private::DriverObjectRaw,
            _registry_path: $crate::__private::RegistryPathRaw,
        ) -> i32 {
            unsafe extern "system" fn __csq_unload(driver: *mut $crate::__private::DriverObjectRaw) {
                // SAFETY: the kernel calls the unload routine once with our driver object.
                unsafe { $crate::__private::driver_unload(driver, $crate::driver_entry!(@unload $($unload)?)) }
            }
            // SAFETY: the kernel calls DriverEntry once with a fresh driver object.
            unsafe { $crate::__private::driver_entry(driver, $init, __csq_unload) }
        }
    };
    (@unload) => { ::core::option::Option::None };
    (@unload $unload:path) => { ::core::option::Option::Some($unload) };
}

/// `DriverObject` pointer type of the generated entry point.
#[doc(hidden)]
pub type DriverObjectRaw = sys::DriverObject;

impl From<core::convert::Infallible> for NtStatus {
    fn from(never: core::convert::Infallible) -> NtStatus {
        match never {}
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::{DeviceAccess, Rights, Trustee};

    /// Writes the SDDL of an ACE table the way the SDDL strings above are written.
    fn sddl_of(access: DeviceAccess) -> std::string::String {
        let mut s = std::string::String::from("D:P");
        for ace in access.aces() {
            let rights = match ace.rights {
                Rights::All => "GA",
                Rights::ReadWrite => "GRGW",
            };
            let sid = match ace.trustee {
                Trustee::LocalSystem => "SY",
                Trustee::Administrators => "BA",
                Trustee::Everyone => "WD",
            };
            s.push_str(&std::format!("(A;;{rights};;;{sid})"));
        }
        s
    }

    #[test]
    fn the_ace_table_and_the_sddl_string_describe_the_same_dacl() {
        for access in [
            DeviceAccess::SystemOnly,
            DeviceAccess::SystemAndAdministrators,
            DeviceAccess::EveryoneReadWrite,
        ] {
            assert_eq!(sddl_of(access), access.sddl());
            let utf16: std::vec::Vec<u16> = access.sddl().encode_utf16().collect();
            assert_eq!(access.sddl_utf16(), &utf16[..]);
        }
        assert_eq!(Rights::All.mask(), 0x001F_01FF);
        assert_eq!(Rights::ReadWrite.mask(), 0x0012_019F);
    }
}
