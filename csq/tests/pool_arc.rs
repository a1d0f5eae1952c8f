//! `PoolArc`: a pool block shared by reference count, freed once when the last clone goes;
//! allocation failure is an error, not a panic.

use std::sync::atomic::{AtomicUsize, Ordering};

use csq::{NtStatus, PoolArc};

static DROPS: AtomicUsize = AtomicUsize::new(0);

struct Counted(u32);

impl Drop for Counted {
    fn drop(&mut self) {
        DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

const TAG: u32 = u32::from_le_bytes(*b"Test");

#[test]
fn last_clone_drops_and_frees_once() {
    let out = ntsim::Kernel::new(ntsim::Config::default()).run(|| {
        let before = ntsim::pool::pool_usage().0;
        let a = PoolArc::pin_init(Counted(7), TAG).expect("pool");
        let b = a.clone();
        assert!(PoolArc::ptr_eq(&a, &b));
        assert_eq!(b.0, 7);
        assert_eq!(ntsim::pool::pool_usage().0, before + 1);
        drop(a);
        assert_eq!(DROPS.load(Ordering::SeqCst), 0);
        drop(b);
        assert_eq!(DROPS.load(Ordering::SeqCst), 1);
        assert_eq!(ntsim::pool::pool_usage().0, before);
    });
    out.expect_clean();
}

#[test]
fn allocation_failure_is_insufficient_resources() {
    let out = ntsim::Kernel::new(ntsim::Config::default()).run(|| {
        ntsim::pool::fail_allocations(1, Some(TAG));
        let r = PoolArc::pin_init(0u64, TAG);
        assert_eq!(r.err(), Some(NtStatus::INSUFFICIENT_RESOURCES));
        assert!(PoolArc::pin_init(0u64, TAG).is_ok());
    });
    out.expect_clean();
}
