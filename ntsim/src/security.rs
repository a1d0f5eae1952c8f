//! Security descriptors for device objects: the few `Rtl` routines that build an absolute
//! security descriptor with a DACL of access-allowed ACEs, `ObSetSecurityObjectByPointer` for
//! device objects, and the `SeExports` table of well-known SIDs.
//!
//! This is what a driver does instead of `IoCreateDeviceSecure` (a routine of the static
//! library wdmsec.lib, not of ntoskrnl): `IoCreateDevice`, then its DACL built from
//! `SeExports`' SIDs and applied with `ObSetSecurityObjectByPointer`. ntsim checks nothing about
//! access; it records the DACL applied to a device as an SDDL string, the same form
//! `IoCreateDeviceSecure` records, so that [`crate::driver::device_security`] reads the same for
//! both ways of securing a device.
//!
//! The structures are the real ones, in the caller's memory: SID (revision, sub-authority count,
//! 6-byte identifier authority, 32-bit sub-authorities), ACL (8-byte header: revision, size,
//! ACE count), ACCESS_ALLOWED_ACE (type, flags, size, mask, SID), absolute SECURITY_DESCRIPTOR
//! (revision, control, owner, group, SACL, DACL: 40 bytes on x64).

use std::fmt::Write as _;
use std::sync::OnceLock;

use crate::machine::Cx;
use crate::ntdef::*;

/// `STATUS_ALLOTTED_SPACE_EXCEEDED`: the ACL has no room for the ACE.
pub const STATUS_ALLOTTED_SPACE_EXCEEDED: NTSTATUS = 0xC000_0099_u32 as NTSTATUS;
/// `STATUS_UNKNOWN_REVISION`: a revision the routine does not know.
pub const STATUS_UNKNOWN_REVISION: NTSTATUS = 0xC000_0058_u32 as NTSTATUS;
/// `STATUS_INVALID_SECURITY_DESCR`: not an absolute security descriptor of revision 1.
pub const STATUS_INVALID_SECURITY_DESCR: NTSTATUS = 0xC000_0079_u32 as NTSTATUS;

/// `SECURITY_DESCRIPTOR_REVISION`.
pub const SECURITY_DESCRIPTOR_REVISION: u32 = 1;
/// `ACL_REVISION`.
pub const ACL_REVISION: u32 = 2;
/// `DACL_SECURITY_INFORMATION`.
pub const DACL_SECURITY_INFORMATION: u32 = 0x4;
/// `SE_DACL_PRESENT`.
pub const SE_DACL_PRESENT: u16 = 0x0004;
/// `SE_DACL_DEFAULTED`.
pub const SE_DACL_DEFAULTED: u16 = 0x0008;
/// `SE_DACL_PROTECTED`.
pub const SE_DACL_PROTECTED: u16 = 0x1000;
/// `SE_SELF_RELATIVE`.
pub const SE_SELF_RELATIVE: u16 = 0x8000;

/// Size of an absolute `SECURITY_DESCRIPTOR` on x64, and the offset of its `Dacl`.
const SD_SIZE: usize = 40;
const SD_DACL: usize = 32;
/// Size of an ACL header and of an ACE without its SID.
const ACL_HEADER: usize = 8;
const ACE_HEADER_AND_MASK: usize = 8;

/// Offsets in `SE_EXPORTS` of the SIDs ntsim provides (x64; the table only ever grew).
const SE_WORLD_SID: usize = 192;
const SE_LOCAL_SYSTEM_SID: usize = 264;
const SE_ALIAS_ADMINS_SID: usize = 272;
/// Size of `SE_EXPORTS` (the WDK 10 layout); ntsim leaves the other members NULL.
const SE_EXPORTS_SIZE: usize = 520;

/// Reads a `T` at `p + offset` (unaligned).
///
/// # Safety
/// The bytes are valid for reads.
unsafe fn rd<T: Copy>(p: *const u8, offset: usize) -> T {
    // SAFETY: caller contract.
    unsafe { p.wrapping_add(offset).cast::<T>().read_unaligned() }
}

/// Writes a `T` at `p + offset` (unaligned).
///
/// # Safety
/// The bytes are valid for writes.
unsafe fn wr<T: Copy>(p: *mut u8, offset: usize, value: T) {
    // SAFETY: caller contract.
    unsafe { p.wrapping_add(offset).cast::<T>().write_unaligned(value) }
}

/// A well-known SID in its binary form: revision 1, count, authority (big-endian 48 bits),
/// sub-authorities.
fn sid_bytes(authority: u8, subs: &[u32]) -> Vec<u8> {
    let mut v = vec![1, subs.len() as u8, 0, 0, 0, 0, 0, authority];
    for s in subs {
        v.extend_from_slice(&s.to_le_bytes());
    }
    v
}

/// The `SE_EXPORTS` table (leaked, like the kernel's) with `S-1-1-0`, `S-1-5-18` and
/// `S-1-5-32-544` at their members; what the `SeExports` data export points at.
pub fn se_exports() -> PVOID {
    static TABLE: OnceLock<usize> = OnceLock::new();
    *TABLE.get_or_init(|| {
        let table: &'static mut [usize] = Box::leak(vec![0usize; SE_EXPORTS_SIZE / 8].into());
        for (offset, authority, subs) in [
            (SE_WORLD_SID, 1, &[0][..]),
            (SE_LOCAL_SYSTEM_SID, 5, &[18][..]),
            (SE_ALIAS_ADMINS_SID, 5, &[32, 544][..]),
        ] {
            let sid: &'static mut [u8] = Box::leak(sid_bytes(authority, subs).into());
            table[offset / 8] = sid.as_mut_ptr() as usize;
        }
        table.as_mut_ptr() as usize
    }) as PVOID
}

/// The SDDL name of a SID: `SY`, `BA`, `WD`, or its `S-1-…` form.
///
/// # Safety
/// `sid` is a valid SID.
unsafe fn sid_sddl(sid: *const u8) -> String {
    // SAFETY: caller contract.
    let len = unsafe { RtlLengthSid(sid.cast_mut().cast()) } as usize;
    // SAFETY: a valid SID is `len` bytes.
    let b = unsafe { std::slice::from_raw_parts(sid, len) };
    let authority = b[2..8].iter().fold(0u64, |a, &x| (a << 8) | u64::from(x));
    let subs: Vec<u32> = b[8..]
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    match (authority, subs.as_slice()) {
        (1, [0]) => "WD".into(),
        (5, [18]) => "SY".into(),
        (5, [32, 544]) => "BA".into(),
        _ => {
            let mut s = format!("S-{}-{authority}", b[0]);
            for sub in subs {
                let _ = write!(s, "-{sub}");
            }
            s
        }
    }
}

/// The SDDL rights of an access mask (file-object rights as `GA`/`GR`/`GW` combinations).
fn rights_sddl(mask: u32) -> String {
    match mask {
        FILE_ALL_ACCESS => "GA".into(),
        m if m == FILE_GENERIC_READ | FILE_GENERIC_WRITE => "GRGW".into(),
        FILE_GENERIC_READ => "GR".into(),
        FILE_GENERIC_WRITE => "GW".into(),
        m => format!("0x{m:x}"),
    }
}

/// `RtlLengthSid`: the size of a SID in bytes (8 + 4 per sub-authority).
///
/// IRQL: any.
///
/// # Safety
/// `sid` is a valid SID.
#[allow(non_snake_case)]
pub unsafe fn RtlLengthSid(sid: PVOID) -> ULONG {
    // SAFETY: caller contract: byte 1 is the sub-authority count.
    let count: u8 = unsafe { rd(sid.cast(), 1) };
    8 + 4 * ULONG::from(count)
}

/// `RtlCreateAcl`: an empty ACL of `length` bytes. Returns STATUS_SUCCESS,
/// STATUS_BUFFER_TOO_SMALL (shorter than the header), STATUS_INVALID_PARAMETER (revision not
/// 2 to 4, or over 64 KiB).
///
/// IRQL: any.
///
/// # Safety
/// `acl` is valid for writes of `length` bytes, 4-aligned.
#[allow(non_snake_case)]
pub unsafe fn RtlCreateAcl(acl: PVOID, length: ULONG, revision: ULONG) -> NTSTATUS {
    if (length as usize) < ACL_HEADER {
        return STATUS_BUFFER_TOO_SMALL;
    }
    if !(2..=4).contains(&revision) || length > 0xFFFF {
        return STATUS_INVALID_PARAMETER;
    }
    let p = acl.cast::<u8>();
    // SAFETY: caller contract: the header's 8 bytes are writable.
    unsafe { wr(p, 0, [revision as u8, 0]) };
    // SAFETY: as above.
    unsafe { wr(p, 2, length as u16) };
    // SAFETY: as above.
    unsafe { wr(p, 4, 0u16) };
    // SAFETY: as above.
    unsafe { wr(p, 6, 0u16) };
    STATUS_SUCCESS
}

/// `RtlAddAccessAllowedAce`: appends an ACCESS_ALLOWED_ACE (`mask`, `sid`). Returns
/// STATUS_SUCCESS, STATUS_ALLOTTED_SPACE_EXCEEDED (no room), STATUS_INVALID_PARAMETER (bad ACE
/// revision).
///
/// IRQL: any.
///
/// # Safety
/// `acl` is an ACL made by [`RtlCreateAcl`] (valid for its size); `sid`
/// is a valid SID.
#[allow(non_snake_case)]
pub unsafe fn RtlAddAccessAllowedAce(
    acl: PVOID,
    revision: ULONG,
    mask: ULONG,
    sid: PVOID,
) -> NTSTATUS {
    if !(2..=4).contains(&revision) {
        return STATUS_INVALID_PARAMETER;
    }
    let p = acl.cast::<u8>();
    // SAFETY: caller contract: a valid ACL header.
    let size = usize::from(unsafe { rd::<u16>(p, 2) });
    // SAFETY: as above.
    let count: u16 = unsafe { rd(p, 4) };
    // The end of the ACEs already there.
    let mut end = ACL_HEADER;
    for _ in 0..count {
        // SAFETY: each ACE's size is at bytes 2..4 of its header, inside the ACL.
        end += usize::from(unsafe { rd::<u16>(p, end + 2) });
    }
    // SAFETY: caller contract.
    let sid_len = unsafe { RtlLengthSid(sid) } as usize;
    let ace_size = ACE_HEADER_AND_MASK + sid_len;
    if end + ace_size > size {
        return STATUS_ALLOTTED_SPACE_EXCEEDED;
    }
    // ACCESS_ALLOWED_ACE_TYPE, no inheritance flags, the size, the mask, the SID.
    // SAFETY: `end + ace_size <= size`: inside the caller's ACL.
    unsafe { wr(p, end, [0u8, 0]) };
    // SAFETY: as above.
    unsafe { wr(p, end + 2, ace_size as u16) };
    // SAFETY: as above.
    unsafe { wr(p, end + 4, mask) };
    // SAFETY: as above; `sid` is `sid_len` bytes.
    unsafe { std::ptr::copy_nonoverlapping(sid.cast::<u8>(), p.wrapping_add(end + 8), sid_len) };
    // SAFETY: the header is inside the ACL.
    unsafe { wr(p, 4, count + 1) };
    STATUS_SUCCESS
}

/// `RtlCreateSecurityDescriptor`: an empty absolute descriptor (no owner, group, SACL, DACL).
/// Returns STATUS_SUCCESS or STATUS_UNKNOWN_REVISION.
///
/// IRQL: any.
///
/// # Safety
/// `sd` is valid for writes of 40 bytes.
#[allow(non_snake_case)]
pub unsafe fn RtlCreateSecurityDescriptor(sd: PVOID, revision: ULONG) -> NTSTATUS {
    if revision != SECURITY_DESCRIPTOR_REVISION {
        return STATUS_UNKNOWN_REVISION;
    }
    // SAFETY: caller contract.
    unsafe { std::ptr::write_bytes(sd.cast::<u8>(), 0, SD_SIZE) };
    // SAFETY: as above.
    unsafe { wr(sd.cast(), 0, 1u8) };
    STATUS_SUCCESS
}

/// `RtlSetDaclSecurityDescriptor`: sets (or, with `present` FALSE, clears) the DACL of an
/// absolute descriptor. Returns STATUS_SUCCESS, STATUS_UNKNOWN_REVISION or
/// STATUS_INVALID_SECURITY_DESCR (self-relative).
///
/// IRQL: any.
///
/// # Safety
/// `sd` is a descriptor made by [`RtlCreateSecurityDescriptor`]; `dacl`
/// stays valid while the descriptor is used.
#[allow(non_snake_case)]
pub unsafe fn RtlSetDaclSecurityDescriptor(
    sd: PVOID,
    present: BOOLEAN,
    dacl: PVOID,
    defaulted: BOOLEAN,
) -> NTSTATUS {
    let p = sd.cast::<u8>();
    // SAFETY: caller contract: a 40-byte descriptor.
    let revision: u8 = unsafe { rd(p, 0) };
    // SAFETY: as above.
    let control: u16 = unsafe { rd(p, 2) };
    if u32::from(revision) != SECURITY_DESCRIPTOR_REVISION {
        return STATUS_UNKNOWN_REVISION;
    }
    if control & SE_SELF_RELATIVE != 0 {
        return STATUS_INVALID_SECURITY_DESCR;
    }
    let mut control = control & !(SE_DACL_PRESENT | SE_DACL_DEFAULTED);
    let mut pointer = std::ptr::null_mut();
    if present != 0 {
        control |= SE_DACL_PRESENT;
        if defaulted != 0 {
            control |= SE_DACL_DEFAULTED;
        }
        pointer = dacl;
    }
    // SAFETY: as above.
    unsafe { wr(p, 2, control) };
    // SAFETY: as above.
    unsafe { wr(p, SD_DACL, pointer) };
    STATUS_SUCCESS
}

/// The SDDL of an absolute descriptor's DACL (`D:` with `P` if protected), or `None` if it has
/// no DACL.
///
/// # Safety
/// `sd` is a valid absolute descriptor whose DACL (if any) is a valid ACL.
unsafe fn dacl_sddl(sd: PVOID) -> Option<String> {
    let p = sd.cast::<u8>();
    // SAFETY: caller contract.
    let control: u16 = unsafe { rd(p, 2) };
    // SAFETY: as above.
    let dacl: *mut u8 = unsafe { rd(p, SD_DACL) };
    if control & SE_DACL_PRESENT == 0 || dacl.is_null() {
        return None;
    }
    let mut s = String::from("D:");
    if control & SE_DACL_PROTECTED != 0 {
        s.push('P');
    }
    // SAFETY: a valid ACL header.
    let count: u16 = unsafe { rd(dacl, 4) };
    let mut at = ACL_HEADER;
    for _ in 0..count {
        // SAFETY: each ACE lies inside the valid ACL.
        let kind: u8 = unsafe { rd(dacl, at) };
        // SAFETY: as above.
        let size = usize::from(unsafe { rd::<u16>(dacl, at + 2) });
        // SAFETY: as above.
        let mask: u32 = unsafe { rd(dacl, at + 4) };
        let kind = if kind == 0 { "A" } else { "D" };
        // SAFETY: the ACE's SID follows its mask.
        let sid = unsafe { sid_sddl(dacl.wrapping_add(at + 8)) };
        let _ = write!(s, "({kind};;{};;;{sid})", rights_sddl(mask));
        at += size;
    }
    Some(s)
}

/// `ObSetSecurityObjectByPointer`: applies the DACL part of `sd` (with
/// `DACL_SECURITY_INFORMATION`) to a device object; ntsim records it as the device's SDDL
/// (see the module docs). Returns STATUS_SUCCESS, STATUS_OBJECT_TYPE_MISMATCH (not a live
/// device object: the only objects ntsim secures), STATUS_INVALID_SECURITY_DESCR (no DACL
/// while one is being set).
///
/// IRQL: PASSIVE_LEVEL.
///
/// # Safety
/// `sd` is a valid absolute security descriptor.
#[allow(non_snake_case)]
pub unsafe fn ObSetSecurityObjectByPointer(
    object: PVOID,
    information: ULONG,
    sd: PVOID,
) -> NTSTATUS {
    let sddl = if information & DACL_SECURITY_INFORMATION != 0 {
        // SAFETY: caller contract.
        match unsafe { dacl_sddl(sd) } {
            Some(s) => Some(s),
            None => return STATUS_INVALID_SECURITY_DESCR,
        }
    } else {
        None
    };
    let cx = Cx::get();
    let mut g = cx.lock();
    match g.drivers.devices.get_mut(&(object as usize)) {
        Some(dev) if !dev.deleted => {
            if let Some(s) = sddl {
                dev.security = Some(s);
            }
            STATUS_SUCCESS
        }
        _ => STATUS_OBJECT_TYPE_MISMATCH,
    }
}
