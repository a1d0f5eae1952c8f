// Doc-test harness (included by the crate docs' examples): loads the example driver on ntsim,
// sends it three requests (due 20 ms, 0 ms, 10 ms), cancels the first while it is in service,
// and checks the model-S observations: the cancelled one first, then the next two.
fn run(entry: unsafe extern "system" fn(*mut ntsim::ntdef::DRIVER_OBJECT, *mut ntsim::ntdef::UNICODE_STRING) -> i32) {
    use ntsim::ntdef::*;
    fn request(ms: u32, buf: &mut [u8]) -> *mut IRP {
        let irp = ntsim::irp::IoAllocateIrp(1, 0);
        // SAFETY: a fresh IRP with one stack location.
        unsafe { ntsim::irp::IoSetNextIrpStackLocation(irp) };
        // SAFETY: the current stack location exists now.
        let sl = unsafe { &mut *ntsim::irp::IoGetCurrentIrpStackLocation(irp) };
        sl.MajorFunction = IRP_MJ_DEVICE_CONTROL;
        sl.Parameters = IO_STACK_LOCATION_PARAMETERS {
            DeviceIoControl: IO_STACK_LOCATION_DEVICE_IO_CONTROL::new(0, ms, 0x22_2000, std::ptr::null_mut()),
        };
        // SAFETY: a live IRP.
        unsafe { (*irp).AssociatedIrp = IRP_ASSOCIATED_IRP { SystemBuffer: buf.as_mut_ptr().cast() } };
        irp
    }
    fn status(irp: *mut IRP) -> NTSTATUS {
        // SAFETY: the IRP is not freed in this harness.
        unsafe { (*irp).IoStatus.status() }
    }
    ntsim::Kernel::new(ntsim::Config::default())
        .run(move || {
            let driver = ntsim::driver::load_driver("Waiter", Some(entry)).unwrap();
            // SAFETY: a loaded driver with one device.
            let dev = unsafe { (*driver).DeviceObject };
            let mut buf = [0u8; 1];
            let irps = [20, 0, 10].map(|ms| request(ms, &mut buf));
            for &irp in &irps {
                // SAFETY: the current stack location exists.
                unsafe { (*ntsim::irp::IoGetCurrentIrpStackLocation(irp)).DeviceObject = dev };
                // SAFETY: the driver's dispatch routine, with its device and an IRP for it.
                let st = unsafe { (*driver).MajorFunction[IRP_MJ_DEVICE_CONTROL as usize].unwrap()(dev, irp) };
                assert_eq!(st, STATUS_PENDING);
            }
            ::csq::sleep(::csq::Interval::from_millis(5));
            // SAFETY: the IRP is live.
            assert_eq!(unsafe { ntsim::cancel::IoCancelIrp(irps[0]) }, 1, "cancelable in service");
            assert_eq!(status(irps[0]), STATUS_CANCELLED);
            ::csq::sleep(::csq::Interval::from_millis(50));
            assert_eq!(status(irps[1]), STATUS_SUCCESS);
            assert_eq!(status(irps[2]), STATUS_SUCCESS);
            // SAFETY: the driver is idle.
            unsafe { (*driver).DriverUnload.unwrap()(driver) };
        })
        .expect_clean();
}
