//! TEMPORARY platform glue (issue 5) so that the `.sys` image links before the driver exists.
//! The drivers issue replaces this file with the real entry point (a `csq` macro or the
//! driver's own small glue module); see `docs/windows-build.md` for what the image must export.

use wdk_sys::{DRIVER_OBJECT, NTSTATUS, PCUNICODE_STRING, STATUS_SUCCESS};

/// The image's entry point (`/ENTRY:DriverEntry`): sets no callbacks yet and succeeds.
#[unsafe(export_name = "DriverEntry")]
extern "system" fn driver_entry(
    _driver: *mut DRIVER_OBJECT,
    _registry_path: PCUNICODE_STRING,
) -> NTSTATUS {
    STATUS_SUCCESS
}

// The panic handler of the image: DbgPrint, then KeBugCheckEx (csq::image::PANIC_BUG_CHECK).
csq::kernel_image_glue!();
