//! The Windows image's panic handler (`no_std`; `panic = "abort"` in every profile). A panic in
//! a kernel driver is a bug; spinning keeps the machine inspectable under a kernel debugger.

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
