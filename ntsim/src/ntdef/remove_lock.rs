//! `IO_REMOVE_LOCK` (free-build layout: no debug tag tracking block).

use core::mem::size_of;

use super::basic::BOOLEAN;
use super::dispatcher::KEVENT;

/// The state shared by free and checked builds: `IoCount` starts at 1 (the bias), `Removed` is set
/// by `IoReleaseRemoveLockAndWait`, which waits on `RemoveEvent` until the count drains to 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_REMOVE_LOCK_COMMON_BLOCK {
    pub Removed: BOOLEAN,
    pub Reserved: [BOOLEAN; 3],
    pub IoCount: i32,
    pub RemoveEvent: KEVENT,
}
const _: () = assert!(size_of::<IO_REMOVE_LOCK_COMMON_BLOCK>() == 32);

/// A remove lock as laid out by a free (release) build of a driver.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_REMOVE_LOCK {
    pub Common: IO_REMOVE_LOCK_COMMON_BLOCK,
}
const _: () = assert!(size_of::<IO_REMOVE_LOCK>() == 32);

impl_zeroed!(IO_REMOVE_LOCK_COMMON_BLOCK, IO_REMOVE_LOCK);
