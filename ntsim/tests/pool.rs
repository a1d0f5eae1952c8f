//! Pool: zeroing, failure injection, the BadPool stop, and rule C24.

mod support;

use ntsim::Rule;
use ntsim::dpc::{KeInitializeDpc, KeInsertQueueDpc};
use ntsim::irql::{KeLowerIrql, KfRaiseIrql};
use ntsim::ntdef::*;
use ntsim::pool::*;
use ntsim::timer::{KeCancelTimer, KeInitializeTimer, KeSetTimer};
use support::*;

const TAG: u32 = u32::from_le_bytes(*b"Test");

fn bytes(p: PVOID, n: usize) -> Vec<u8> {
    // SAFETY: `p` is a live pool block of at least `n` bytes.
    unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n) }.to_vec()
}

fn free(p: PVOID) {
    // SAFETY: deliberately unchecked: the verifier judges the call.
    unsafe { ExFreePoolWithTag(p, TAG) };
}

#[test]
fn allocate_pool2_zeroes_unless_asked_not_to() {
    let out = run(|| {
        let z = ExAllocatePool2(POOL_FLAG_NON_PAGED, 64, TAG);
        assert!(!z.is_null());
        assert_eq!(z as usize % 16, 0, "16-byte aligned");
        assert!(bytes(z, 64).iter().all(|&b| b == 0));
        let u = ExAllocatePool2(POOL_FLAG_NON_PAGED | POOL_FLAG_UNINITIALIZED, 64, TAG);
        assert!(
            bytes(u, 64).iter().any(|&b| b != 0),
            "uninitialized is not zeroed"
        );
        let w = ExAllocatePoolWithTag(NonPagedPoolNx, 64, TAG);
        assert!(
            bytes(w, 64).iter().any(|&b| b != 0),
            "ExAllocatePoolWithTag does not zero"
        );
        assert_eq!(pool_usage(), (3, 192));
        free(z);
        free(u);
        free(w);
        pool_usage()
    });
    assert_eq!(out.expect_clean(), (0, 0));
}

#[test]
fn injected_failures_return_null_then_allocation_recovers() {
    let out = run(|| {
        fail_allocations(2, None);
        assert!(ExAllocatePool2(POOL_FLAG_NON_PAGED, 8, TAG).is_null());
        assert!(ExAllocatePoolWithTag(NonPagedPool, 8, TAG).is_null());
        let p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 8, TAG);
        assert!(!p.is_null());
        free(p);
        // Only one tag fails.
        let other = u32::from_le_bytes(*b"Othr");
        fail_allocations(1, Some(TAG));
        let q = ExAllocatePool2(POOL_FLAG_NON_PAGED, 8, other);
        assert!(!q.is_null());
        assert!(ExAllocatePool2(POOL_FLAG_NON_PAGED, 8, TAG).is_null());
        free(q);
    });
    out.expect_clean();
}

#[test]
fn double_free_is_a_bad_pool_stop() {
    let out = run(|| {
        let p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 8, TAG);
        free(p);
        free(p);
        unreachable!("BAD_POOL_CALLER");
    });
    assert_eq!(out.stop.expect("fatal stop").rule, Rule::BadPool);
    assert!(out.value.is_none());
}

#[test]
fn freeing_a_pointer_that_is_not_pool_is_a_bad_pool_stop() {
    let out = run(|| {
        let not_pool = leak(0u64);
        free(not_pool.pv());
        unreachable!("BAD_POOL_CALLER");
    });
    assert_eq!(out.stop.expect("fatal stop").rule, Rule::BadPool);
}

/// A driver context in pool with a timer and a DPC inside.
#[repr(C)]
struct Ctx {
    timer: KTIMER,
    dpc: KDPC,
}

fn timer_in(c: *mut Ctx) -> *mut KTIMER {
    c.cast::<u8>()
        .wrapping_add(std::mem::offset_of!(Ctx, timer))
        .cast()
}

fn dpc_in(c: *mut Ctx) -> *mut KDPC {
    c.cast::<u8>()
        .wrapping_add(std::mem::offset_of!(Ctx, dpc))
        .cast()
}

fn pool_ctx() -> *mut Ctx {
    let p = ExAllocatePool2(POOL_FLAG_NON_PAGED, size_of::<Ctx>(), TAG).cast::<Ctx>();
    // SAFETY: a fresh, zeroed block of the right size.
    unsafe { KeInitializeTimer(timer_in(p)) };
    // SAFETY: as above.
    unsafe { KeInitializeDpc(dpc_in(p), Some(log_dpc), Log::new().pv()) };
    p
}

#[test]
fn freeing_memory_with_an_inserted_timer_is_fatal() {
    let out = run(|| {
        let c = pool_ctx();
        // SAFETY: the timer and DPC live in the block.
        unsafe { KeSetTimer(timer_in(c), -(10 * MS as i64), dpc_in(c)) };
        free(c.cast());
        unreachable!("TIMER_OR_DPC_INVALID");
    });
    assert_eq!(out.stop.expect("fatal stop").rule, Rule::FreeActiveTimer);
}

#[test]
fn freeing_memory_after_cancelling_its_timer_is_clean() {
    let out = run(|| {
        let c = pool_ctx();
        // SAFETY: the timer and DPC live in the block.
        unsafe { KeSetTimer(timer_in(c), -(10 * MS as i64), dpc_in(c)) };
        // SAFETY: as above.
        assert_eq!(unsafe { KeCancelTimer(timer_in(c)) }, 1);
        free(c.cast());
    });
    out.expect_clean();
}

#[test]
fn freeing_memory_with_a_queued_dpc_is_fatal() {
    let out = run(|| {
        let c = pool_ctx();
        KfRaiseIrql(DISPATCH_LEVEL);
        // SAFETY: the DPC lives in the block.
        unsafe { KeInsertQueueDpc(dpc_in(c), std::ptr::null_mut(), std::ptr::null_mut()) };
        free(c.cast());
        unreachable!("TIMER_OR_DPC_INVALID");
    });
    assert_eq!(out.stop.expect("fatal stop").rule, Rule::FreeActiveTimer);
}

#[test]
fn freeing_memory_after_its_dpc_ran_is_clean() {
    let out = run(|| {
        let c = pool_ctx();
        let old = KfRaiseIrql(DISPATCH_LEVEL);
        // SAFETY: the DPC lives in the block.
        unsafe { KeInsertQueueDpc(dpc_in(c), std::ptr::null_mut(), std::ptr::null_mut()) };
        KeLowerIrql(old);
        free(c.cast());
    });
    out.expect_clean();
}

unsafe extern "system" fn free_own_block(d: *mut KDPC, _c: PVOID, _a: PVOID, _b: PVOID) {
    // The DPC is the block's first field: freeing it is the routine's last act (legal: the
    // kernel does not touch a DPC after its routine returns).
    // SAFETY: the block was allocated from pool by the test and nothing else uses it.
    unsafe { ExFreePoolWithTag(d.cast(), TAG) };
}

#[test]
fn dpc_freeing_its_own_memory_as_its_last_act_is_clean() {
    let out = run(|| {
        let d = ExAllocatePool2(POOL_FLAG_NON_PAGED, size_of::<KDPC>(), TAG).cast::<KDPC>();
        // SAFETY: fresh block of KDPC size.
        unsafe { KeInitializeDpc(d, Some(free_own_block), std::ptr::null_mut()) };
        // SAFETY: initialized DPC in pool.
        unsafe { KeInsertQueueDpc(d, std::ptr::null_mut(), std::ptr::null_mut()) };
        pool_usage()
    });
    assert_eq!(out.expect_clean(), (0, 0));
}
