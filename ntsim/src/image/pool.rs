//! The pool routines as images call them: ntsim's pool ([`crate::pool`]), with every block
//! charged to the image whose code allocated it, so that unloading the driver reports what it
//! left behind.

use crate::ntdef::PVOID;

use super::registry;

/// `POOL_QUOTA_FAIL_INSTEAD_OF_RAISE`: ExAllocatePoolWithQuotaTag returns NULL on failure
/// instead of raising an exception.
pub const POOL_QUOTA_FAIL_INSTEAD_OF_RAISE: u32 = 8;
/// The tag `ExAllocatePool` uses: `'None'`.
pub const TAG_NONE: u32 = u32::from_le_bytes(*b"None");

fn charge(p: PVOID) -> PVOID {
    if !p.is_null()
        && let Some(image) = registry::current()
    {
        image
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(p as usize);
    }
    p
}

/// `ExAllocatePool2`, charged to the calling image.
///
/// IRQL: <= DISPATCH_LEVEL. Returns NULL on failure.
pub fn ExAllocatePool2(flags: u64, size: usize, tag: u32) -> PVOID {
    charge(crate::pool::ExAllocatePool2(flags, size, tag))
}

/// `ExAllocatePoolWithTag`, charged to the calling image.
///
/// IRQL: <= DISPATCH_LEVEL. Returns NULL on failure.
pub fn ExAllocatePoolWithTag(pool_type: u32, size: usize, tag: u32) -> PVOID {
    charge(crate::pool::ExAllocatePoolWithTag(pool_type, size, tag))
}

/// `ExAllocatePoolWithQuotaTag`: as ExAllocatePoolWithTag (ntsim charges no quota). On
/// Windows a failure raises an exception unless `POOL_QUOTA_FAIL_INSTEAD_OF_RAISE` is given;
/// ntsim cannot raise into an image, so it always returns NULL.
///
/// IRQL: <= APC_LEVEL on Windows (ntsim checks <= DISPATCH_LEVEL).
pub fn ExAllocatePoolWithQuotaTag(pool_type: u32, size: usize, tag: u32) -> PVOID {
    ExAllocatePoolWithTag(pool_type & !POOL_QUOTA_FAIL_INSTEAD_OF_RAISE, size, tag)
}

/// `ExAllocatePool` (deprecated): tag `'None'`.
///
/// IRQL: <= DISPATCH_LEVEL. Returns NULL on failure.
pub fn ExAllocatePool(pool_type: u32, size: usize) -> PVOID {
    ExAllocatePoolWithTag(pool_type, size, TAG_NONE)
}

fn discharge(p: PVOID) {
    if let Some(image) = registry::current() {
        image
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(p as usize));
    }
}

/// `ExFreePoolWithTag`.
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// As [`crate::pool::ExFreePoolWithTag`].
pub unsafe fn ExFreePoolWithTag(p: PVOID, tag: u32) {
    discharge(p);
    // SAFETY: forwarded caller contract.
    unsafe { crate::pool::ExFreePoolWithTag(p, tag) };
}

/// `ExFreePool`.
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// As [`crate::pool::ExFreePool`].
pub unsafe fn ExFreePool(p: PVOID) {
    discharge(p);
    // SAFETY: forwarded caller contract.
    unsafe { crate::pool::ExFreePool(p) };
}
