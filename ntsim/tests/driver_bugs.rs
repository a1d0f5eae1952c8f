//! The framework hook (`ntsim::driver_bugs`): bugs that a driver framework detects on the
//! driver's behalf are verifier reports like the kernel's own.

use ntsim::driver_bugs::{report_driver_bug, report_irp_bug};
use ntsim::{Config, Kernel, Rule, Severity};

#[test]
fn a_dropped_irp_reported_by_a_framework_is_a_violation_with_the_irp_history() {
    let out = Kernel::new(Config::default()).run(|| {
        let irp = ntsim::irp::IoAllocateIrp(1, 0);
        report_irp_bug(Rule::IrpDropped, irp, "an Irp was dropped");
        // SAFETY: allocated above, not used afterwards.
        unsafe { ntsim::irp::IoFreeIrp(irp) };
    });
    let r = out.reports_of(Rule::IrpDropped);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].severity, Severity::Violation);
    assert!(r[0].parties.iter().any(|p| p.contains("allocated")));
    assert!(out.stop.is_none(), "not fatal: the run goes on");
}

#[test]
fn a_dropped_ticket_reported_by_a_framework_is_a_violation() {
    let out = Kernel::new(Config::default()).run(|| {
        report_driver_bug(Rule::TicketDropped, "a ticket was dropped");
    });
    assert_eq!(out.reports_of(Rule::TicketDropped).len(), 1);
}

#[test]
fn a_run_without_framework_reports_is_clean() {
    let out = Kernel::new(Config::default()).run(|| {
        ntsim::driver_bugs::debug_print("hello from a framework");
    });
    out.expect_clean();
}
