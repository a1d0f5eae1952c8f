//! The driver (Windows only). Raw wdk-sys calls: a fixture, kept flat on purpose.

// A fixture of raw kernel calls: one SAFETY comment per block of calls, not per call.
#![allow(clippy::multiple_unsafe_ops_per_block)]

use core::ffi::c_void;
use core::ptr::{addr_of_mut, null_mut};

use wdk_sys::ntddk::{
    DbgBreakPoint, DbgPrint, DbgPrintEx, ExAllocatePool2, ExFreePoolWithTag, IoCreateDevice,
    IoCreateSymbolicLink, IoDeleteDevice, IoDeleteSymbolicLink, IofCompleteRequest, KeBugCheckEx,
    KeInitializeDpc, KeInitializeEvent, KeInitializeTimer, KeReadStateEvent, KeSetEvent,
    KeSetTimer, KeWaitForSingleObject,
};
use wdk_sys::{
    DEVICE_OBJECT, DRIVER_OBJECT, IRP, KDPC, KEVENT, KTIMER, LARGE_INTEGER, NTSTATUS,
    PCUNICODE_STRING, PVOID, UNICODE_STRING,
};

use crate::{IOCTL_BREAK, IOCTL_BUGCHECK, IOCTL_PING, IOCTL_TIMER};

const STATUS_SUCCESS: NTSTATUS = 0;
const STATUS_INVALID_DEVICE_REQUEST: NTSTATUS = 0xC000_0010_u32 as i32;
const STATUS_BUFFER_TOO_SMALL: NTSTATUS = 0xC000_0023_u32 as i32;
const STATUS_INSUFFICIENT_RESOURCES: NTSTATUS = 0xC000_009A_u32 as i32;
const POOL_FLAG_NON_PAGED: u64 = 0x40;
const TAG: u32 = u32::from_le_bytes(*b"Prob");
const FILE_DEVICE_UNKNOWN: u32 = 0x22;
const IRP_MJ_CREATE: usize = 0x00;
const IRP_MJ_CLOSE: usize = 0x02;
const IRP_MJ_DEVICE_CONTROL: usize = 0x0E;
/// `DPFLTR_IHVDRIVER_ID`, `DPFLTR_ERROR_LEVEL`.
const DPFLTR_IHVDRIVER_ID: u32 = 77;
const DPFLTR_ERROR_LEVEL: u32 = 0;

/// ASCII → UTF-16 at compile time (names are ASCII).
const fn wide<const N: usize>(s: &[u8; N]) -> [u16; N] {
    let mut out = [0u16; N];
    let mut i = 0;
    while i < N {
        out[i] = s[i] as u16;
        i += 1;
    }
    out
}

static DEVICE_NAME: [u16; 18] = wide(b"\\Device\\NtsimProbe");
static LINK_NAME: [u16; 22] = wide(b"\\DosDevices\\NtsimProbe");
static WIDE_LOWER: [u16; 5] = wide(b"wide\0");
static WIDE_UPPER: [u16; 5] = wide(b"WIDE\0");

fn counted(s: &'static [u16]) -> UNICODE_STRING {
    UNICODE_STRING {
        Length: (s.len() * 2) as u16,
        MaximumLength: (s.len() * 2) as u16,
        Buffer: s.as_ptr().cast_mut(),
    }
}

/// The device extension.
#[repr(C)]
struct Ext {
    timer: KTIMER,
    dpc: KDPC,
    done: KEVENT,
}

/// The image's entry point (`/ENTRY:DriverEntry`).
#[unsafe(export_name = "DriverEntry")]
extern "system" fn driver_entry(
    driver: *mut DRIVER_OBJECT,
    registry_path: PCUNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: DriverEntry's contract: a fresh driver object and a registry path; every call
    // below is a kernel routine used as documented, at PASSIVE_LEVEL.
    unsafe { entry(driver, registry_path) }
}

unsafe fn entry(driver: *mut DRIVER_OBJECT, registry_path: PCUNICODE_STRING) -> NTSTATUS {
    // SAFETY: (whole function) as in `driver_entry`.
    unsafe {
        DbgPrint(c"probe: DriverEntry %wZ\n".as_ptr(), registry_path);
        DbgPrint(
            c"probe: %s %d %u %x %X %c\n".as_ptr(),
            c"str".as_ptr(),
            -5i32,
            7u32,
            0xbeefu32,
            0xBEEFu32,
            b'k' as i32,
        );
        DbgPrint(
            c"probe: %ld %lu %lx %llx %I64x %08x|%-4d|\n".as_ptr(),
            -6i32,
            8u32,
            0xabcu32,
            0x1122_3344_5566_7788u64,
            0xffff_0000_0000u64,
            0x1fu32,
            3i32,
        );
        DbgPrint(
            c"probe: %ws %S %p %%\n".as_ptr(),
            WIDE_LOWER.as_ptr(),
            WIDE_UPPER.as_ptr(),
            0x1234usize as *const c_void,
        );
        DbgPrintEx(
            DPFLTR_IHVDRIVER_ID,
            DPFLTR_ERROR_LEVEL,
            c"probe: DbgPrintEx %d\n".as_ptr(),
            77i32,
        );

        let p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 128, TAG).cast::<u8>();
        if p.is_null() {
            return STATUS_INSUFFICIENT_RESOURCES;
        }
        p.write_bytes(0x5A, 128);
        let sum = (0..128).fold(0u32, |a, i| a + u32::from(p.add(i).read()));
        ExFreePoolWithTag(p.cast(), TAG);
        DbgPrint(c"probe: pool %u\n".as_ptr(), sum);

        let mut device: *mut DEVICE_OBJECT = null_mut();
        let mut name = counted(&DEVICE_NAME);
        let status = IoCreateDevice(
            driver,
            size_of::<Ext>() as u32,
            &mut name,
            FILE_DEVICE_UNKNOWN,
            0,
            0,
            &mut device,
        );
        if status != STATUS_SUCCESS {
            return status;
        }
        let ext = (*device).DeviceExtension.cast::<Ext>();
        KeInitializeEvent(addr_of_mut!((*ext).done), 0, 0);
        KeSetEvent(addr_of_mut!((*ext).done), 0, 0);
        let state = KeReadStateEvent(addr_of_mut!((*ext).done));
        DbgPrint(c"probe: event %d\n".as_ptr(), state);
        KeInitializeTimer(addr_of_mut!((*ext).timer));
        KeInitializeDpc(addr_of_mut!((*ext).dpc), Some(timer_dpc), ext.cast());

        let mut link = counted(&LINK_NAME);
        let status = IoCreateSymbolicLink(&mut link, &mut name);
        if status != STATUS_SUCCESS {
            IoDeleteDevice(device);
            return status;
        }
        (*driver).MajorFunction[IRP_MJ_CREATE] = Some(create_close);
        (*driver).MajorFunction[IRP_MJ_CLOSE] = Some(create_close);
        (*driver).MajorFunction[IRP_MJ_DEVICE_CONTROL] = Some(device_control);
        (*driver).DriverUnload = Some(unload);
        DbgPrint(c"probe: ready\n".as_ptr());
        STATUS_SUCCESS
    }
}

unsafe extern "C" fn timer_dpc(_dpc: *mut KDPC, context: PVOID, _a1: PVOID, _a2: PVOID) {
    let ext = context.cast::<Ext>();
    // SAFETY: the context is the device extension, live while the device is.
    unsafe {
        DbgPrint(c"probe: dpc\n".as_ptr());
        KeSetEvent(addr_of_mut!((*ext).done), 0, 0);
    }
}

unsafe fn complete(irp: *mut IRP, status: NTSTATUS, information: u64) -> NTSTATUS {
    // SAFETY: the caller owns `irp`.
    unsafe {
        (*irp).IoStatus.__bindgen_anon_1.Status = status;
        (*irp).IoStatus.Information = information;
        IofCompleteRequest(irp, 0);
    }
    status
}

unsafe extern "C" fn create_close(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: a dispatch routine owns its IRP.
    unsafe { complete(irp, STATUS_SUCCESS, 0) }
}

unsafe extern "C" fn device_control(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: a dispatch routine owns its IRP and may use its device's extension; the stack
    // location and system buffer are the I/O manager's METHOD_BUFFERED ones.
    unsafe {
        let sl = (*irp)
            .Tail
            .Overlay
            .__bindgen_anon_2
            .__bindgen_anon_1
            .CurrentStackLocation;
        let p = &(*sl).Parameters.DeviceIoControl;
        let (code, out_len) = (p.IoControlCode, p.OutputBufferLength);
        let ext = (*device).DeviceExtension.cast::<Ext>();
        match code {
            IOCTL_PING => {
                if out_len < 4 {
                    return complete(irp, STATUS_BUFFER_TOO_SMALL, 0);
                }
                let buf = (*irp).AssociatedIrp.SystemBuffer.cast::<u8>();
                buf.copy_from_nonoverlapping(b"pong".as_ptr(), 4);
                complete(irp, STATUS_SUCCESS, 4)
            }
            IOCTL_TIMER => {
                KeInitializeEvent(addr_of_mut!((*ext).done), 0, 0);
                let due = LARGE_INTEGER {
                    QuadPart: -100_000, // 10 ms, relative
                };
                KeSetTimer(addr_of_mut!((*ext).timer), due, addr_of_mut!((*ext).dpc));
                let _ =
                    KeWaitForSingleObject(addr_of_mut!((*ext).done).cast(), 0, 0, 0, null_mut());
                DbgPrint(c"probe: timer done\n".as_ptr());
                complete(irp, STATUS_SUCCESS, 0)
            }
            IOCTL_BREAK => {
                DbgBreakPoint();
                complete(irp, STATUS_SUCCESS, 0)
            }
            IOCTL_BUGCHECK => KeBugCheckEx(0xE2, 0xDEAD, 1, 2, 3),
            _ => complete(irp, STATUS_INVALID_DEVICE_REQUEST, 0),
        }
    }
}

unsafe extern "C" fn unload(driver: *mut DRIVER_OBJECT) {
    // SAFETY: DriverUnload's contract: no request in progress; the device and link are ours.
    unsafe {
        let mut link = counted(&LINK_NAME);
        let _ = IoDeleteSymbolicLink(&mut link);
        IoDeleteDevice((*driver).DeviceObject);
        DbgPrint(c"probe: unload\n".as_ptr());
    }
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: a Rust kernel driver's panic ends the machine, as it would on Windows.
    unsafe { KeBugCheckEx(0xE2, 0x5041_4E43, 0, 0, 0) }
}
