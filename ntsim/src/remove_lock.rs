//! IO_REMOVE_LOCK (spec A.17; rule C34) on the free-build layout: `Removed`, `IoCount` (1 = the
//! bias) and `RemoveEvent` live in the real structure; which tags hold the lock (what a checked
//! build's tracking block would know) is ntsim's side table, so that releases without a
//! matching acquisition are caught on the free layout too.

use std::collections::{HashMap, HashSet};

use crate::machine::Cx;
use crate::ntdef::{
    DISPATCH_LEVEL, IO_REMOVE_LOCK, KernelMode, NTSTATUS, PASSIVE_LEVEL, PVOID,
    STATUS_DELETE_PENDING, STATUS_SUCCESS, SynchronizationEvent, ULONG,
};
use crate::verifier::{Rule, Severity};

/// Pointer to a remove lock.
#[allow(non_camel_case_types)]
pub type PIO_REMOVE_LOCK = *mut IO_REMOVE_LOCK;

/// ntsim's knowledge of one remove lock.
#[derive(Debug, Default)]
struct LockState {
    /// IoReleaseRemoveLockAndWait has run: the lock must not be initialized again.
    waited: bool,
    /// Outstanding acquisitions by tag.
    held: HashMap<usize, u32>,
    /// Tags whose last acquire failed with STATUS_DELETE_PENDING.
    failed: HashSet<usize>,
}

/// Remove locks by address.
#[derive(Debug, Default)]
pub(crate) struct RemoveLockTable {
    locks: HashMap<usize, LockState>,
}

impl RemoveLockTable {
    /// Forgets the locks in `[start, start+len)` (the memory was freed and reused).
    pub(crate) fn forget_range(&mut self, start: usize, len: usize) {
        self.locks.retain(|&a, _| a < start || a >= start + len);
    }
}

/// The real structure.
///
/// # Safety
/// `lock` must point to a remove lock the caller may use.
unsafe fn common<'a>(lock: PIO_REMOVE_LOCK) -> &'a mut IO_REMOVE_LOCK {
    // SAFETY: the caller guarantees a valid lock; only the baton holder touches it.
    unsafe { &mut *lock }
}

fn report(cx: &Cx, severity: Severity, message: String) {
    let mut g = cx.lock();
    let who = g.who(cx.me);
    g.report_as(Rule::RemoveLock, severity, message, vec![who]);
    if severity == Severity::Fatal {
        drop(cx.reschedule(g));
    }
}

/// Initializes a remove lock: not removed, IoCount 1 (the bias), RemoveEvent a non-signalled
/// synchronization event. Initializing a lock again after IoReleaseRemoveLockAndWait is rule
/// C34 (fatal, as under Driver Verifier).
///
/// IRQL: PASSIVE_LEVEL.
///
/// # Safety
/// `lock` must be valid for writes of `remlock_size` (at least the free-build size) bytes.
#[allow(non_snake_case)]
pub unsafe fn IoInitializeRemoveLockEx(
    lock: PIO_REMOVE_LOCK,
    _allocate_tag: ULONG,
    _max_locked_minutes: ULONG,
    _high_watermark: ULONG,
    _remlock_size: ULONG,
) {
    let cx = Cx::get();
    cx.check_irql_at_most("IoInitializeRemoveLock", PASSIVE_LEVEL);
    // SAFETY: the caller guarantees a valid lock; read before it is overwritten.
    let removed = unsafe { (*lock).Common.Removed } == 1;
    let again = {
        let mut g = cx.lock();
        let waited = removed
            && g.iomgr
                .remlocks
                .locks
                .get(&(lock as usize))
                .is_some_and(|s| s.waited);
        g.iomgr
            .remlocks
            .locks
            .insert(lock as usize, LockState::default());
        waited
    };
    if again {
        report(
            &cx,
            Severity::Fatal,
            format!(
                "IoInitializeRemoveLock({:#x}) after IoReleaseRemoveLockAndWait on it",
                lock as usize
            ),
        );
    }
    // SAFETY: the caller guarantees a writable lock.
    let l = unsafe { common(lock) };
    l.Common.Removed = 0;
    l.Common.Reserved = [0; 3];
    l.Common.IoCount = 1;
    // SAFETY: the event is a field of the lock.
    unsafe {
        crate::event::init_event_object(&raw mut l.Common.RemoveEvent, SynchronizationEvent, false)
    };
}

/// `IoInitializeRemoveLock` (the macro over [`IoInitializeRemoveLockEx`]).
///
/// # Safety
/// As [`IoInitializeRemoveLockEx`].
#[allow(non_snake_case)]
pub unsafe fn IoInitializeRemoveLock(
    lock: PIO_REMOVE_LOCK,
    tag: ULONG,
    max_locked_minutes: ULONG,
    high_watermark: ULONG,
) {
    // SAFETY: forwarded caller contract.
    unsafe {
        IoInitializeRemoveLockEx(
            lock,
            tag,
            max_locked_minutes,
            high_watermark,
            size_of::<IO_REMOVE_LOCK>() as ULONG,
        )
    }
}

/// Acquires the lock for `tag`: IoCount++; if the lock was removed, IoCount-- (signalling
/// RemoveEvent if it drained) and STATUS_DELETE_PENDING — the caller must not release.
///
/// IRQL: <= DISPATCH_LEVEL. Returns STATUS_SUCCESS or STATUS_DELETE_PENDING.
///
/// # Safety
/// `lock` must be an initialized remove lock.
#[allow(non_snake_case)]
pub unsafe fn IoAcquireRemoveLockEx(
    lock: PIO_REMOVE_LOCK,
    tag: PVOID,
    _file: *const i8,
    _line: ULONG,
    _remlock_size: ULONG,
) -> NTSTATUS {
    let cx = Cx::get();
    cx.check_irql_at_most("IoAcquireRemoveLock", DISPATCH_LEVEL);
    cx.switch_point();
    // SAFETY: the caller guarantees an initialized lock.
    let l = unsafe { common(lock) };
    l.Common.IoCount += 1;
    let mut g = cx.lock();
    let s = g.iomgr.remlocks.locks.entry(lock as usize).or_default();
    if l.Common.Removed == 0 {
        *s.held.entry(tag as usize).or_insert(0) += 1;
        s.failed.remove(&(tag as usize));
        return STATUS_SUCCESS;
    }
    s.failed.insert(tag as usize);
    l.Common.IoCount -= 1;
    let drained = l.Common.IoCount == 0;
    drop(g);
    if drained {
        crate::event::set_event(&cx, &raw mut l.Common.RemoveEvent as usize);
    }
    STATUS_DELETE_PENDING
}

/// `IoAcquireRemoveLock`.
///
/// # Safety
/// As [`IoAcquireRemoveLockEx`].
#[allow(non_snake_case)]
pub unsafe fn IoAcquireRemoveLock(lock: PIO_REMOVE_LOCK, tag: PVOID) -> NTSTATUS {
    // SAFETY: forwarded caller contract.
    unsafe {
        IoAcquireRemoveLockEx(
            lock,
            tag,
            c"".as_ptr().cast(),
            0,
            size_of::<IO_REMOVE_LOCK>() as ULONG,
        )
    }
}

/// Records the release of one acquisition by `tag`; reports rule C34 if there is none.
fn note_release(cx: &Cx, lock: PIO_REMOVE_LOCK, tag: PVOID, routine: &str) {
    let problem = {
        let mut g = cx.lock();
        let s = g.iomgr.remlocks.locks.entry(lock as usize).or_default();
        let t = tag as usize;
        match s.held.get_mut(&t) {
            Some(n) if *n > 0 => {
                *n -= 1;
                None
            }
            _ if s.failed.remove(&t) => Some(format!(
                "{routine}({:#x}, tag {t:#x}) after IoAcquireRemoveLock failed with STATUS_DELETE_PENDING",
                lock as usize
            )),
            _ => Some(format!(
                "{routine}({:#x}, tag {t:#x}) without a matching IoAcquireRemoveLock",
                lock as usize
            )),
        }
    };
    if let Some(m) = problem {
        report(cx, Severity::Violation, m);
    }
}

/// Drops one from IoCount; signals RemoveEvent when it reaches 0.
fn decrement(cx: &Cx, l: &mut IO_REMOVE_LOCK) -> i32 {
    l.Common.IoCount -= 1;
    let n = l.Common.IoCount;
    if n == 0 {
        crate::event::set_event(cx, &raw mut l.Common.RemoveEvent as usize);
    }
    n
}

/// Releases an acquisition by `tag`: IoCount--, signalling RemoveEvent at 0. Rule C34 for a
/// release without a matching acquisition or after a failed acquire.
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// `lock` must be an initialized remove lock.
#[allow(non_snake_case)]
pub unsafe fn IoReleaseRemoveLockEx(lock: PIO_REMOVE_LOCK, tag: PVOID, _remlock_size: ULONG) {
    let cx = Cx::get();
    cx.check_irql_at_most("IoReleaseRemoveLock", DISPATCH_LEVEL);
    note_release(&cx, lock, tag, "IoReleaseRemoveLock");
    // SAFETY: the caller guarantees an initialized lock.
    decrement(&cx, unsafe { common(lock) });
    cx.switch_point();
}

/// `IoReleaseRemoveLock`.
///
/// # Safety
/// As [`IoReleaseRemoveLockEx`].
#[allow(non_snake_case)]
pub unsafe fn IoReleaseRemoveLock(lock: PIO_REMOVE_LOCK, tag: PVOID) {
    // SAFETY: forwarded caller contract.
    unsafe { IoReleaseRemoveLockEx(lock, tag, size_of::<IO_REMOVE_LOCK>() as ULONG) }
}

/// Marks the lock removed, drops the caller's acquisition and the bias, and waits until every
/// other holder has released (WRK order: wait only if the count is still above 0). Afterwards
/// every acquire fails with STATUS_DELETE_PENDING. Rule C34 above PASSIVE_LEVEL or without an
/// acquisition by `tag`.
///
/// IRQL: PASSIVE_LEVEL.
///
/// # Safety
/// `lock` must be an initialized remove lock.
#[allow(non_snake_case)]
pub unsafe fn IoReleaseRemoveLockAndWaitEx(
    lock: PIO_REMOVE_LOCK,
    tag: PVOID,
    _remlock_size: ULONG,
) {
    let cx = Cx::get();
    let irql = cx.irql();
    if irql > PASSIVE_LEVEL {
        report(
            &cx,
            Severity::Violation,
            format!(
                "IoReleaseRemoveLockAndWait({:#x}) at IRQL {irql}; it requires PASSIVE_LEVEL",
                lock as usize
            ),
        );
    }
    note_release(&cx, lock, tag, "IoReleaseRemoveLockAndWait");
    if let Some(s) = cx.lock().iomgr.remlocks.locks.get_mut(&(lock as usize)) {
        s.waited = true;
    }
    // SAFETY: the caller guarantees an initialized lock.
    let l = unsafe { common(lock) };
    l.Common.Removed = 1;
    l.Common.IoCount -= 1; // the bias
    let left = l.Common.IoCount - 1; // the caller's acquisition
    l.Common.IoCount = left;
    if left > 0 {
        let ev = &raw mut l.Common.RemoveEvent as usize;
        // SAFETY: the remove event is a live synchronization event of the lock.
        unsafe {
            crate::wait::KeWaitForSingleObject(ev as PVOID, 0, KernelMode, 0, std::ptr::null_mut())
        };
    }
}

/// `IoReleaseRemoveLockAndWait`.
///
/// # Safety
/// As [`IoReleaseRemoveLockAndWaitEx`].
#[allow(non_snake_case)]
pub unsafe fn IoReleaseRemoveLockAndWait(lock: PIO_REMOVE_LOCK, tag: PVOID) {
    // SAFETY: forwarded caller contract.
    unsafe { IoReleaseRemoveLockAndWaitEx(lock, tag, size_of::<IO_REMOVE_LOCK>() as ULONG) }
}
