//! Spin locks in all their variants, and the system cancel spin lock (spec A.1.2, A.1.3).
//!
//! The lock word is the caller's real `KSPIN_LOCK` (0 = free); who holds it, at which saved
//! IRQL, and who spins for it are ntsim's bookkeeping in `SpinTable`. Each acquire attempt is
//! a switch point, so any contender may win a race for a lock. A spinning thread stays at
//! DISPATCH_LEVEL and keeps its CPU, as on Windows.

use std::collections::{HashMap, VecDeque};

use crate::breakpoint::Point;
use crate::machine::{Cx, World};
use crate::ntdef::{DISPATCH_LEVEL, KIRQL, KSPIN_LOCK};
use crate::sched::{ActorId, Status};
use crate::sync::word_atomic::{AtomicUsize, Ordering};
use crate::verifier::Rule;

/// What kind of lock an acquire is for; decides fairness and which checks apply.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum LockKind {
    /// A driver's KSPIN_LOCK: any spinner may win.
    Driver,
    /// The global cancel spin lock: a queued lock, handed to spinners in FIFO order.
    Cancel,
    /// A lock inside the kernel (device queue, …): exempt from the driver lock-order checks.
    #[allow(
        dead_code,
        reason = "device queues and other kernel-internal locks use it"
    )]
    Internal,
}

#[derive(Debug)]
struct Holder {
    actor: ActorId,
    kind: LockKind,
}

/// Spin lock bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct SpinTable {
    holders: HashMap<usize, Holder>,
    spinners: HashMap<usize, VecDeque<(ActorId, KIRQL)>>,
    /// The cancel spin lock's word (boxed so that its address is stable and unique per machine).
    cancel_lock: Box<KSPIN_LOCK>,
}

impl SpinTable {
    pub(crate) fn cancel_lock_addr(&self) -> usize {
        &*self.cancel_lock as *const KSPIN_LOCK as usize
    }

    /// The holder of the cancel spin lock.
    pub(crate) fn cancel_lock_holder(&self) -> Option<ActorId> {
        self.holders.get(&self.cancel_lock_addr()).map(|h| h.actor)
    }

    /// Whether `actor` holds `lock`.
    pub(crate) fn holds(&self, actor: ActorId, lock: usize) -> bool {
        self.holders.get(&lock).is_some_and(|h| h.actor == actor)
    }
}

fn word(lock: usize) -> &'static AtomicUsize {
    // SAFETY: `lock` is the address of a live, aligned KSPIN_LOCK (a usize) that the caller of
    // the spin-lock routine passed in; the kernel only ever accesses it atomically.
    unsafe { &*(lock as *const AtomicUsize) }
}

impl World {
    fn grant(&mut self, lock: usize, actor: ActorId, kind: LockKind, restore: KIRQL) {
        word(lock).store(1, Ordering::SeqCst);
        self.spin.holders.insert(lock, Holder { actor, kind });
        self.sched.actor_mut(actor).held_locks.push((lock, restore));
    }
}

impl Cx {
    /// Acquires `lock` for the running actor, which must already be at DISPATCH_LEVEL or above.
    /// `restore` is the IRQL its release will restore.
    pub(crate) fn acquire_spin(&self, lock: usize, kind: LockKind, restore: KIRQL) {
        self.point(Point::SpinLockAcquire, lock);
        let mut g = self.lock();
        loop {
            if let Some(h) = g.spin.holders.get(&lock) {
                if h.actor == self.me {
                    let who = g.who(self.me);
                    g.report(
                        Rule::SpinLockMisuse,
                        format!(
                            "spin lock {lock:#x} acquired again by the thread that holds it (SPINLOCK_ALREADY_OWNED: a deadlock on Windows)"
                        ),
                        vec![who],
                    );
                    drop(self.reschedule(g));
                    return;
                }
            } else if word(lock).load(Ordering::SeqCst) == 0 {
                if kind == LockKind::Driver {
                    self.check_lock_order(&mut g, lock);
                }
                g.grant(lock, self.me, kind, restore);
                return;
            }
            let q = g.spin.spinners.entry(lock).or_default();
            if !q.iter().any(|&(a, _)| a == self.me) {
                q.push_back((self.me, restore));
            }
            g = self.block(g, Status::Spinning { lock }).0;
            if kind == LockKind::Cancel && g.spin.holds(self.me, lock) {
                // A queued lock is handed over by its release.
                return;
            }
        }
    }

    /// C11: a cancel routine (or anyone) taking a driver lock while holding the cancel lock.
    fn check_lock_order(&self, g: &mut World, lock: usize) {
        let cancel = g.spin.cancel_lock_addr();
        if g.spin.holds(self.me, cancel) {
            let who = g.who(self.me);
            g.report(
                Rule::CancelLockOrder,
                format!(
                    "driver spin lock {lock:#x} acquired while holding the cancel spin lock: deadlocks against any holder of that lock calling IoAcquireCancelSpinLock (spec A.1.4)"
                ),
                vec![who],
            );
        }
    }

    /// Releases `lock`; returns the IRQL its acquire saved. Checks rule C17.
    pub(crate) fn release_spin(&self, lock: usize, routine: &str) -> Option<KIRQL> {
        let mut g = self.lock();
        let me = self.me;
        let held = &g.sched.actor(me).held_locks;
        let Some(pos) = held.iter().rposition(|&(l, _)| l == lock) else {
            let who = g.who(me);
            let holder = g.spin.holders.get(&lock).map(|h| g.who(h.actor));
            let mut parties = vec![who];
            parties.extend(holder.map(|h| format!("holder: {h}")));
            g.report(
                Rule::SpinLockMisuse,
                format!(
                    "{routine}: spin lock {lock:#x} released by a thread that does not hold it"
                ),
                parties,
            );
            drop(self.reschedule(g));
            return None;
        };
        if pos + 1 != held.len() {
            let who = g.who(me);
            g.report(
                Rule::SpinLockMisuse,
                format!("{routine}: spin lock {lock:#x} released before a lock acquired after it"),
                vec![who],
            );
            drop(self.reschedule(g));
            return None;
        }
        let (_, restore) = g.sched.actor_mut(me).held_locks.remove(pos);
        let kind = g.spin.holders.remove(&lock).map(|h| h.kind);
        word(lock).store(0, Ordering::SeqCst);
        if let Some(q) = g.spin.spinners.get_mut(&lock) {
            if kind == Some(LockKind::Cancel) {
                // A queued lock goes to the longest spinner.
                if let Some((next, next_restore)) = q.pop_front() {
                    g.grant(lock, next, LockKind::Cancel, next_restore);
                    g.sched.make_ready(next);
                }
            } else {
                let all: Vec<ActorId> = q.drain(..).map(|(a, _)| a).collect();
                for a in all {
                    g.sched.make_ready(a);
                }
            }
        }
        Some(restore)
    }
}

/// Initializes a spin lock to the free state.
///
/// IRQL: any.
///
/// # Safety
/// `lock` must be valid for a write.
#[allow(non_snake_case)]
pub unsafe fn KeInitializeSpinLock(lock: *mut KSPIN_LOCK) {
    // SAFETY: the caller guarantees `lock` is writable.
    unsafe { lock.write(0) };
}

/// Raises to DISPATCH_LEVEL, acquires `lock`, and returns the previous IRQL.
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// `lock` must point to an initialized spin lock that stays valid while held.
#[allow(non_snake_case)]
pub unsafe fn KeAcquireSpinLockRaiseToDpc(lock: *mut KSPIN_LOCK) -> KIRQL {
    let cx = Cx::get();
    cx.check_irql_at_most("KeAcquireSpinLock", DISPATCH_LEVEL);
    let old = cx.irql();
    cx.set_irql(old.max(DISPATCH_LEVEL));
    cx.acquire_spin(lock as usize, LockKind::Driver, old);
    old
}

/// `KeAcquireSpinLock(lock, &old)`.
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// As [`KeAcquireSpinLockRaiseToDpc`]; `old` must be valid for a write.
#[allow(non_snake_case)]
pub unsafe fn KeAcquireSpinLock(lock: *mut KSPIN_LOCK, old: *mut KIRQL) {
    // SAFETY: forwarded caller contract.
    let prev = unsafe { KeAcquireSpinLockRaiseToDpc(lock) };
    // SAFETY: the caller guarantees `old` is writable.
    unsafe { old.write(prev) };
}

/// Releases `lock` and lowers the IRQL to `new_irql`, which must be the IRQL its acquire
/// returned (rule C17); the caller must be at DISPATCH_LEVEL.
///
/// IRQL: DISPATCH_LEVEL.
///
/// # Safety
/// `lock` must point to a spin lock the caller holds.
#[allow(non_snake_case)]
pub unsafe fn KeReleaseSpinLock(lock: *mut KSPIN_LOCK, new_irql: KIRQL) {
    let cx = Cx::get();
    let irql = cx.irql();
    if irql != DISPATCH_LEVEL {
        let mut g = cx.lock();
        let who = g.who(cx.me);
        g.report(
            Rule::SpinLockMisuse,
            format!("KeReleaseSpinLock called at IRQL {irql}, not DISPATCH_LEVEL"),
            vec![who],
        );
        drop(cx.reschedule(g));
        return;
    }
    let Some(saved) = cx.release_spin(lock as usize, "KeReleaseSpinLock") else {
        return;
    };
    if saved != new_irql {
        let mut g = cx.lock();
        let who = g.who(cx.me);
        g.report(
            Rule::SpinLockMisuse,
            format!(
                "KeReleaseSpinLock restores IRQL {new_irql}, but the acquire saved IRQL {saved}"
            ),
            vec![who],
        );
        drop(cx.reschedule(g));
        return;
    }
    cx.set_irql(new_irql);
}

fn check_dpc_level(cx: &Cx, routine: &str) {
    let irql = cx.irql();
    if irql < DISPATCH_LEVEL {
        let mut g = cx.lock();
        let who = g.who(cx.me);
        g.report(
            Rule::DpcLevelVariant,
            format!("{routine} called at IRQL {irql}; it requires DISPATCH_LEVEL"),
            vec![who],
        );
    }
}

/// Acquires `lock` without changing the IRQL; the caller must already be at DISPATCH_LEVEL
/// (rule C18).
///
/// IRQL: DISPATCH_LEVEL.
///
/// # Safety
/// `lock` must point to an initialized spin lock that stays valid while held.
#[allow(non_snake_case)]
pub unsafe fn KeAcquireSpinLockAtDpcLevel(lock: *mut KSPIN_LOCK) {
    let cx = Cx::get();
    check_dpc_level(&cx, "KeAcquireSpinLockAtDpcLevel");
    let irql = cx.irql();
    cx.acquire_spin(lock as usize, LockKind::Driver, irql);
}

/// Releases `lock` without changing the IRQL (rule C18 below DISPATCH_LEVEL).
///
/// IRQL: DISPATCH_LEVEL.
///
/// # Safety
/// `lock` must point to a spin lock the caller holds.
#[allow(non_snake_case)]
pub unsafe fn KeReleaseSpinLockFromDpcLevel(lock: *mut KSPIN_LOCK) {
    let cx = Cx::get();
    check_dpc_level(&cx, "KeReleaseSpinLockFromDpcLevel");
    cx.release_spin(lock as usize, "KeReleaseSpinLockFromDpcLevel");
}

/// Tries once to acquire `lock` at DISPATCH_LEVEL; TRUE (1) if it did.
///
/// IRQL: DISPATCH_LEVEL.
///
/// # Safety
/// `lock` must point to an initialized spin lock that stays valid while held.
#[allow(non_snake_case)]
pub unsafe fn KeTryToAcquireSpinLockAtDpcLevel(lock: *mut KSPIN_LOCK) -> u8 {
    let cx = Cx::get();
    check_dpc_level(&cx, "KeTryToAcquireSpinLockAtDpcLevel");
    cx.point(Point::SpinLockAcquire, lock as usize);
    let mut g = cx.lock();
    if word(lock as usize).load(Ordering::SeqCst) != 0 {
        return 0;
    }
    let irql = g.sched.actor(cx.me).irql;
    g.grant(lock as usize, cx.me, LockKind::Driver, irql);
    1
}

/// Acquires the system cancel spin lock (a queued lock) and returns the previous IRQL.
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// `old` must be valid for a write.
#[allow(non_snake_case)]
pub unsafe fn IoAcquireCancelSpinLock(old: *mut KIRQL) {
    let prev = acquire_cancel_lock();
    // SAFETY: the caller guarantees `old` is writable.
    unsafe { old.write(prev) };
}

/// Acquires the cancel spin lock for the running thread; returns the previous IRQL.
pub(crate) fn acquire_cancel_lock() -> KIRQL {
    let cx = Cx::get();
    cx.check_irql_at_most("IoAcquireCancelSpinLock", DISPATCH_LEVEL);
    let old = cx.irql();
    cx.set_irql(old.max(DISPATCH_LEVEL));
    let lock = cx.lock().spin.cancel_lock_addr();
    cx.acquire_spin(lock, LockKind::Cancel, old);
    old
}

/// Releases the cancel spin lock and lowers the IRQL to `irql` (rule C10/C17 on misuse).
///
/// IRQL: DISPATCH_LEVEL.
#[allow(non_snake_case)]
pub fn IoReleaseCancelSpinLock(irql: KIRQL) {
    let cx = Cx::get();
    if !crate::cancel::on_release_cancel_lock(&cx, irql) {
        return;
    }
    let lock = cx.lock().spin.cancel_lock_addr();
    if cx.release_spin(lock, "IoReleaseCancelSpinLock").is_none() {
        return;
    }
    cx.set_irql(irql);
}

/// Acquires an internal kernel lock (device queue, …) at DISPATCH_LEVEL without the driver
/// lock-order checks.
#[allow(
    dead_code,
    reason = "device queues and other kernel-internal locks use it"
)]
pub(crate) fn acquire_internal(lock: usize) {
    let cx = Cx::get();
    let irql = cx.irql();
    cx.acquire_spin(lock, LockKind::Internal, irql);
}

/// Releases an internal kernel lock taken with [`acquire_internal`].
#[allow(
    dead_code,
    reason = "device queues and other kernel-internal locks use it"
)]
pub(crate) fn release_internal(lock: usize) {
    Cx::get().release_spin(lock, "internal lock release");
}
