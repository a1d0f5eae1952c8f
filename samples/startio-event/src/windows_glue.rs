//! The platform glue of the Windows kernel image that `csq::driver_entry!` does not generate:
//! the panic handler, from csq's kernel image glue (`DbgPrint`, then `KeBugCheckEx` with
//! `csq::image::PANIC_BUG_CHECK`). (`DriverEntry` itself is exported by the macro.)

csq::kernel_image_glue!();
