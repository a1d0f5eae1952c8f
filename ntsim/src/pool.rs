//! Pool allocations, with leak tracking and injected failures.

use std::alloc::Layout;
use std::collections::BTreeMap;

use crate::machine::{Cx, World};
use crate::ntdef::{DISPATCH_LEVEL, PVOID};
use crate::verifier::Rule;

/// `POOL_FLAG_NON_PAGED` and friends are accepted but not distinguished: all pool is resident.
pub const POOL_FLAG_NON_PAGED: u64 = 0x40;
/// `POOL_FLAG_UNINITIALIZED`: ExAllocatePool2 zeroes unless this flag is given.
pub const POOL_FLAG_UNINITIALIZED: u64 = 0x2;
/// `POOL_TYPE` NonPagedPool.
pub const NonPagedPool: u32 = 0;
/// `POOL_TYPE` NonPagedPoolNx.
pub const NonPagedPoolNx: u32 = 512;

/// Pool allocations are 16-byte aligned on x64.
const POOL_ALIGN: usize = 16;
/// Fill for memory ExAllocatePoolWithTag does not zero, so code that assumes zeroing fails.
const UNINITIALIZED_FILL: u8 = 0xA5;

#[derive(Debug, Clone)]
pub(crate) struct Alloc {
    pub(crate) size: usize,
    #[allow(dead_code, reason = "shown by leak reports")]
    pub(crate) tag: u32,
}

/// Live allocations and failure injection.
#[derive(Debug, Default)]
pub(crate) struct PoolTable {
    pub(crate) live: BTreeMap<usize, Alloc>,
    /// Fail this many upcoming allocations (of `fail_tag`, if set).
    fail_count: u32,
    fail_tag: Option<u32>,
}

impl World {
    /// Allocates pool for `size` bytes, or NULL on an injected failure.
    pub(crate) fn pool_alloc(&mut self, size: usize, tag: u32, zero: bool) -> PVOID {
        if self.pool.fail_count > 0 && self.pool.fail_tag.is_none_or(|t| t == tag) {
            self.pool.fail_count -= 1;
            return std::ptr::null_mut();
        }
        let layout = Layout::from_size_align(size.max(1), POOL_ALIGN).expect("valid pool size");
        // SAFETY: the layout has non-zero size.
        let p = unsafe { std::alloc::alloc(layout) };
        if p.is_null() {
            return std::ptr::null_mut();
        }
        // SAFETY: `p` is a fresh allocation of `layout.size()` bytes.
        unsafe { p.write_bytes(if zero { 0 } else { UNINITIALIZED_FILL }, layout.size()) };
        self.pool.live.insert(p as usize, Alloc { size, tag });
        crate::iomgr::owner::pool_allocated(self, p as usize, size, tag);
        p.cast()
    }

    /// Frees pool; rules C24 (active timer/DPC inside) and BadPool (not a live block).
    /// `freer` is the actor freeing: a DPC routine may free its own KDPC as its last act (the
    /// kernel does not touch a DPC once its routine has returned), so its own running
    /// invocation does not count (spec C24 is about *other* users of the memory).
    pub(crate) fn pool_free(&mut self, p: PVOID, freer: crate::sched::ActorId, who: String) {
        let addr = p as usize;
        let Some(a) = self.pool.live.get(&addr).cloned() else {
            self.report(
                Rule::BadPool,
                format!(
                    "ExFreePool({addr:#x}): not a live pool block (double free or bad pointer)"
                ),
                vec![who],
            );
            return;
        };
        if let Some(t) = self.timers.inserted_in(addr, a.size) {
            self.report(
                Rule::FreeActiveTimer,
                format!("pool block {addr:#x} freed while the timer at {t:#x} in it is inserted"),
                vec![who],
            );
            return;
        }
        if let Some(d) = self.active_dpc_in_except(addr, a.size, Some(freer)) {
            self.report(
                Rule::FreeActiveTimer,
                format!(
                    "pool block {addr:#x} freed while the DPC at {d:#x} in it is queued or running"
                ),
                vec![who],
            );
            return;
        }
        self.pool.live.remove(&addr);
        let layout = Layout::from_size_align(a.size.max(1), POOL_ALIGN).expect("valid pool size");
        // SAFETY: `addr` was allocated by `pool_alloc` with this layout and is freed once.
        unsafe { std::alloc::dealloc(addr as *mut u8, layout) };
    }
}

/// Allocates `size` bytes of pool tagged `tag`, zeroed unless POOL_FLAG_UNINITIALIZED.
///
/// IRQL: <= DISPATCH_LEVEL. Returns NULL on failure (injected with [`fail_allocations`]).
#[allow(non_snake_case)]
pub fn ExAllocatePool2(flags: u64, size: usize, tag: u32) -> PVOID {
    let cx = Cx::get();
    cx.check_irql_at_most("ExAllocatePool2", DISPATCH_LEVEL);
    cx.lock()
        .pool_alloc(size, tag, flags & POOL_FLAG_UNINITIALIZED == 0)
}

/// Allocates `size` bytes of (uninitialized) pool tagged `tag`.
///
/// IRQL: <= DISPATCH_LEVEL. Returns NULL on failure.
#[allow(non_snake_case)]
pub fn ExAllocatePoolWithTag(_pool_type: u32, size: usize, tag: u32) -> PVOID {
    let cx = Cx::get();
    cx.check_irql_at_most("ExAllocatePoolWithTag", DISPATCH_LEVEL);
    cx.lock().pool_alloc(size, tag, false)
}

/// Frees pool allocated by the Ex allocation routines.
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// `p` must be a live pool block that nothing uses any more.
#[allow(non_snake_case)]
pub unsafe fn ExFreePoolWithTag(p: PVOID, _tag: u32) {
    let cx = Cx::get();
    cx.check_irql_at_most("ExFreePool", DISPATCH_LEVEL);
    let mut g = cx.lock();
    let who = g.who(cx.me);
    g.pool_free(p, cx.me, who);
    // BadPool and C24 are bugchecks: the caller does not get control back.
    drop(cx.stop_if_halted(g));
}

/// Frees pool.
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// As [`ExFreePoolWithTag`].
#[allow(non_snake_case)]
pub unsafe fn ExFreePool(p: PVOID) {
    // SAFETY: forwarded caller contract.
    unsafe { ExFreePoolWithTag(p, 0) };
}

/// Fault injection: the next `count` pool allocations (of `tag` only, if given) fail.
pub fn fail_allocations(count: u32, tag: Option<u32>) {
    let cx = Cx::get();
    let mut g = cx.lock();
    g.pool.fail_count = count;
    g.pool.fail_tag = tag;
}

/// The number of live pool blocks and their total size.
pub fn pool_usage() -> (usize, usize) {
    let cx = Cx::get();
    let g = cx.lock();
    (
        g.pool.live.len(),
        g.pool.live.values().map(|a| a.size).sum(),
    )
}
