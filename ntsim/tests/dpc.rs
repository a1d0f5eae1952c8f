//! DPCs: spec A.13, the KeDpc conformance tests of spec E, and rules C21, C22 (DPC part), C26.

mod support;

use ntsim::dpc::*;
use ntsim::irql::{KeGetCurrentIrql, KeLowerIrql, KfRaiseIrql};
use ntsim::ntdef::*;
use ntsim::{Rule, Severity};
use support::*;

fn insert(d: P<KDPC>, a1: usize, a2: usize) -> u8 {
    // SAFETY: `d` is an initialized, leaked DPC.
    unsafe { KeInsertQueueDpc(d.get(), a1 as PVOID, a2 as PVOID) }
}

fn remove(d: P<KDPC>) -> u8 {
    // SAFETY: `d` is an initialized, leaked DPC.
    unsafe { KeRemoveQueueDpc(d.get()) }
}

#[test]
fn initialize_dpc_sets_type_importance_cpu_and_routine() {
    let out = run(|| {
        let log = Log::new();
        let d = logging_dpc(log);
        // SAFETY: leaked, initialized DPC.
        let k = unsafe { *d.get() };
        assert_eq!(k.Type, DpcObject);
        assert_eq!(k.Importance, MediumImportance);
        assert_eq!(k.Number, 0);
        assert!(k.DpcData.is_null());
        assert_eq!(k.DeferredContext, log.pv());
        assert!(k.DeferredRoutine.is_some());
        assert!(k.SystemArgument1.is_null() && k.SystemArgument2.is_null());
    });
    out.expect_clean();
}

#[test]
fn dpc_routine_runs_at_dispatch_with_context_and_arguments_already_unlinked() {
    let out = run(|| {
        let log = Log::new();
        let d = logging_dpc(log);
        // Inserted at PASSIVE_LEVEL: the DPC interrupts the inserting thread at once.
        assert_eq!(insert(d, 0x11, 0x22), 1);
        let c = calls(log);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].dpc, d.addr());
        assert_eq!(c[0].irql, DISPATCH_LEVEL);
        assert_eq!((c[0].a1, c[0].a2), (0x11, 0x22));
        assert!(
            !c[0].queued_while_running,
            "DpcData is cleared before the routine runs"
        );
        // SAFETY: leaked DPC; its fields are intact after the call.
        let k = unsafe { *d.get() };
        assert_eq!(k.DeferredContext, log.pv());
        assert!(k.DpcData.is_null());
        assert_eq!(KeGetCurrentIrql(), PASSIVE_LEVEL);
    });
    out.expect_clean();
}

#[test]
fn second_insert_while_queued_returns_false_and_ignores_its_arguments() {
    let out = run(|| {
        let log = Log::new();
        let d = logging_dpc(log);
        let old = KfRaiseIrql(DISPATCH_LEVEL);
        assert_eq!(insert(d, 1, 2), 1);
        assert!(dpc_queued(d));
        assert_eq!(insert(d, 3, 4), 0);
        assert!(calls(log).is_empty());
        KeLowerIrql(old);
        let c = calls(log);
        assert_eq!(c.len(), 1, "one insertion, one call");
        assert_eq!((c[0].a1, c[0].a2), (1, 2));
    });
    out.expect_clean();
}

#[test]
fn dpc_inserted_at_dispatch_or_high_waits_until_irql_drops_below_dispatch() {
    let out = run(|| {
        for level in [DISPATCH_LEVEL, HIGH_LEVEL] {
            let log = Log::new();
            let d = logging_dpc(log);
            let old = KfRaiseIrql(level);
            assert_eq!(insert(d, 0, 0), 1);
            assert!(calls(log).is_empty());
            KeLowerIrql(DISPATCH_LEVEL);
            assert!(calls(log).is_empty(), "still at DISPATCH_LEVEL");
            KeLowerIrql(old);
            assert_eq!(calls(log).len(), 1);
        }
    });
    out.expect_clean();
}

#[test]
fn remove_queue_dpc_false_when_not_queued_true_when_it_removed_one_that_never_runs() {
    let out = run(|| {
        let log = Log::new();
        let d = logging_dpc(log);
        assert_eq!(remove(d), 0, "never queued");
        let old = KfRaiseIrql(HIGH_LEVEL);
        assert_eq!(insert(d, 0, 0), 1);
        assert_eq!(remove(d), 1, "removal is legal at HIGH_LEVEL");
        assert!(!dpc_queued(d));
        assert_eq!(remove(d), 0, "already removed");
        KeLowerIrql(old);
        assert!(calls(log).is_empty(), "a removed DPC never runs");
        // Once it has run, it is not queued any more.
        assert_eq!(insert(d, 0, 0), 1);
        assert_eq!(calls(log).len(), 1);
        assert_eq!(remove(d), 0, "already ran");
    });
    out.expect_clean();
}

#[test]
fn high_importance_dpc_goes_to_the_front_of_the_queue() {
    let out = run(|| {
        let log = Log::new();
        let medium = logging_dpc(log);
        let high = logging_dpc(log);
        // SAFETY: leaked DPC, not queued.
        unsafe { (*high.get()).Importance = HighImportance };
        let old = KfRaiseIrql(DISPATCH_LEVEL);
        insert(medium, 0, 0);
        insert(high, 0, 0);
        KeLowerIrql(old);
        let order: Vec<usize> = calls(log).iter().map(|c| c.dpc).collect();
        assert_eq!(order, vec![high.addr(), medium.addr()]);
    });
    out.expect_clean();
}

unsafe extern "system" fn requeue_self(d: *mut KDPC, ctx: PVOID, a1: PVOID, _a2: PVOID) {
    let count = ctx as *mut u32;
    // SAFETY: the context is a leaked counter; only DPCs of this test touch it.
    let n = unsafe { &mut *count };
    *n += 1;
    let n = *n;
    if n < 3 {
        // SAFETY: `d` is the running DPC; it was unlinked before the call, so it can re-queue.
        let again = unsafe { KeInsertQueueDpc(d, a1, std::ptr::null_mut()) };
        assert_eq!(again, 1, "a running DPC is not queued");
    }
}

#[test]
fn dpc_can_requeue_itself_because_dpcdata_is_cleared_before_it_runs() {
    let out = run(|| {
        let count = leak(0u32);
        let d = dpc(Some(requeue_self), count.pv());
        insert(d, 0, 0);
        // SAFETY: leaked counter; every DPC has run (the queue drains before we run again).
        unsafe { *count.get() }
    });
    assert_eq!(out.expect_clean(), 3);
}

#[test]
fn initializing_a_null_dpc_faults() {
    let out = run(|| {
        // SAFETY: deliberately wrong: KeInitializeDpc(NULL) faults on Windows.
        unsafe { KeInitializeDpc(std::ptr::null_mut(), Some(log_dpc), std::ptr::null_mut()) };
        unreachable!("the machine stops at the fault");
    });
    assert_eq!(out.stop.expect("fatal stop").rule, Rule::BugCheck);
    assert!(out.value.is_none());
}

#[test]
fn flush_queued_dpcs_returns_after_every_queued_dpc_ran() {
    let out = run(|| {
        let log = Log::new();
        let d = logging_dpc(log);
        KeFlushQueuedDpcs();
        let old = KfRaiseIrql(DISPATCH_LEVEL);
        insert(d, 0, 0);
        KeLowerIrql(old);
        KeFlushQueuedDpcs();
        calls(log).len()
    });
    assert_eq!(out.expect_clean(), 1);
}

// Rule C21: a DPC routine must return at DISPATCH_LEVEL without spin locks.

unsafe extern "system" fn returns_at_passive(_d: *mut KDPC, _c: PVOID, _a: PVOID, _b: PVOID) {
    KeLowerIrql(PASSIVE_LEVEL);
}

unsafe extern "system" fn returns_holding_lock(_d: *mut KDPC, c: PVOID, _a: PVOID, _b: PVOID) {
    // SAFETY: the context is a leaked spin lock.
    unsafe { ntsim::spinlock::KeAcquireSpinLockAtDpcLevel(c.cast()) };
}

unsafe extern "system" fn balanced_lock(_d: *mut KDPC, c: PVOID, _a: PVOID, _b: PVOID) {
    // SAFETY: the context is a leaked spin lock.
    unsafe {
        ntsim::spinlock::KeAcquireSpinLockAtDpcLevel(c.cast());
    }
    // SAFETY: as above; held by this DPC.
    unsafe { ntsim::spinlock::KeReleaseSpinLockFromDpcLevel(c.cast()) };
}

#[test]
fn dpc_returning_at_passive_level_is_fatal() {
    let out = run(|| {
        let d = dpc(Some(returns_at_passive), std::ptr::null_mut());
        insert(d, 0, 0);
    });
    assert_eq!(out.stop.expect("fatal stop").rule, Rule::IrqlChanged);
}

#[test]
fn dpc_returning_holding_a_spin_lock_is_fatal() {
    let out = run(|| {
        let lock = spin_lock();
        let d = dpc(Some(returns_holding_lock), lock.pv());
        insert(d, 0, 0);
    });
    assert_eq!(out.stop.expect("fatal stop").rule, Rule::IrqlChanged);
}

#[test]
fn dpc_releasing_what_it_acquires_is_clean() {
    let out = run(|| {
        let lock = spin_lock();
        let d = dpc(Some(balanced_lock), lock.pv());
        insert(d, 0, 0);
    });
    out.expect_clean();
}

// Rule C22: a DPC must not change the APC-disable count.

unsafe extern "system" fn enters_critical_region(_d: *mut KDPC, _c: PVOID, _a: PVOID, _b: PVOID) {
    ntsim::thread::KeEnterCriticalRegion();
}

#[test]
fn dpc_changing_the_apc_disable_count_is_fatal() {
    let out = run(|| {
        let d = dpc(Some(enters_critical_region), std::ptr::null_mut());
        insert(d, 0, 0);
    });
    assert_eq!(out.stop.expect("fatal stop").rule, Rule::CriticalRegion);
}

// Rule C26: a KDPC is for a timer or for KeInsertQueueDpc, not both.

#[test]
fn same_dpc_for_a_timer_and_insert_queue_dpc_is_a_warning() {
    let out = run(|| {
        let log = Log::new();
        let d = logging_dpc(log);
        let t = timer(NotificationTimer);
        // SAFETY: leaked timer and DPC.
        unsafe { ntsim::timer::KeSetTimer(t.get(), -(MS as i64), d.get()) };
        sleep(2 * MS);
        insert(d, 0, 0);
        calls(log).len()
    });
    let r = out.reports_of(Rule::DpcTimerAndQueue);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].severity, Severity::Warning);
    assert_eq!(out.value, Some(2));
}

#[test]
fn separate_dpcs_for_a_timer_and_a_queue_are_clean() {
    let out = run(|| {
        let log = Log::new();
        let for_timer = logging_dpc(log);
        let for_queue = logging_dpc(log);
        let t = timer(NotificationTimer);
        // SAFETY: leaked timer and DPC.
        unsafe { ntsim::timer::KeSetTimer(t.get(), -(MS as i64), for_timer.get()) };
        sleep(2 * MS);
        insert(for_queue, 0, 0);
        calls(log).len()
    });
    assert_eq!(out.expect_clean(), 2);
}

#[test]
fn reinitialized_dpc_storage_is_a_new_dpc_for_rule_c26() {
    let out = run(|| {
        let log = Log::new();
        let d = logging_dpc(log);
        let t = timer(NotificationTimer);
        // SAFETY: leaked timer and DPC.
        unsafe { ntsim::timer::KeSetTimer(t.get(), -(MS as i64), d.get()) };
        sleep(2 * MS);
        // The same storage, initialized again, now serves KeInsertQueueDpc only.
        // SAFETY: the DPC is neither queued nor running, and the timer has fired.
        unsafe { KeInitializeDpc(d.get(), Some(log_dpc), log.pv()) };
        insert(d, 0, 0);
    });
    out.expect_clean();
}
