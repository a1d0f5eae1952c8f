//! IRQL: spec A.1.1, spec E's KeIrql basics, and the fatal misuse of KeRaiseIrql/KeLowerIrql.

mod support;

use ntsim::dpc::KeInsertQueueDpc;
use ntsim::irql::*;
use ntsim::ntdef::*;
use ntsim::{Rule, Severity};
use support::*;

#[test]
fn raise_returns_the_previous_irql_and_lower_restores_it() {
    let out = run(|| {
        assert_eq!(KeGetCurrentIrql(), PASSIVE_LEVEL);
        assert_eq!(KfRaiseIrql(APC_LEVEL), PASSIVE_LEVEL);
        assert_eq!(KeRaiseIrqlToDpcLevel(), APC_LEVEL);
        let mut old = 0;
        // SAFETY: `old` is writable.
        unsafe { KeRaiseIrql(HIGH_LEVEL, &mut old) };
        assert_eq!(old, DISPATCH_LEVEL);
        assert_eq!(KeGetCurrentIrql(), HIGH_LEVEL);
        assert_eq!(
            KfRaiseIrql(HIGH_LEVEL),
            HIGH_LEVEL,
            "raising to the same level is legal"
        );
        KeLowerIrql(DISPATCH_LEVEL);
        KeLowerIrql(PASSIVE_LEVEL);
        KeGetCurrentIrql()
    });
    assert_eq!(out.expect_clean(), PASSIVE_LEVEL);
}

#[test]
fn raising_to_a_lower_irql_is_fatal() {
    let out = run(|| {
        KfRaiseIrql(DISPATCH_LEVEL);
        KfRaiseIrql(PASSIVE_LEVEL);
        unreachable!("IRQL_NOT_GREATER_OR_EQUAL");
    });
    let stop = out.stop.expect("fatal stop");
    assert_eq!((stop.rule, stop.severity), (Rule::ApiIrql, Severity::Fatal));
}

#[test]
fn lowering_to_a_higher_irql_is_fatal() {
    let out = run(|| {
        KeLowerIrql(DISPATCH_LEVEL);
        unreachable!("IRQL_NOT_LESS_OR_EQUAL");
    });
    let stop = out.stop.expect("fatal stop");
    assert_eq!((stop.rule, stop.severity), (Rule::ApiIrql, Severity::Fatal));
}

#[test]
fn lowering_below_dispatch_runs_pending_dpcs_first() {
    let out = run(|| {
        let log = Log::new();
        let d = logging_dpc(log);
        for target in [APC_LEVEL, PASSIVE_LEVEL] {
            KfRaiseIrql(DISPATCH_LEVEL);
            // SAFETY: leaked DPC.
            unsafe { KeInsertQueueDpc(d.get(), std::ptr::null_mut(), std::ptr::null_mut()) };
            let before = calls(log).len();
            KeLowerIrql(target);
            // The DPC ran inside KeLowerIrql, before it returned.
            assert_eq!(calls(log).len(), before + 1);
            KeLowerIrql(PASSIVE_LEVEL);
        }
        calls(log).len()
    });
    assert_eq!(out.expect_clean(), 2);
}

#[test]
fn dpc_queued_on_another_cpu_runs_while_this_cpu_stays_at_dispatch() {
    let out = run(|| {
        let log = Log::new();
        let d = logging_dpc(log);
        let bp = ntsim::breakpoint::Breakpoint::set(
            ntsim::breakpoint::Point::Named("main at DISPATCH_LEVEL"),
            ntsim::breakpoint::Filter::Any,
        );
        let old = KfRaiseIrql(DISPATCH_LEVEL);
        let t = ntsim::thread::SystemThread::spawn("other-cpu", move || {
            bp.wait_hit();
            // SAFETY: leaked DPC; queued on this thread's CPU, which is at PASSIVE_LEVEL.
            unsafe { KeInsertQueueDpc(d.get(), std::ptr::null_mut(), std::ptr::null_mut()) };
            assert_eq!(calls(log).len(), 1, "ran at once on this CPU");
            bp.clear();
        });
        // Park here, at DISPATCH_LEVEL, until the other CPU has run its DPC.
        ntsim::breakpoint::named_point("main at DISPATCH_LEVEL");
        let ran = calls(log).len();
        KeLowerIrql(old);
        t.join();
        ran
    });
    assert_eq!(out.expect_clean(), 1);
}
