//! Spin locks: spec A.1.2/A.1.3, spec E's KeSpinLock, rules C17 and C18, and the Deadlock stop.

mod support;

use ntsim::breakpoint::{Breakpoint, Filter, Point, named_point};
use ntsim::irql::{KeGetCurrentIrql, KeLowerIrql, KfRaiseIrql};
use ntsim::ntdef::*;
use ntsim::sched::{Policy, Status};
use ntsim::spinlock::*;
use ntsim::thread::{SystemThread, actor_status};
use ntsim::{Config, Kernel, Rule};
use support::*;

fn acquire(l: P<KSPIN_LOCK>) -> KIRQL {
    let mut old = 0;
    // SAFETY: leaked lock; `old` is writable.
    unsafe { KeAcquireSpinLock(l.get(), &mut old) };
    old
}

fn release(l: P<KSPIN_LOCK>, old: KIRQL) {
    // SAFETY: leaked lock held by the caller (or deliberately not, in the C17 tests).
    unsafe { KeReleaseSpinLock(l.get(), old) };
}

fn word(l: P<KSPIN_LOCK>) -> usize {
    // SAFETY: leaked lock word.
    unsafe { *l.get() }
}

#[test]
fn acquire_raises_to_dispatch_and_release_restores_the_saved_irql() {
    let out = run(|| {
        let l = spin_lock();
        // SAFETY: writable lock word.
        unsafe { KeInitializeSpinLock(l.get()) };
        assert_eq!(word(l), 0);
        for level in [PASSIVE_LEVEL, APC_LEVEL, DISPATCH_LEVEL] {
            let base = KfRaiseIrql(level);
            let old = acquire(l);
            assert_eq!(old, level);
            assert_eq!(KeGetCurrentIrql(), DISPATCH_LEVEL);
            assert_ne!(word(l), 0, "the lock word shows the lock held");
            release(l, old);
            assert_eq!(KeGetCurrentIrql(), level);
            assert_eq!(word(l), 0);
            // SAFETY: leaked lock.
            let old = unsafe { KeAcquireSpinLockRaiseToDpc(l.get()) };
            assert_eq!((old, KeGetCurrentIrql()), (level, DISPATCH_LEVEL));
            release(l, old);
            assert_eq!(KeGetCurrentIrql(), level);
            KeLowerIrql(base);
        }
    });
    out.expect_clean();
}

#[test]
fn dpc_level_variants_leave_the_irql_alone() {
    let out = run(|| {
        let l = spin_lock();
        let old = KfRaiseIrql(DISPATCH_LEVEL);
        // SAFETY: leaked lock, at DISPATCH_LEVEL.
        unsafe { KeAcquireSpinLockAtDpcLevel(l.get()) };
        assert_eq!(KeGetCurrentIrql(), DISPATCH_LEVEL);
        assert_ne!(word(l), 0);
        // SAFETY: held.
        unsafe { KeReleaseSpinLockFromDpcLevel(l.get()) };
        assert_eq!(KeGetCurrentIrql(), DISPATCH_LEVEL);
        assert_eq!(word(l), 0);
        // SAFETY: leaked lock, at DISPATCH_LEVEL.
        assert_eq!(unsafe { KeTryToAcquireSpinLockAtDpcLevel(l.get()) }, 1);
        assert_eq!(KeGetCurrentIrql(), DISPATCH_LEVEL);
        // SAFETY: held.
        unsafe { KeReleaseSpinLockFromDpcLevel(l.get()) };
        KeLowerIrql(old);
    });
    out.expect_clean();
}

#[test]
fn cancel_spin_lock_raises_and_restores() {
    let out = run(|| {
        let mut old = 0;
        // SAFETY: `old` is writable.
        unsafe { IoAcquireCancelSpinLock(&mut old) };
        assert_eq!((old, KeGetCurrentIrql()), (PASSIVE_LEVEL, DISPATCH_LEVEL));
        IoReleaseCancelSpinLock(old);
        KeGetCurrentIrql()
    });
    assert_eq!(out.expect_clean(), PASSIVE_LEVEL);
}

#[test]
fn try_acquire_fails_while_another_cpu_holds_the_lock() {
    let out = run(|| {
        let l = spin_lock();
        let bp = Breakpoint::set(Point::Named("holding"), Filter::Any);
        let holder = SystemThread::spawn("holder", move || {
            let old = acquire(l);
            named_point("holding");
            release(l, old);
        });
        bp.wait_hit();
        let old = KfRaiseIrql(DISPATCH_LEVEL);
        // SAFETY: leaked lock, at DISPATCH_LEVEL.
        let got = unsafe { KeTryToAcquireSpinLockAtDpcLevel(l.get()) };
        KeLowerIrql(old);
        bp.clear();
        holder.join();
        // Free again: the try succeeds.
        let old = KfRaiseIrql(DISPATCH_LEVEL);
        // SAFETY: leaked lock, at DISPATCH_LEVEL.
        let again = unsafe { KeTryToAcquireSpinLockAtDpcLevel(l.get()) };
        // SAFETY: held.
        unsafe { KeReleaseSpinLockFromDpcLevel(l.get()) };
        KeLowerIrql(old);
        (got, again)
    });
    assert_eq!(out.expect_clean(), (0, 1));
}

#[test]
fn contender_spins_until_the_holder_releases() {
    // Three CPUs: the parked holder and the spinning contender each keep one.
    let config = Config {
        cpus: 3,
        ..Config::default()
    };
    let out = Kernel::new(config).run(|| {
        let l = spin_lock();
        let bp = Breakpoint::set(Point::Named("holding"), Filter::Any);
        let holder = SystemThread::spawn("holder", move || {
            let old = acquire(l);
            named_point("holding");
            release(l, old);
        });
        bp.wait_hit();
        let contender = SystemThread::spawn("contender", move || {
            let old = acquire(l);
            release(l, old);
        });
        sleep(MS);
        let spinning = actor_status(contender.actor());
        bp.clear();
        holder.join();
        contender.join();
        spinning
    });
    assert!(matches!(out.expect_clean(), Status::Spinning { .. }));
}

#[test]
fn lock_gives_mutual_exclusion_across_cpus_under_random_schedules() {
    for seed in 0..20 {
        let out = Kernel::new(Config::with_policy(Policy::Random { seed })).run(|| {
            let l = spin_lock();
            let shared = leak(0u32);
            let threads: Vec<SystemThread> = (0..2)
                .map(|i| {
                    SystemThread::spawn(&format!("t{i}"), move || {
                        for _ in 0..5 {
                            let old = acquire(l);
                            // SAFETY: protected by the lock.
                            let v = unsafe { *shared.get() };
                            named_point("inside");
                            // SAFETY: protected by the lock.
                            unsafe { *shared.get() = v + 1 };
                            release(l, old);
                        }
                    })
                })
                .collect();
            threads.into_iter().for_each(SystemThread::join);
            // SAFETY: every thread has ended.
            unsafe { *shared.get() }
        });
        assert_eq!(out.expect_clean(), 10, "seed {seed}");
    }
}

// Rule C17.

fn expect_c17<F: FnOnce() + Send + 'static>(f: F) {
    let out = run(f);
    let stop = out.stop.expect("fatal stop");
    assert_eq!(stop.rule, Rule::SpinLockMisuse, "{stop}");
}

#[test]
fn release_above_dispatch_level_is_fatal() {
    expect_c17(|| {
        let l = spin_lock();
        let old = acquire(l);
        KfRaiseIrql(HIGH_LEVEL);
        release(l, old);
    });
}

#[test]
fn release_restoring_another_irql_than_saved_is_fatal() {
    expect_c17(|| {
        let l = spin_lock();
        let _old = acquire(l);
        release(l, APC_LEVEL);
    });
}

#[test]
fn release_of_a_lock_not_held_is_fatal() {
    expect_c17(|| {
        let l = spin_lock();
        KfRaiseIrql(DISPATCH_LEVEL);
        release(l, PASSIVE_LEVEL);
    });
}

#[test]
fn release_out_of_order_is_fatal() {
    expect_c17(|| {
        let a = spin_lock();
        let b = spin_lock();
        let old_a = acquire(a);
        let _old_b = acquire(b);
        release(a, old_a);
    });
}

#[test]
fn reacquire_on_the_same_thread_is_fatal() {
    expect_c17(|| {
        let l = spin_lock();
        acquire(l);
        acquire(l);
    });
}

#[test]
fn lowering_below_dispatch_while_holding_a_lock_is_fatal() {
    expect_c17(|| {
        let l = spin_lock();
        acquire(l);
        KeLowerIrql(PASSIVE_LEVEL);
    });
}

#[test]
fn nested_locks_released_in_reverse_order_are_clean() {
    let out = run(|| {
        let a = spin_lock();
        let b = spin_lock();
        for _ in 0..2 {
            let old_a = acquire(a);
            let old_b = acquire(b);
            assert_eq!(old_b, DISPATCH_LEVEL);
            release(b, old_b);
            release(a, old_a);
        }
        KeGetCurrentIrql()
    });
    assert_eq!(out.expect_clean(), PASSIVE_LEVEL);
}

// Rule C18.

#[test]
fn dpc_level_variants_below_dispatch_are_violations() {
    let out = run(|| {
        let l = spin_lock();
        // SAFETY: deliberately at PASSIVE_LEVEL.
        unsafe { KeAcquireSpinLockAtDpcLevel(l.get()) };
        // SAFETY: as above.
        unsafe { KeReleaseSpinLockFromDpcLevel(l.get()) };
        // SAFETY: as above.
        let got = unsafe { KeTryToAcquireSpinLockAtDpcLevel(l.get()) };
        // SAFETY: as above.
        unsafe { KeReleaseSpinLockFromDpcLevel(l.get()) };
        got
    });
    assert!(out.stop.is_none());
    assert_eq!(out.reports_of(Rule::DpcLevelVariant).len(), 4);
    assert_eq!(out.reports.len(), 4, "{:?}", out.reports);
}

// The Deadlock stop: two threads taking two locks in opposite orders.

fn abba(opposite: bool) -> ntsim::Outcome<()> {
    let config = Config {
        cpus: 3,
        ..Config::default()
    };
    Kernel::new(config).run(move || {
        let a = spin_lock();
        let b = spin_lock();
        let bp = Breakpoint::set(Point::Named("t1 holds A"), Filter::Any);
        let t1 = SystemThread::spawn("t1", move || {
            let old_a = acquire(a);
            named_point("t1 holds A");
            let old_b = acquire(b);
            release(b, old_b);
            release(a, old_a);
        });
        bp.wait_hit();
        let t2 = SystemThread::spawn("t2", move || {
            let (first, second) = if opposite { (b, a) } else { (a, b) };
            let old_1 = acquire(first);
            let old_2 = acquire(second);
            release(second, old_2);
            release(first, old_1);
        });
        sleep(MS); // t2 takes its first lock and spins for its second
        bp.clear();
        t1.join();
        t2.join();
    })
}

#[test]
fn opposite_lock_orders_on_two_cpus_deadlock() {
    let out = abba(true);
    let stop = out.stop.expect("stop");
    assert_eq!(stop.rule, Rule::Deadlock);
    assert!(
        stop.parties
            .iter()
            .any(|p| p.contains("t1") && p.contains("Spinning"))
    );
    assert!(
        stop.parties
            .iter()
            .any(|p| p.contains("t2") && p.contains("Spinning"))
    );
}

#[test]
fn same_lock_order_on_two_cpus_is_clean() {
    abba(false).expect_clean();
}
