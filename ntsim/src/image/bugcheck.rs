//! `KeBugCheck` and `KeBugCheckEx`: the machine stops (a fatal verifier report,
//! [`Rule::BugCheck`], with the code and the four parameters); the calling thread never
//! returns, and [`crate::Kernel::run`] hands the stop back as the run's outcome. This is the
//! path a Rust kernel driver's panic handler takes.

use crate::machine::Cx;
use crate::ntdef::{ULONG, ULONG_PTR};
use crate::verifier::Rule;

use super::registry;

/// The report message of a bugcheck (also used by tests to match it).
pub fn bugcheck_message(code: ULONG, params: [ULONG_PTR; 4]) -> String {
    format!(
        "KeBugCheckEx(0x{code:08X}, {:#x}, {:#x}, {:#x}, {:#x})",
        params[0], params[1], params[2], params[3]
    )
}

/// `KeBugCheckEx`: halts the machine. Never returns.
///
/// IRQL: any.
pub fn KeBugCheckEx(code: ULONG, p1: ULONG_PTR, p2: ULONG_PTR, p3: ULONG_PTR, p4: ULONG_PTR) -> ! {
    let cx = Cx::get();
    let image = registry::current().map(|i| i.name.clone());
    let mut g = cx.lock();
    let mut parties = vec![g.who(cx.me)];
    if let Some(name) = image {
        parties.push(format!("driver image {name}"));
    }
    g.report(
        Rule::BugCheck,
        bugcheck_message(code, [p1, p2, p3, p4]),
        parties,
    );
    // A halted machine never hands this actor the baton again: it parks here for good.
    drop(cx.reschedule(g));
    loop {
        std::thread::park();
    }
}

/// `KeBugCheck`: [`KeBugCheckEx`] with zero parameters. Never returns.
///
/// IRQL: any.
pub fn KeBugCheck(code: ULONG) -> ! {
    KeBugCheckEx(code, 0, 0, 0, 0)
}
