//! The Windows image's panic handler (`no_std`; `panic = "abort"` in every profile): csq's
//! kernel image glue, which prints the panic with `DbgPrint` and bug-checks with
//! `csq::image::PANIC_BUG_CHECK`.

csq::kernel_image_glue!();
