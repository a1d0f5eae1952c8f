//! A device's DACL without wdmsec.lib: IoCreateDevice, then a protected DACL of access-allowed
//! ACEs for `SeExports`' well-known SIDs, applied with ObSetSecurityObjectByPointer. ntsim
//! records it as the SDDL that IoCreateDeviceSecure would have been given.

use ntsim::driver::{IoCreateDevice, IoDeleteDevice, device_security, load_driver};
use ntsim::ntdef::*;
use ntsim::security::*;
use ntsim::{Config, Kernel};

unsafe extern "system" fn driver_entry(
    _drv: *mut DRIVER_OBJECT,
    _reg: PUNICODE_STRING,
) -> NTSTATUS {
    STATUS_SUCCESS
}

/// The SID at `offset` in the SE_EXPORTS table.
fn sid(offset: usize) -> PVOID {
    let table = se_exports().cast::<PVOID>();
    // SAFETY: the table is 520 bytes of pointers.
    unsafe { table.wrapping_add(offset / 8).read() }
}

const WORLD: usize = 192;
const LOCAL_SYSTEM: usize = 264;
const ADMINS: usize = 272;

/// An 8-aligned buffer for an ACL.
#[repr(C, align(8))]
struct Buf([u8; 128]);

/// Builds the DACL of `aces` in `buf` and a protected absolute descriptor over it in `sd`.
fn descriptor(buf: &mut Buf, sd: &mut [u64; 5], aces: &[(usize, u32)]) -> NTSTATUS {
    let acl: PVOID = buf.0.as_mut_ptr().cast();
    let mut size = 8;
    for &(s, _) in aces {
        // SAFETY: a well-known SID.
        size += 8 + unsafe { RtlLengthSid(sid(s)) };
    }
    // SAFETY: `buf` holds 128 writable bytes.
    let st = unsafe { RtlCreateAcl(acl, size, ACL_REVISION) };
    assert_eq!(st, STATUS_SUCCESS);
    for &(s, mask) in aces {
        // SAFETY: an ACL made above, a valid SID.
        let st = unsafe { RtlAddAccessAllowedAce(acl, ACL_REVISION, mask, sid(s)) };
        if st != STATUS_SUCCESS {
            return st;
        }
    }
    let psd: PVOID = sd.as_mut_ptr().cast();
    // SAFETY: 40 writable bytes.
    let st = unsafe { RtlCreateSecurityDescriptor(psd, 1) };
    assert_eq!(st, STATUS_SUCCESS);
    // SAFETY: a descriptor made above; the ACL outlives its use.
    let st = unsafe { RtlSetDaclSecurityDescriptor(psd, 1, acl, 0) };
    assert_eq!(st, STATUS_SUCCESS);
    // Control (bytes 2..4 of the descriptor) |= SE_DACL_PROTECTED.
    sd[0] |= u64::from(SE_DACL_PROTECTED) << 16;
    STATUS_SUCCESS
}

fn new_device() -> PDEVICE_OBJECT {
    let drv = load_driver("secured", Some(driver_entry)).expect("DriverEntry succeeds");
    let mut dev: PDEVICE_OBJECT = std::ptr::null_mut();
    // SAFETY: a loaded driver; an unnamed device without extension.
    let st = unsafe { IoCreateDevice(drv, 0, std::ptr::null_mut(), 0x22, 0x100, 0, &mut dev) };
    assert_eq!(st, STATUS_SUCCESS);
    dev
}

#[test]
fn the_dacl_set_by_pointer_is_recorded_as_the_equivalent_sddl() {
    let out = Kernel::new(Config::default()).run(|| {
        let dev = new_device();
        assert_eq!(device_security(dev), None);
        let mut buf = Buf([0; 128]);
        let mut sd = [0u64; 5];
        let aces = [
            (LOCAL_SYSTEM, FILE_ALL_ACCESS),
            (ADMINS, FILE_ALL_ACCESS),
            (WORLD, FILE_GENERIC_READ | FILE_GENERIC_WRITE),
        ];
        assert_eq!(descriptor(&mut buf, &mut sd, &aces), STATUS_SUCCESS);
        // SAFETY: a live device, a valid descriptor.
        let st = unsafe {
            ObSetSecurityObjectByPointer(
                dev.cast(),
                DACL_SECURITY_INFORMATION,
                sd.as_mut_ptr().cast(),
            )
        };
        assert_eq!(st, STATUS_SUCCESS);
        assert_eq!(
            device_security(dev).as_deref(),
            Some("D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GRGW;;;WD)")
        );
        // SAFETY: our device, unused.
        unsafe { IoDeleteDevice(dev) };
    });
    out.expect_clean();
}

#[test]
fn well_known_sids_have_their_lengths() {
    let out = Kernel::new(Config::default()).run(|| {
        let lengths = [WORLD, LOCAL_SYSTEM, ADMINS].map(|s| {
            // SAFETY: a well-known SID.
            unsafe { RtlLengthSid(sid(s)) }
        });
        assert_eq!(lengths, [12, 12, 16]);
    });
    out.expect_clean();
}

#[test]
fn an_ace_that_does_not_fit_is_refused_with_allotted_space_exceeded() {
    let out = Kernel::new(Config::default()).run(|| {
        let mut buf = Buf([0; 128]);
        let acl: PVOID = buf.0.as_mut_ptr().cast();
        // Room for the header and one 20-byte ACE (SY), not for a second one.
        // SAFETY: 128 writable bytes.
        let st = unsafe { RtlCreateAcl(acl, 28, ACL_REVISION) };
        assert_eq!(st, STATUS_SUCCESS);
        // SAFETY: the ACL above, valid SIDs.
        let first = unsafe {
            RtlAddAccessAllowedAce(acl, ACL_REVISION, FILE_ALL_ACCESS, sid(LOCAL_SYSTEM))
        };
        assert_eq!(first, STATUS_SUCCESS);
        // SAFETY: as above.
        let second =
            unsafe { RtlAddAccessAllowedAce(acl, ACL_REVISION, FILE_ALL_ACCESS, sid(ADMINS)) };
        assert_eq!(second, STATUS_ALLOTTED_SPACE_EXCEEDED);
    });
    out.expect_clean();
}

#[test]
fn bad_sizes_and_revisions_are_refused() {
    let out = Kernel::new(Config::default()).run(|| {
        let mut buf = Buf([0; 128]);
        let acl: PVOID = buf.0.as_mut_ptr().cast();
        // SAFETY: 128 writable bytes.
        let st = unsafe { RtlCreateAcl(acl, 4, ACL_REVISION) };
        assert_eq!(st, STATUS_BUFFER_TOO_SMALL);
        // SAFETY: as above.
        let st = unsafe { RtlCreateAcl(acl, 64, 1) };
        assert_eq!(st, STATUS_INVALID_PARAMETER);
        // SAFETY: as above.
        let st = unsafe { RtlCreateSecurityDescriptor(acl, 2) };
        assert_eq!(st, STATUS_UNKNOWN_REVISION);
    });
    out.expect_clean();
}

#[test]
fn only_live_device_objects_can_be_secured() {
    let out = Kernel::new(Config::default()).run(|| {
        let mut buf = Buf([0; 128]);
        let mut sd = [0u64; 5];
        assert_eq!(
            descriptor(&mut buf, &mut sd, &[(LOCAL_SYSTEM, FILE_ALL_ACCESS)]),
            STATUS_SUCCESS
        );
        let mut not_a_device = [0u64; 8];
        // SAFETY: a valid descriptor; the object is only looked up.
        let st = unsafe {
            ObSetSecurityObjectByPointer(
                not_a_device.as_mut_ptr().cast(),
                DACL_SECURITY_INFORMATION,
                sd.as_mut_ptr().cast(),
            )
        };
        assert_eq!(st, STATUS_OBJECT_TYPE_MISMATCH);
        // A descriptor without a DACL cannot set one.
        let dev = new_device();
        let mut empty = [0u64; 5];
        // SAFETY: 40 writable bytes.
        let st = unsafe { RtlCreateSecurityDescriptor(empty.as_mut_ptr().cast(), 1) };
        assert_eq!(st, STATUS_SUCCESS);
        // SAFETY: a live device, a valid descriptor.
        let st = unsafe {
            ObSetSecurityObjectByPointer(
                dev.cast(),
                DACL_SECURITY_INFORMATION,
                empty.as_mut_ptr().cast(),
            )
        };
        assert_eq!(st, STATUS_INVALID_SECURITY_DESCR);
        // SAFETY: our device, unused.
        unsafe { IoDeleteDevice(dev) };
    });
    out.expect_clean();
}
