//! The pool allocators that images may import and ntsim's pool ([`crate::pool`]) does not
//! offer under that name. Blocks are charged to the driver whose code runs, as every block is
//! (the I/O manager's leak report at unload lists them).

use crate::ntdef::PVOID;

/// `POOL_QUOTA_FAIL_INSTEAD_OF_RAISE`: ExAllocatePoolWithQuotaTag returns NULL on failure
/// instead of raising an exception.
pub const POOL_QUOTA_FAIL_INSTEAD_OF_RAISE: u32 = 8;
/// The tag `ExAllocatePool` uses: `'None'`.
pub const TAG_NONE: u32 = u32::from_le_bytes(*b"None");

/// `ExAllocatePoolWithQuotaTag`: as ExAllocatePoolWithTag (ntsim charges no quota). On
/// Windows a failure raises an exception unless `POOL_QUOTA_FAIL_INSTEAD_OF_RAISE` is given;
/// ntsim cannot raise into an image, so it always returns NULL.
///
/// IRQL: <= APC_LEVEL on Windows (ntsim checks <= DISPATCH_LEVEL).
pub fn ExAllocatePoolWithQuotaTag(pool_type: u32, size: usize, tag: u32) -> PVOID {
    crate::pool::ExAllocatePoolWithTag(pool_type & !POOL_QUOTA_FAIL_INSTEAD_OF_RAISE, size, tag)
}

/// `ExAllocatePool` (deprecated): tag `'None'`.
///
/// IRQL: <= DISPATCH_LEVEL. Returns NULL on failure.
pub fn ExAllocatePool(pool_type: u32, size: usize) -> PVOID {
    crate::pool::ExAllocatePoolWithTag(pool_type, size, TAG_NONE)
}
