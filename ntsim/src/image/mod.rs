//! Running real x64 Windows driver images (`.sys`) on ntsim.
//!
//! [`load_image`] reads a PE32+ kernel image ([`pe`]), binds every import from `ntoskrnl.exe`
//! and `HAL.dll` by name to ntsim's `win64` entry points or to variables ntsim owns (the one
//! list is in `exports.rs`; [`exported_names`] shows it), maps it into read-write-execute
//! memory and applies its DIR64 base relocations. An import ntsim lacks refuses the whole
//! image with a [`LoadError::MissingImports`] that names every one of them.
//!
//! Inside a machine, [`load_image_driver`] loads the image as a driver: ntsim's
//! `load_driver` calls its DriverEntry, and from then on every routine the image hands to the
//! kernel (dispatch, StartIo, cancel, DPC, CSQ callbacks, completion, thread start, unload) is
//! called with the `win64` convention by `crate::abi`, which recognizes image addresses
//! through the process-wide registry of mapped images. The driver's `DbgPrint` output is its
//! [`LoadedImage::debug_log`]; a `KeBugCheckEx` is a fatal stop ([`crate::Rule::BugCheck`]).
//! Everything else is the I/O manager's, exactly as for a host-built driver: open its devices
//! and send requests with [`crate::iomgr`], unload it with [`crate::iomgr::unload_driver`] (its
//! leak report covers the image's pool blocks: they are charged to the driver whose code runs).
//!
//! Hosts: mapping and running images needs an x86_64 Unix host; elsewhere loading fails with
//! [`LoadError::UnsupportedHost`] (after the parse and import checks, which run everywhere).
//!
//! One image serves one driver: its global variables live in its mapping, so load the file
//! again (it is cheap) for every machine that runs it.

mod bugcheck;
mod crt;
mod dbgprint;
mod error;
mod exports;
#[cfg(all(target_arch = "x86_64", unix))]
mod map;
pub mod pe;
mod pool;
pub(crate) mod registry;
mod time;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub use bugcheck::bugcheck_message;
pub use dbgprint::format_dbgprint;
pub use error::LoadError;
pub use exports::exported_names;
pub use pe::{Import, ImportName, PeFile};

use crate::machine::Cx;
use crate::ntdef::{NTSTATUS, PDRIVER_INITIALIZE, PDRIVER_OBJECT, PUNICODE_STRING, PVOID};
use registry::ImageShared;

/// `STATUS_IMAGE_ALREADY_LOADED`: [`load_image_driver`] on an image that already has a driver.
pub const STATUS_IMAGE_ALREADY_LOADED: NTSTATUS = 0xC000_010E_u32 as i32;

/// Stand-in for a mapping on hosts that cannot run images (never constructed there).
#[cfg(not(all(target_arch = "x86_64", unix)))]
mod map {
    #[derive(Debug)]
    pub(crate) struct Mapping;
}

/// A mapped image with its imports bound. Cheap to clone (a shared handle); the memory goes
/// when the last handle, and the machine that runs it, are gone.
#[derive(Clone, Debug)]
pub struct LoadedImage {
    shared: Arc<ImageShared>,
}

impl LoadedImage {
    /// The file name it was loaded from (`csq_event.sys`).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The address it is mapped at.
    pub fn base(&self) -> usize {
        self.shared.base
    }

    /// Its size in memory (SizeOfImage).
    pub fn size(&self) -> usize {
        self.shared.size
    }

    /// The address of its entry point (DriverEntry).
    pub fn entry_point(&self) -> usize {
        self.shared.entry
    }

    /// Whether `addr` lies inside the image.
    pub fn contains(&self, addr: usize) -> bool {
        self.shared.contains(addr)
    }

    /// Every import, as bound.
    pub fn imports(&self) -> &[Import] {
        &self.shared.imports
    }

    /// The driver's `DbgPrint`/`DbgPrintEx` output so far, one entry per call.
    pub fn debug_log(&self) -> Vec<String> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The driver's debug output as one text.
    pub fn debug_output(&self) -> String {
        self.debug_log().concat()
    }

    /// How many times the driver called DbgBreakPoint(WithStatus).
    pub fn breakpoints(&self) -> u64 {
        *self
            .shared
            .breakpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// Loads the image at `path`: parse, resolve the imports, map, relocate, bind.
///
/// # Errors
/// Every [`LoadError`]: unreadable file, malformed PE32+, unsupported machine or relocation,
/// imports ntsim lacks (all of them named), unsupported host, failed mapping.
pub fn load_image(path: impl AsRef<Path>) -> Result<LoadedImage, LoadError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| LoadError::Io {
        path: path.display().to_string(),
        error: e.to_string(),
    })?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    load_image_bytes(&name, &bytes)
}

/// Loads an image from its file bytes; `name` is what messages and parties call it.
///
/// # Errors
/// As [`load_image`], except for reading the file.
pub fn load_image_bytes(name: &str, bytes: &[u8]) -> Result<LoadedImage, LoadError> {
    let pe = PeFile::parse(bytes)?;
    if pe.entry_point == 0 {
        return Err(LoadError::NoEntryPoint);
    }
    let mut bindings = Vec::with_capacity(pe.imports.len());
    let mut missing = Vec::new();
    for import in &pe.imports {
        let resolved = match &import.name {
            ImportName::Name(n) => exports::resolve(&import.dll, n),
            ImportName::Ordinal(o) => Err(format!(
                "image imports {}!#{o} by ordinal; ntsim binds imports by name only",
                import.dll
            )),
        };
        match resolved {
            Ok(address) => bindings.push((import.iat_rva, address)),
            Err(line) => missing.push(line),
        }
    }
    if !missing.is_empty() {
        return Err(LoadError::MissingImports(missing));
    }
    map_and_register(name, bytes, pe, &bindings)
}

#[cfg(all(target_arch = "x86_64", unix))]
fn map_and_register(
    name: &str,
    bytes: &[u8],
    pe: PeFile,
    bindings: &[(u32, usize)],
) -> Result<LoadedImage, LoadError> {
    let mut mapping = map::map(&pe, bytes)?;
    for &(rva, address) in bindings {
        mapping.write_u64(rva, address as u64);
    }
    let base = mapping.base();
    let shared = Arc::new(ImageShared {
        name: name.to_string(),
        base,
        size: pe.size_of_image as usize,
        entry: base + pe.entry_point as usize,
        imports: pe.imports,
        log: Mutex::new(Vec::new()),
        breakpoints: Mutex::new(0),
        driver: Mutex::new(None),
        mapping: Some(mapping),
    });
    registry::register(&shared);
    Ok(LoadedImage { shared })
}

#[cfg(not(all(target_arch = "x86_64", unix)))]
fn map_and_register(
    _name: &str,
    _bytes: &[u8],
    _pe: PeFile,
    _bindings: &[(u32, usize)],
) -> Result<LoadedImage, LoadError> {
    Err(LoadError::UnsupportedHost)
}

/// The machine's images: the drivers loaded from them (keeping them mapped while the machine
/// can call them).
#[derive(Debug, Default)]
pub(crate) struct ImageTable {
    /// Every image a driver was (or is being) loaded from.
    loaded: Vec<LoadedImage>,
    /// Driver object → its image.
    drivers: HashMap<usize, LoadedImage>,
}

/// Loads `image` as the driver `name` (`\Driver\name`; registry path
/// `...\Services\name`): its DriverEntry runs now, through the `win64` convention, exactly as
/// a host-built driver's does in [`crate::driver::load_driver`]. Call from an emulated
/// thread. The driver's devices are then reached by name like any other driver's.
///
/// Returns the driver object, the status DriverEntry failed with, or
/// [`STATUS_IMAGE_ALREADY_LOADED`] if a driver was already loaded from this image.
pub fn load_image_driver(image: &LoadedImage, name: &str) -> Result<PDRIVER_OBJECT, NTSTATUS> {
    {
        let mut d = image
            .shared
            .driver
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if d.is_some() {
            return Err(STATUS_IMAGE_ALREADY_LOADED);
        }
        *d = Some(0);
    }
    let cx = Cx::get();
    cx.lock().images.loaded.push(image.clone());
    let entry = driver_entry_of(image);
    let driver = crate::driver::load_driver(name, entry)?;
    // SAFETY: a driver object load_driver just created; DriverStart/DriverSize describe the
    // image as the I/O manager's loader fills them.
    let d = unsafe { &mut *driver };
    d.DriverStart = image.base() as PVOID;
    d.DriverSize = image.size() as u32;
    *image
        .shared
        .driver
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some(driver as usize);
    cx.lock()
        .images
        .drivers
        .insert(driver as usize, image.clone());
    Ok(driver)
}

/// The image's entry point as the DriverEntry type that `crate::abi` recognizes.
fn driver_entry_of(image: &LoadedImage) -> PDRIVER_INITIALIZE {
    type Entry = unsafe extern "system" fn(PDRIVER_OBJECT, PUNICODE_STRING) -> NTSTATUS;
    // SAFETY: the address is the image's entry point, a DriverEntry with this signature in the
    // win64 convention; it is only ever called through crate::abi, which sees that it lies in
    // an image and calls it as win64 (the pointer is never called as "system" directly).
    Some(unsafe { std::mem::transmute::<usize, Entry>(image.entry_point()) })
}

/// The image a driver was loaded from by [`load_image_driver`].
pub fn driver_image(driver: PDRIVER_OBJECT) -> Option<LoadedImage> {
    let cx = Cx::get();
    let g = cx.lock();
    g.images.drivers.get(&(driver as usize)).cloned()
}
