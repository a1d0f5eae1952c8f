//! The platform glue of the Windows kernel image that `csq::driver_entry!` does not generate:
//! the panic handler. (`DriverEntry` itself is exported by the macro.)

/// A panic in a kernel driver has nowhere to unwind to: stop here (a debugger shows where).
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
