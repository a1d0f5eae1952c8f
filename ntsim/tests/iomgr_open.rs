//! Opening a device by name: the FILE_OBJECT, IRP_MJ_CREATE, device references, and the IRP
//! the I/O manager builds for a user-mode request.

mod iomgr_support;

use iomgr_support::*;
use ntsim::breakpoint::{Breakpoint, Filter, Point};
use ntsim::iomgr::*;
use ntsim::ntdef::*;
use ntsim::{Config, Kernel};

#[test]
fn unknown_name_is_not_found() {
    let out = Kernel::new(Config::default()).run(|| {
        let (_drv, _dev) = load();
        let p = Process::create("app");
        p.spawn_thread("client", || {
            assert_eq!(
                create_file(r"\\.\NoSuchDev", OpenMode::Synchronous),
                Err(STATUS_OBJECT_NAME_NOT_FOUND)
            );
            for name in [
                NAME,
                r"\DosDevices\TestDev",
                r"\??\TestDev",
                r"\Device\TestDev",
            ] {
                let h = create_file(name, OpenMode::Overlapped).expect(name);
                close_handle(h);
            }
            assert_eq!(
                close_handle(Handle::from_raw(0x44 as HANDLE)),
                STATUS_INVALID_HANDLE
            );
        })
        .join();
    });
    out.expect_clean();
}

#[test]
fn open_creates_a_synchronous_file_object_and_references_the_device() {
    let out = Kernel::new(Config::default()).run(|| {
        let (_drv, dev) = load();
        let devaddr = dev as usize;
        let p = Process::create("app");
        p.spawn_thread("client", move || {
            let dev = devaddr as PDEVICE_OBJECT;
            let h = create_file(NAME, OpenMode::Synchronous).expect("open");
            assert_eq!(device_refs(dev), 1);
            let fo = state(dev).log[0].2 as *mut FILE_OBJECT;
            // SAFETY: the open file object.
            let f = unsafe { &*fo };
            assert_eq!(f.Type, IO_TYPE_FILE);
            assert_eq!(f.DeviceObject, dev);
            assert_ne!(f.Flags & FO_SYNCHRONOUS_IO, 0);
            assert_ne!(f.Flags & FO_HANDLE_CREATED, 0);
            assert!(!f.FsContext.is_null());
            let h2 = create_file(NAME, OpenMode::Overlapped).expect("open");
            assert_eq!(device_refs(dev), 2);
            let fo2 = state(dev).log[1].2 as *mut FILE_OBJECT;
            // SAFETY: the second open file object.
            assert_eq!(unsafe { (*fo2).Flags } & FO_SYNCHRONOUS_IO, 0);
            assert_eq!(p.handle_count(), 2);
            close_handle(h);
            close_handle(h2);
            assert_eq!(device_refs(dev), 0);
        })
        .join();
    });
    out.expect_clean();
}

#[test]
fn failed_create_leaves_no_file_object_and_no_reference() {
    let out = Kernel::new(Config::default()).run(|| {
        let (_drv, dev) = load();
        state(dev).create_status = STATUS_ACCESS_DENIED;
        let p = Process::create("app");
        p.spawn_thread("client", || {
            assert_eq!(
                create_file(NAME, OpenMode::Synchronous),
                Err(STATUS_ACCESS_DENIED)
            );
        })
        .join();
        assert_eq!(device_refs(dev), 0);
        assert_eq!(majors(dev), vec![IRP_MJ_CREATE], "no CLEANUP or CLOSE");
        assert_eq!(p.handle_count(), 0);
    });
    out.expect_clean();
}

/// The IRP of a user-mode DeviceIoControl: stack location, buffers, requestor mode, thread,
/// original file object.
#[test]
fn ioctl_irp_has_the_user_request_fields() {
    let out = Kernel::new(Config::default()).run(|| {
        let (_drv, dev) = load();
        let p = Process::create("app");
        let slot = std::sync::Arc::new(std::sync::Mutex::new(None));
        let s = slot.clone();
        p.spawn_thread("opener", move || {
            *s.lock().unwrap() = Some(create_file(NAME, OpenMode::Overlapped).expect("open"));
        })
        .join();
        let h = slot.lock().unwrap().expect("open");
        let bp = Breakpoint::set(Point::DispatchEntry, Filter::Any);
        let t = p.spawn_thread("client", move || {
            device_io_control(h, IOCTL_ECHO, b"abc", 10).expect("ioctl");
        });
        let hit = bp.wait_hit();
        let irp = hit.object as PIRP;
        // SAFETY: the IRP is parked before its dispatch routine.
        let r = unsafe { &*irp };
        // SAFETY: as above.
        let slp = unsafe { ntsim::irp::IoGetCurrentIrpStackLocation(irp) };
        // SAFETY: as above.
        let sl = unsafe { &*slp };
        assert_eq!(sl.MajorFunction, IRP_MJ_DEVICE_CONTROL);
        // SAFETY: an IOCTL stack location.
        let p = unsafe { sl.Parameters.DeviceIoControl };
        assert_eq!(
            (p.IoControlCode, p.InputBufferLength, p.OutputBufferLength),
            (IOCTL_ECHO, 3, 10)
        );
        assert_eq!(sl.DeviceObject, dev);
        let fo = state(dev).log[0].2 as *mut FILE_OBJECT;
        assert_eq!(sl.FileObject, fo);
        assert_eq!(r.RequestorMode, UserMode);
        // SAFETY: the overlay is the active member while the IRP is routed.
        let overlay = unsafe { r.Tail.Overlay };
        let (thread, ofo) = (overlay.Thread, overlay.OriginalFileObject);
        assert_eq!(thread.cast(), t.object());
        assert_eq!(ofo, fo);
        // SAFETY: METHOD_BUFFERED: the system buffer holds the input.
        let sb = unsafe { r.AssociatedIrp.SystemBuffer }.cast::<u8>();
        // SAFETY: 3 input bytes.
        assert_eq!(unsafe { std::slice::from_raw_parts(sb, 3) }, b"abc");
        assert_ne!(r.Flags & IRP_BUFFERED_IO, 0);
        assert!(!r.UserIosb.is_null());
        bp.clear();
        t.join();
    });
    out.expect_clean();
}
