//! Drivers and device objects: load (DriverEntry), IoCreateDevice, names and symbolic links, and
//! the checked calls into driver routines (dispatch, StartIo, unload).

use std::alloc::Layout;
use std::collections::HashMap;

use crate::breakpoint::Point;
use crate::machine::{Cx, World};
use crate::ntdef::{
    DEVICE_OBJECT, DISPATCH_LEVEL, DO_DEVICE_INITIALIZING, DRIVER_EXTENSION, DRIVER_OBJECT,
    IO_TYPE_DEVICE, IO_TYPE_DRIVER, NTSTATUS, PASSIVE_LEVEL, PDEVICE_OBJECT, PDRIVER_INITIALIZE,
    PDRIVER_OBJECT, PIRP, PUNICODE_STRING, PVOID, STATUS_INSUFFICIENT_RESOURCES,
    STATUS_INVALID_DEVICE_REQUEST, STATUS_OBJECT_NAME_COLLISION, STATUS_OBJECT_NAME_NOT_FOUND,
    STATUS_SUCCESS, SynchronizationEvent, ULONG, UNICODE_STRING,
};
use crate::object::ObjectKind;
use crate::verifier::Rule;

/// A UNICODE_STRING with its own buffer.
#[derive(Debug)]
pub struct OwnedUnicodeString {
    buf: Vec<u16>,
    us: UNICODE_STRING,
}

impl OwnedUnicodeString {
    /// Encodes `s` as UTF-16.
    pub fn new(s: &str) -> Box<OwnedUnicodeString> {
        let buf: Vec<u16> = s.encode_utf16().collect();
        let mut o = Box::new(OwnedUnicodeString {
            buf,
            us: UNICODE_STRING {
                Length: 0,
                MaximumLength: 0,
                Buffer: std::ptr::null_mut(),
            },
        });
        let bytes = (o.buf.len() * 2) as u16;
        o.us = UNICODE_STRING {
            Length: bytes,
            MaximumLength: bytes,
            Buffer: o.buf.as_mut_ptr(),
        };
        o
    }

    /// The UNICODE_STRING (valid while `self` lives).
    pub fn as_ptr(&mut self) -> PUNICODE_STRING {
        &mut self.us
    }
}

/// Reads a UNICODE_STRING into a Rust string.
///
/// # Safety
/// `s` must be NULL or point to a valid UNICODE_STRING.
pub unsafe fn read_unicode(s: PUNICODE_STRING) -> Option<String> {
    if s.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees a valid UNICODE_STRING.
    let us = unsafe { &*s };
    if us.Buffer.is_null() {
        return Some(String::new());
    }
    // SAFETY: a valid UNICODE_STRING's buffer holds Length bytes.
    let slice = unsafe { std::slice::from_raw_parts(us.Buffer, us.Length as usize / 2) };
    Some(String::from_utf16_lossy(slice))
}

#[derive(Debug)]
pub(crate) struct DriverInfo {
    pub(crate) name: String,
    /// The DRIVER_OBJECT's allocation. An unloaded driver's object is kept (stale pointers to
    /// it in DPCs or threads would otherwise touch freed memory), so this is only read when
    /// DriverEntry fails.
    #[allow(dead_code)]
    pub(crate) storage: Layout,
    pub(crate) unloaded: bool,
}

#[derive(Debug)]
pub(crate) struct DeviceInfo {
    pub(crate) driver: usize,
    pub(crate) name: Option<String>,
    pub(crate) storage: Layout,
    /// IoDeleteDevice was called; the memory goes when the last reference does.
    pub(crate) deleted: bool,
    pub(crate) security: Option<String>,
}

/// The security descriptor (SDDL) a device was created with by IoCreateDeviceSecure.
pub fn device_security(dev: PDEVICE_OBJECT) -> Option<String> {
    let cx = Cx::get();
    let g = cx.lock();
    g.drivers
        .devices
        .get(&(dev as usize))
        .and_then(|d| d.security.clone())
}

/// Loaded drivers, their devices, and the object-manager names that lead to devices.
#[derive(Debug, Default)]
pub(crate) struct DriverTable {
    pub(crate) drivers: HashMap<usize, DriverInfo>,
    pub(crate) devices: HashMap<usize, DeviceInfo>,
    /// `\Device\X` → device object.
    pub(crate) names: HashMap<String, usize>,
    /// `\DosDevices\X` (or `\??\X`) → `\Device\X`.
    pub(crate) links: HashMap<String, String>,
    /// StartIo nesting per device: current depth and the deepest seen (rule C27).
    pub(crate) startio_depth: HashMap<usize, (u32, u32)>,
}

fn normalize_link(name: &str) -> String {
    let n = name
        .trim_start_matches("\\DosDevices\\")
        .trim_start_matches("\\??\\")
        .trim_start_matches("\\\\.\\");
    n.to_ascii_lowercase()
}

impl World {
    /// Resolves a user-visible device name (`\\.\X`, `\DosDevices\X`, `\??\X`, `\Device\X`) to a
    /// device object.
    pub(crate) fn resolve_device(&self, name: &str) -> Option<usize> {
        if let Some(&d) = self.drivers.names.get(&name.to_ascii_lowercase()) {
            return Some(d);
        }
        let target = self.drivers.links.get(&normalize_link(name))?;
        self.drivers
            .names
            .get(&target.to_ascii_lowercase())
            .copied()
    }

    /// The driver object of a device.
    pub(crate) fn driver_of(&self, dev: usize) -> Option<usize> {
        self.drivers.devices.get(&dev).map(|d| d.driver)
    }

    /// Frees a deleted device's memory once nothing references it.
    pub(crate) fn reap_device(&mut self, dev: usize) {
        let Some(info) = self.drivers.devices.get(&dev) else {
            return;
        };
        // SAFETY: `dev` is a live device object of this table.
        let refs = unsafe { (*(dev as PDEVICE_OBJECT)).ReferenceCount };
        if info.deleted && refs <= 0 {
            let size = info.storage.size();
            if let Some(t) = self.timers.inserted_in(dev, size) {
                self.report(
                    Rule::FreeActiveTimer,
                    format!("device object {dev:#x} freed while the timer at {t:#x} in its extension is inserted"),
                    Vec::new(),
                );
                return;
            }
            if let Some(d) = self.active_dpc_in(dev, size) {
                self.report(
                    Rule::FreeActiveTimer,
                    format!("device object {dev:#x} freed while the DPC at {d:#x} in its extension is queued or running"),
                    Vec::new(),
                );
                return;
            }
            let info = self.drivers.devices.remove(&dev).expect("present");
            self.objects.objects.remove(&dev);
            // SAFETY: allocated in IoCreateDevice with this layout; nothing references it.
            unsafe { std::alloc::dealloc(dev as *mut u8, info.storage) };
        }
    }
}

/// Loads a driver: creates its DRIVER_OBJECT and calls `entry` at PASSIVE_LEVEL with the
/// driver object and a registry path. Call from an emulated thread.
///
/// Returns the driver object, or the status DriverEntry failed with (the object is then gone).
pub fn load_driver(name: &str, entry: PDRIVER_INITIALIZE) -> Result<PDRIVER_OBJECT, NTSTATUS> {
    let cx = Cx::get();
    let Some(entry) = entry else {
        return Err(STATUS_INVALID_DEVICE_REQUEST);
    };
    let layout = Layout::from_size_align(
        size_of::<DRIVER_OBJECT>() + size_of::<DRIVER_EXTENSION>(),
        16,
    )
    .expect("valid layout");
    // SAFETY: non-zero size.
    let p = unsafe { std::alloc::alloc_zeroed(layout) } as PDRIVER_OBJECT;
    assert!(!p.is_null(), "host out of memory");
    let full_name = format!("\\Driver\\{name}");
    // The name strings live as long as the machine (drivers may keep pointers to them).
    let driver_name = Box::leak(OwnedUnicodeString::new(&full_name));
    let registry = Box::leak(OwnedUnicodeString::new(&format!(
        "\\Registry\\Machine\\System\\CurrentControlSet\\Services\\{name}"
    )));
    // SAFETY: the extension follows the DRIVER_OBJECT in the same allocation.
    let ext = unsafe { p.add(1) }.cast::<DRIVER_EXTENSION>();
    // SAFETY: fresh zeroed storage for the extension.
    unsafe { (*ext).DriverObject = p };
    // SAFETY: `p` is fresh zeroed storage for a DRIVER_OBJECT that nothing else references.
    let d = unsafe { &mut *p };
    d.Type = IO_TYPE_DRIVER;
    d.Size = size_of::<DRIVER_OBJECT>() as i16;
    d.DriverExtension = ext;
    d.DriverName = driver_name.us;
    d.DriverInit = Some(entry);
    {
        let mut g = cx.lock();
        g.register_object(p as usize, ObjectKind::Driver, Some(full_name.clone()));
        g.drivers.drivers.insert(
            p as usize,
            DriverInfo {
                name: full_name,
                storage: layout,
                unloaded: false,
            },
        );
    }
    // SAFETY: DriverEntry's contract: a fresh driver object and its registry path.
    let status = call_driver_routine(&cx, p as usize, "DriverEntry", PASSIVE_LEVEL, || unsafe {
        crate::abi::call_driver_entry(entry, p, registry.as_ptr())
    });
    if !crate::ntdef::NT_SUCCESS(status) {
        let mut g = cx.lock();
        g.drivers.drivers.remove(&(p as usize));
        g.objects.objects.remove(&(p as usize));
        // SAFETY: allocated above with `layout`; DriverEntry failed, so nothing keeps it.
        unsafe { std::alloc::dealloc(p.cast(), layout) };
        return Err(status);
    }
    // The I/O manager readies the devices a legacy driver created in DriverEntry
    // (IopReadyDeviceObjects): opens of a device still initializing fail.
    // SAFETY: a loaded driver object.
    let mut dev = unsafe { (*p).DeviceObject };
    while !dev.is_null() {
        // SAFETY: the driver's device list holds its live device objects.
        let d = unsafe { &mut *dev };
        d.Flags &= !DO_DEVICE_INITIALIZING;
        dev = d.NextDevice;
    }
    Ok(p)
}

/// Calls a routine of `driver` (DriverEntry, a dispatch routine, DriverUnload) on the running
/// actor: while it runs, what the actor allocates or creates is the driver's (for unload's
/// checks), and the IRQL/lock/critical-region checks of [`call_checked`] apply.
pub(crate) fn call_driver_routine<R>(
    cx: &Cx,
    driver: usize,
    what: &str,
    irql: u8,
    f: impl FnOnce() -> R,
) -> R {
    cx.lock().push_driver(cx.me, driver);
    let r = call_checked(cx, what, irql, f);
    cx.lock().pop_driver(cx.me);
    r
}

/// Calls a driver routine expected to run at `irql` and checks that it returns at the IRQL it
/// was called at, holding no spin lock and with balanced critical regions (rules C21, C22).
pub(crate) fn call_checked<R>(cx: &Cx, what: &str, irql: u8, f: impl FnOnce() -> R) -> R {
    // The routine must leave the IRQL and the set of held spin locks as it found them: a caller
    // may legitimately hold a lock of its own across the call (e.g. a driver that starts the
    // next packet under its own lock), so compare with the entry state, not with zero.
    let (entry_irql, entry_locks, entry_apc) = {
        let g = cx.lock();
        let a = g.sched.actor(cx.me);
        debug_assert!(a.irql == irql || irql == DISPATCH_LEVEL);
        (a.irql, a.held_locks.clone(), a.apc_disable)
    };
    let r = f();
    let mut g = cx.lock();
    let a = g.sched.actor(cx.me);
    let (irql_now, apc) = (a.irql, a.apc_disable);
    let locks_changed = a.held_locks != entry_locks;
    let extra = a.held_locks.len().saturating_sub(entry_locks.len());
    if irql_now != entry_irql || locks_changed {
        let who = g.who(cx.me);
        g.report(
            Rule::IrqlChanged,
            format!(
                "{what} returned at IRQL {irql_now} holding {extra} more spin lock(s) than at entry; it was called at IRQL {entry_irql}"
            ),
            vec![who],
        );
    } else if apc != entry_apc {
        let who = g.who(cx.me);
        g.report(
            Rule::CriticalRegion,
            format!(
                "{what} returned with {} unbalanced critical region(s)",
                apc - entry_apc
            ),
            vec![who],
        );
    }
    r
}

/// Calls the dispatch routine of `dev` for `irp`'s current stack location's major function.
/// The stack location must already be set up. Returns what the routine returned.
pub(crate) fn call_dispatch(cx: &Cx, dev: PDEVICE_OBJECT, irp: PIRP) -> NTSTATUS {
    // SAFETY: `irp` is a live IRP routed to `dev`, with a current stack location.
    let sl = unsafe { crate::irp::IoGetCurrentIrpStackLocation(irp) };
    // SAFETY: as above.
    let major = unsafe { (*sl).MajorFunction };
    // SAFETY: as above.
    let location = unsafe { (*irp).CurrentLocation };
    // SAFETY: `dev` is a live device object of a loaded driver.
    let drv = unsafe { (*dev).DriverObject };
    // SAFETY: as above.
    let routine = unsafe { (*drv).MajorFunction[major as usize] };
    cx.point(Point::DispatchEntry, irp as usize);
    {
        let mut g = cx.lock();
        g.irp_event(
            irp as usize,
            cx.me,
            format!("dispatched (IRP_MJ {major:#x})"),
        );
    }
    let status = match routine {
        Some(f) => {
            // SAFETY: the driver registered `f` as its dispatch routine for this major
            // function; it is called at PASSIVE_LEVEL with its device and the IRP.
            let status = call_driver_routine(
                cx,
                drv as usize,
                "dispatch routine",
                PASSIVE_LEVEL,
                || unsafe { crate::abi::call_dispatch_fn(f, dev, irp) },
            );
            crate::iomgr::check_dispatch_return(cx, irp, sl, location, status);
            status
        }
        None => {
            // No routine: the I/O manager's default completes with STATUS_INVALID_DEVICE_REQUEST.
            // SAFETY: the IRP is live and owned here.
            let r = unsafe { &mut *irp };
            r.IoStatus.u.Status = STATUS_INVALID_DEVICE_REQUEST;
            r.IoStatus.Information = 0;
            // SAFETY: as above.
            unsafe { crate::complete::IofCompleteRequest(irp, 0) };
            STATUS_INVALID_DEVICE_REQUEST
        }
    };
    cx.point(Point::DispatchExit, irp as usize);
    status
}

/// Sends `irp` to `dev`: moves to the next stack location (which the caller set up), sets its
/// DeviceObject and calls the driver's dispatch routine for its major function, with the
/// dispatch return-value checks of rule C7. Returns what the dispatch routine returned.
///
/// IRQL: <= DISPATCH_LEVEL (PASSIVE_LEVEL for the I/O manager's requests).
///
/// # Safety
/// `dev` must be a live device object and `irp` a live IRP whose next stack location is set
/// up for `dev`; the IRP belongs to `dev`'s driver from now on.
#[allow(non_snake_case)]
pub unsafe fn IofCallDriver(dev: PDEVICE_OBJECT, irp: PIRP) -> NTSTATUS {
    let cx = Cx::get();
    // SAFETY: the caller guarantees a next stack location.
    unsafe { crate::irp::IoSetNextIrpStackLocation(irp) };
    // SAFETY: the caller guarantees a live IRP.
    let sl = unsafe { crate::irp::IoGetCurrentIrpStackLocation(irp) };
    // SAFETY: the current stack location is now the one set up for `dev`.
    unsafe { (*sl).DeviceObject = dev };
    call_dispatch(&cx, dev, irp)
}

/// `IoCallDriver`.
///
/// # Safety
/// As [`IofCallDriver`].
#[allow(non_snake_case)]
pub unsafe fn IoCallDriver(dev: PDEVICE_OBJECT, irp: PIRP) -> NTSTATUS {
    // SAFETY: forwarded caller contract.
    unsafe { IofCallDriver(dev, irp) }
}

/// Creates a device object with a `extension_size`-byte zeroed extension, linked into the
/// driver's device list, named `name` if given.
///
/// IRQL: PASSIVE_LEVEL. Returns STATUS_SUCCESS, STATUS_OBJECT_NAME_COLLISION or
/// STATUS_INSUFFICIENT_RESOURCES.
///
/// # Safety
/// `driver` must be a loaded driver object; `name` NULL or a valid UNICODE_STRING; `device`
/// valid for a write.
#[allow(non_snake_case, clippy::too_many_arguments)]
pub unsafe fn IoCreateDevice(
    driver: PDRIVER_OBJECT,
    extension_size: ULONG,
    name: PUNICODE_STRING,
    device_type: u32,
    characteristics: ULONG,
    _exclusive: u8,
    device: *mut PDEVICE_OBJECT,
) -> NTSTATUS {
    // SAFETY: forwarded caller contract.
    unsafe {
        create_device(
            driver,
            extension_size,
            name,
            device_type,
            characteristics,
            None,
            device,
        )
    }
}

/// IoCreateDevice with a security descriptor (SDDL) for the device; ntsim records it.
///
/// IRQL: PASSIVE_LEVEL. Returns as [`IoCreateDevice`].
///
/// # Safety
/// As [`IoCreateDevice`]; `sddl` NULL or a valid UNICODE_STRING.
#[allow(non_snake_case, clippy::too_many_arguments)]
pub unsafe fn IoCreateDeviceSecure(
    driver: PDRIVER_OBJECT,
    extension_size: ULONG,
    name: PUNICODE_STRING,
    device_type: u32,
    characteristics: ULONG,
    _exclusive: u8,
    sddl: PUNICODE_STRING,
    _class_guid: PVOID,
    device: *mut PDEVICE_OBJECT,
) -> NTSTATUS {
    // SAFETY: forwarded caller contract.
    let sddl = unsafe { read_unicode(sddl) };
    // SAFETY: forwarded caller contract.
    unsafe {
        create_device(
            driver,
            extension_size,
            name,
            device_type,
            characteristics,
            sddl,
            device,
        )
    }
}

/// # Safety
/// As [`IoCreateDevice`].
unsafe fn create_device(
    driver: PDRIVER_OBJECT,
    extension_size: ULONG,
    name: PUNICODE_STRING,
    device_type: u32,
    characteristics: ULONG,
    sddl: Option<String>,
    device: *mut PDEVICE_OBJECT,
) -> NTSTATUS {
    let cx = Cx::get();
    cx.check_irql_at_most("IoCreateDevice", PASSIVE_LEVEL);
    // SAFETY: the caller guarantees `name` is NULL or valid.
    let name = unsafe { read_unicode(name) };
    let mut g = cx.lock();
    if let Some(n) = &name {
        if g.drivers.names.contains_key(&n.to_ascii_lowercase()) {
            return STATUS_OBJECT_NAME_COLLISION;
        }
    }
    let ext_offset = size_of::<DEVICE_OBJECT>();
    let Ok(layout) = Layout::from_size_align(ext_offset + extension_size as usize, 16) else {
        return STATUS_INSUFFICIENT_RESOURCES;
    };
    // SAFETY: non-zero size.
    let dev = unsafe { std::alloc::alloc_zeroed(layout) } as PDEVICE_OBJECT;
    if dev.is_null() {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    // SAFETY: `driver` is a loaded driver object (the caller's contract).
    let drv = unsafe { &mut *driver };
    // SAFETY: `dev` is fresh zeroed storage for a device object and its extension.
    let d = unsafe { &mut *dev };
    d.Type = IO_TYPE_DEVICE;
    d.Size = (ext_offset + extension_size as usize) as u16;
    d.DriverObject = driver;
    d.NextDevice = drv.DeviceObject;
    drv.DeviceObject = dev;
    d.Flags = DO_DEVICE_INITIALIZING;
    d.Characteristics = characteristics;
    d.DeviceExtension = if extension_size > 0 {
        // SAFETY: the extension follows the device object in the same allocation.
        unsafe { dev.cast::<u8>().add(ext_offset) }.cast()
    } else {
        std::ptr::null_mut()
    };
    d.DeviceType = device_type;
    d.StackSize = 1;
    // SAFETY: the device queue is a field of the fresh device object.
    unsafe { crate::device_queue::init(&raw mut d.DeviceQueue) };
    // SAFETY: the device lock is a field of the fresh device object.
    unsafe {
        crate::event::init_event_object((&raw mut d.DeviceLock).cast(), SynchronizationEvent, true)
    };
    d.SectorSize = 0;
    g.register_object(dev as usize, ObjectKind::Device, name.clone());
    if let Some(n) = &name {
        g.drivers.names.insert(n.to_ascii_lowercase(), dev as usize);
    }
    g.drivers.devices.insert(
        dev as usize,
        DeviceInfo {
            driver: driver as usize,
            name,
            storage: layout,
            deleted: false,
            security: sddl,
        },
    );
    // SAFETY: the caller guarantees `device` is writable.
    unsafe { device.write(dev) };
    STATUS_SUCCESS
}

/// Deletes a device object: unlinks it from its driver and its name; the memory goes when the
/// last reference (open file) does.
///
/// IRQL: PASSIVE_LEVEL.
///
/// # Safety
/// `dev` must be a device object of a loaded driver, not deleted before.
#[allow(non_snake_case)]
pub unsafe fn IoDeleteDevice(dev: PDEVICE_OBJECT) {
    let cx = Cx::get();
    cx.check_irql_at_most("IoDeleteDevice", PASSIVE_LEVEL);
    let mut g = cx.lock();
    let Some(info) = g.drivers.devices.get_mut(&(dev as usize)) else {
        let who = g.who(cx.me);
        g.report(
            Rule::BadPool,
            format!("IoDeleteDevice({:#x}): not a device object", dev as usize),
            vec![who],
        );
        return;
    };
    info.deleted = true;
    if let Some(n) = info.name.clone() {
        g.drivers.names.remove(&n.to_ascii_lowercase());
    }
    unlink_device(dev);
    g.reap_device(dev as usize);
}

/// Unlinks `dev` from its driver's device list.
fn unlink_device(dev: PDEVICE_OBJECT) {
    // SAFETY: `dev` is a live device object of a loaded driver (IoDeleteDevice checked it).
    let d = unsafe { &*dev };
    // SAFETY: its driver object is live.
    let mut link: *mut PDEVICE_OBJECT = unsafe { &raw mut (*d.DriverObject).DeviceObject };
    loop {
        // SAFETY: `link` points to the list head or a live device's NextDevice field.
        let cur = unsafe { *link };
        if cur.is_null() {
            return;
        }
        if cur == dev {
            // SAFETY: as above.
            unsafe { *link = d.NextDevice };
            return;
        }
        // SAFETY: `cur` is a live device of the list.
        link = unsafe { &raw mut (*cur).NextDevice };
    }
}

/// Creates a symbolic link `link` (e.g. `\DosDevices\X`) to the device name `target`.
///
/// IRQL: PASSIVE_LEVEL. Returns STATUS_SUCCESS or STATUS_OBJECT_NAME_COLLISION.
///
/// # Safety
/// Both must be valid UNICODE_STRINGs.
#[allow(non_snake_case)]
pub unsafe fn IoCreateSymbolicLink(link: PUNICODE_STRING, target: PUNICODE_STRING) -> NTSTATUS {
    let cx = Cx::get();
    cx.check_irql_at_most("IoCreateSymbolicLink", PASSIVE_LEVEL);
    // SAFETY: the caller guarantees valid strings.
    let (Some(l), Some(t)) = (unsafe { read_unicode(link) }, unsafe {
        read_unicode(target)
    }) else {
        return STATUS_OBJECT_NAME_NOT_FOUND;
    };
    let mut g = cx.lock();
    let key = normalize_link(&l);
    if g.drivers.links.contains_key(&key) {
        return STATUS_OBJECT_NAME_COLLISION;
    }
    g.drivers.links.insert(key, t);
    STATUS_SUCCESS
}

/// Deletes a symbolic link.
///
/// IRQL: PASSIVE_LEVEL. Returns STATUS_SUCCESS or STATUS_OBJECT_NAME_NOT_FOUND.
///
/// # Safety
/// `link` must be a valid UNICODE_STRING.
#[allow(non_snake_case)]
pub unsafe fn IoDeleteSymbolicLink(link: PUNICODE_STRING) -> NTSTATUS {
    let cx = Cx::get();
    // SAFETY: the caller guarantees a valid string.
    let Some(l) = (unsafe { read_unicode(link) }) else {
        return STATUS_OBJECT_NAME_NOT_FOUND;
    };
    let mut g = cx.lock();
    match g.drivers.links.remove(&normalize_link(&l)) {
        Some(_) => STATUS_SUCCESS,
        None => STATUS_OBJECT_NAME_NOT_FOUND,
    }
}

/// Initializes a UNICODE_STRING over a NUL-terminated UTF-16 string (or empty for NULL).
///
/// IRQL: any.
///
/// # Safety
/// `dest` must be writable; `src` NULL or a NUL-terminated UTF-16 string that outlives `dest`.
#[allow(non_snake_case)]
pub unsafe fn RtlInitUnicodeString(dest: PUNICODE_STRING, src: *const u16) {
    let mut len = 0usize;
    if !src.is_null() {
        loop {
            // SAFETY: the caller guarantees NUL termination: `len` stays within the string.
            let c = unsafe { src.add(len) };
            // SAFETY: as above.
            if unsafe { *c } == 0 {
                break;
            }
            len += 1;
        }
    }
    // SAFETY: the caller guarantees `dest` is writable.
    let d = unsafe { &mut *dest };
    d.Length = (len * 2) as u16;
    d.MaximumLength = if src.is_null() {
        0
    } else {
        (len * 2 + 2) as u16
    };
    d.Buffer = src.cast_mut();
}

/// The name of every device object of a driver, and whether it's still there (for tests).
pub fn device_names() -> Vec<String> {
    let cx = Cx::get();
    let g = cx.lock();
    let mut v: Vec<String> = g.drivers.names.keys().cloned().collect();
    v.sort();
    v
}
