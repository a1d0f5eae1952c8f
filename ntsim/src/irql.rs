//! IRQL of the running emulated thread (spec A.1).
//!
//! The real IRQL belongs to a CPU; in ntsim it is kept per actor, which is equivalent because an
//! actor at DISPATCH_LEVEL or above owns its CPU (see `sched`).

use crate::machine::Cx;
use crate::ntdef::{DISPATCH_LEVEL, KIRQL};
use crate::verifier::Rule;

impl Cx {
    /// Sets the running actor's IRQL; lowering below DISPATCH_LEVEL lets pending DPCs run
    /// (a switch point, like the software interrupt Windows delivers on lowering).
    pub(crate) fn set_irql(&self, new: KIRQL) {
        let old = {
            let mut g = self.lock();
            let a = g.sched.actor_mut(self.me);
            let old = a.irql;
            a.irql = new;
            old
        };
        if new < DISPATCH_LEVEL && old >= DISPATCH_LEVEL {
            self.switch_point();
        }
    }

    /// Reports rule C19 if the current IRQL is above `max` for `routine`. Returns whether the
    /// call is legal.
    pub(crate) fn check_irql_at_most(&self, routine: &str, max: KIRQL) -> bool {
        let mut g = self.lock();
        let irql = g.sched.actor(self.me).irql;
        if irql > max {
            let who = g.who(self.me);
            g.report(
                Rule::ApiIrql,
                format!("{routine} called at IRQL {irql}; it requires IRQL <= {max}"),
                vec![who],
            );
            return false;
        }
        true
    }

    /// Reports rule C19 if the current IRQL is not exactly `level` for `routine`.
    #[allow(
        dead_code,
        reason = "for routines with an exact IRQL (IoStartNextPacket)"
    )]
    pub(crate) fn check_irql_exactly(&self, routine: &str, level: KIRQL) -> bool {
        let mut g = self.lock();
        let irql = g.sched.actor(self.me).irql;
        if irql != level {
            let who = g.who(self.me);
            g.report(
                Rule::ApiIrql,
                format!("{routine} called at IRQL {irql}; it requires IRQL == {level}"),
                vec![who],
            );
            return false;
        }
        true
    }
}

/// The current IRQL.
///
/// IRQL: any. Returns the IRQL of the calling emulated thread's CPU.
#[allow(non_snake_case)]
pub fn KeGetCurrentIrql() -> KIRQL {
    Cx::get().irql()
}

/// Raises the IRQL to `new` and returns the previous one. Lowering through this routine is a
/// fatal error on Windows (IRQL_NOT_GREATER_OR_EQUAL); ntsim reports rule C19.
///
/// IRQL: any, `new` >= current.
#[allow(non_snake_case)]
pub fn KfRaiseIrql(new: KIRQL) -> KIRQL {
    let cx = Cx::get();
    let old = cx.irql();
    if new < old {
        let mut g = cx.lock();
        let who = g.who(cx.me);
        g.report_as(
            Rule::ApiIrql,
            crate::verifier::Severity::Fatal,
            format!("KeRaiseIrql to {new} from the higher IRQL {old} (IRQL_NOT_GREATER_OR_EQUAL)"),
            vec![who],
        );
        drop(cx.reschedule(g));
        return old;
    }
    cx.set_irql(new);
    old
}

/// `KeRaiseIrql(new, &old)`.
///
/// IRQL: any, `new` >= current.
///
/// # Safety
/// `old` must be valid for a write.
#[allow(non_snake_case)]
pub unsafe fn KeRaiseIrql(new: KIRQL, old: *mut KIRQL) {
    let prev = KfRaiseIrql(new);
    // SAFETY: the caller guarantees `old` is writable.
    unsafe { old.write(prev) };
}

/// Raises to DISPATCH_LEVEL and returns the previous IRQL.
///
/// IRQL: <= DISPATCH_LEVEL.
#[allow(non_snake_case)]
pub fn KeRaiseIrqlToDpcLevel() -> KIRQL {
    KfRaiseIrql(DISPATCH_LEVEL)
}

/// Lowers the IRQL to `new`. Raising through this routine is fatal on Windows
/// (IRQL_NOT_LESS_OR_EQUAL); ntsim reports rule C19. Lowering below DISPATCH_LEVEL runs the CPU's
/// pending DPCs first.
///
/// IRQL: any, `new` <= current.
#[allow(non_snake_case)]
pub fn KeLowerIrql(new: KIRQL) {
    let cx = Cx::get();
    let old = cx.irql();
    if new > old {
        let mut g = cx.lock();
        let who = g.who(cx.me);
        g.report_as(
            Rule::ApiIrql,
            crate::verifier::Severity::Fatal,
            format!("KeLowerIrql to {new} from the lower IRQL {old} (IRQL_NOT_LESS_OR_EQUAL)"),
            vec![who],
        );
        drop(cx.reschedule(g));
        return;
    }
    let holds = !cx.lock().sched.actor(cx.me).held_locks.is_empty();
    if holds && new < DISPATCH_LEVEL {
        let mut g = cx.lock();
        let who = g.who(cx.me);
        g.report(
            Rule::SpinLockMisuse,
            format!("KeLowerIrql to {new} while holding a spin lock"),
            vec![who],
        );
        drop(cx.reschedule(g));
        return;
    }
    cx.set_irql(new);
}
