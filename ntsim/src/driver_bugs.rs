//! Driver bugs that a driver framework detects on the driver's behalf.
//!
//! The kernel cannot see some bugs: a Rust driver framework (the `wdm-csq` crate) can, because
//! its types carry the ownership of IRPs and of cancel-safe-queue contexts. This module lets such
//! a framework report them through the verifier, with the rules [`Rule::IrpDropped`] and
//! [`Rule::TicketDropped`], so that a test run fails the way it does for the kernel's own checks.

use crate::machine::Cx;
use crate::ntdef::PIRP;
use crate::verifier::Rule;

/// Reports a driver bug found by a framework. A fatal rule halts the machine (the caller then
/// never returns, as after a bugcheck).
///
/// IRQL: any.
pub fn report_driver_bug(rule: Rule, message: &str) {
    let cx = Cx::get();
    let mut g = cx.lock();
    let who = g.who(cx.me);
    g.report(rule, message.to_string(), vec![who]);
    if g.halted.is_some() {
        drop(cx.reschedule(g));
    }
}

/// Reports a driver bug about one IRP, with the IRP's recent history in the report's parties.
///
/// IRQL: any.
pub fn report_irp_bug(rule: Rule, irp: PIRP, message: &str) {
    let cx = Cx::get();
    let mut g = cx.lock();
    let mut parties = vec![g.who(cx.me)];
    parties.extend(g.irp_history(irp as usize));
    g.report(
        rule,
        format!("{message} (IRP {:#x})", irp as usize),
        parties,
    );
    if g.halted.is_some() {
        drop(cx.reschedule(g));
    }
}

/// `DbgPrint` for frameworks: writes `message` to the host's standard error, prefixed with the
/// running actor's name.
///
/// IRQL: any.
pub fn debug_print(message: &str) {
    let who = Cx::try_get().map_or_else(|| "host".to_string(), |cx| cx.lock().who(cx.me));
    eprintln!("[DbgPrint {who}] {message}");
}
