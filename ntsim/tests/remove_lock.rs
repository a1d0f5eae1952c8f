//! IO_REMOVE_LOCK (spec A.17) and rule C34; D-23 (cleanup rundown with the remove lock).

mod iomgr_support;

use iomgr_support::*;
use ntsim::breakpoint::{Breakpoint, Filter, Point};
use ntsim::iomgr::*;
use ntsim::ntdef::*;
use ntsim::remove_lock::*;
use ntsim::thread::SystemThread;
use ntsim::{Config, Kernel, Rule, Severity};

fn new_lock() -> Box<IO_REMOVE_LOCK> {
    let mut l = Box::new(IO_REMOVE_LOCK::zeroed());
    // SAFETY: fresh storage.
    unsafe { IoInitializeRemoveLock(&mut *l, 0, 0, 0) };
    l
}

fn addr(l: &mut IO_REMOVE_LOCK) -> usize {
    l as *mut IO_REMOVE_LOCK as usize
}

fn tag(n: usize) -> PVOID {
    n as PVOID
}

fn acquire(a: usize, t: usize) -> NTSTATUS {
    // SAFETY: the tests pass initialized locks that outlive the call.
    unsafe { IoAcquireRemoveLock(a as _, tag(t)) }
}

#[test]
fn release_and_wait_waits_for_every_holder() {
    let out = Kernel::new(Config::default()).run(|| {
        let mut l = new_lock();
        assert_eq!(l.Common.IoCount, 1);
        let a = addr(&mut l);
        assert_eq!(acquire(a, 1), STATUS_SUCCESS);
        let holder = SystemThread::spawn("holder", move || {
            assert_eq!(acquire(a, 2), STATUS_SUCCESS);
            let mut d = -5_000_000i64;
            // SAFETY: a 0.5 s delay.
            unsafe { ntsim::wait::KeDelayExecutionThread(KernelMode, 0, &mut d) };
            // SAFETY: acquired above.
            unsafe { IoReleaseRemoveLock(a as _, tag(2)) };
        });
        let mut d = -1_000_000i64;
        // SAFETY: a 0.1 s delay: the holder has acquired.
        unsafe { ntsim::wait::KeDelayExecutionThread(KernelMode, 0, &mut d) };
        // SAFETY: acquired with tag 1.
        unsafe { IoReleaseRemoveLockAndWait(a as _, tag(1)) };
        let t = ntsim::iomgr::interrupt_time();
        assert_eq!(acquire(a, 3), STATUS_DELETE_PENDING);
        assert_eq!(l.Common.IoCount, 0);
        assert_eq!(l.Common.Removed, 1);
        holder.join();
        t
    });
    assert_eq!(out.expect_clean(), 5_000_000);
}

fn c34(f: impl FnOnce(usize) + Send + 'static) -> ntsim::Outcome<()> {
    Kernel::new(Config::default()).run(move || {
        let mut l = new_lock();
        let a = addr(&mut l);
        f(a);
        std::mem::forget(l);
    })
}

#[test]
fn c34_release_without_acquire() {
    let out = c34(|a| {
        // SAFETY: an initialized lock.
        unsafe { IoAcquireRemoveLock(a as _, tag(1)) };
        // SAFETY: as above (the wrong tag is the bug under test).
        unsafe { IoReleaseRemoveLock(a as _, tag(2)) };
    });
    let r = out.reports_of(Rule::RemoveLock);
    assert_eq!(r.len(), 1);
    assert!(r[0].message.contains("without a matching"));
}

#[test]
fn c34_release_after_failed_acquire() {
    let out = c34(|a| {
        // SAFETY: an initialized lock.
        unsafe { IoAcquireRemoveLock(a as _, tag(1)) };
        // SAFETY: as above.
        unsafe { IoReleaseRemoveLockAndWait(a as _, tag(1)) };
        assert_eq!(acquire(a, 2), STATUS_DELETE_PENDING);
        // SAFETY: as above (the bug under test).
        unsafe { IoReleaseRemoveLock(a as _, tag(2)) };
    });
    let r = out.reports_of(Rule::RemoveLock);
    assert_eq!(r.len(), 1);
    assert!(r[0].message.contains("failed"));
}

#[test]
fn c34_release_and_wait_without_acquisition_or_above_passive() {
    let out = c34(|a| {
        // SAFETY: an initialized lock (no acquisition: the bug under test).
        unsafe { IoReleaseRemoveLockAndWait(a as _, tag(1)) };
    });
    assert_eq!(out.reports_of(Rule::RemoveLock).len(), 1);
    let out = c34(|a| {
        // SAFETY: an initialized lock.
        unsafe { IoAcquireRemoveLock(a as _, tag(1)) };
        let old = ntsim::irql::KfRaiseIrql(APC_LEVEL);
        // SAFETY: as above (APC_LEVEL is the bug under test).
        unsafe { IoReleaseRemoveLockAndWait(a as _, tag(1)) };
        ntsim::irql::KeLowerIrql(old);
    });
    let r = out.reports_of(Rule::RemoveLock);
    assert_eq!(r.len(), 1);
    assert!(r[0].message.contains("IRQL"));
}

#[test]
fn c34_reinitialize_after_release_and_wait_is_fatal() {
    let out = c34(|a| {
        // SAFETY: an initialized lock.
        unsafe { IoAcquireRemoveLock(a as _, tag(1)) };
        // SAFETY: as above.
        unsafe { IoReleaseRemoveLockAndWait(a as _, tag(1)) };
        // SAFETY: as above (the bug under test).
        unsafe { IoInitializeRemoveLock(a as _, 0, 0, 0) };
    });
    let stop = out.stop.expect("fatal");
    assert_eq!(stop.rule, Rule::RemoveLock);
    assert_eq!(stop.severity, Severity::Fatal);
}

#[test]
fn c34_right_usage_is_clean() {
    c34(|a| {
        for t in 1..4 {
            assert_eq!(acquire(a, t), STATUS_SUCCESS);
        }
        for t in 2..4 {
            // SAFETY: acquired above.
            unsafe { IoReleaseRemoveLock(a as _, tag(t)) };
        }
        // SAFETY: tag 1 is still held.
        unsafe { IoReleaseRemoveLockAndWait(a as _, tag(1)) };
    })
    .expect_clean();
}

/// Spec D-23: a dispatch routine is inside the remove lock (sleeping) when another thread
/// closes the handle: cleanup waits for it to return, then cancels the request it queued; a
/// dispatch arriving after the rundown completes with STATUS_DELETE_PENDING.
#[test]
fn cleanup_runs_down_dispatch_in_progress() {
    let out = Kernel::new(Config::default()).run(|| {
        let (_drv, dev) = load();
        let p = Process::create("app");
        let slot = std::sync::Arc::new(std::sync::Mutex::new(None));
        let s1 = slot.clone();
        p.spawn_thread("opener", move || {
            *s1.lock().unwrap() = Some(create_file(NAME, OpenMode::Overlapped).expect("open"));
        })
        .join();
        let h = slot.lock().unwrap().expect("open");
        let results = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let r1 = results.clone();
        let a = p.spawn_thread("a", move || {
            let r = device_io_control(h, IOCTL_DELAY_PEND, &[], 0).expect("ioctl");
            r1.lock().unwrap().push(r);
        });
        let mut d = -200_000i64;
        // SAFETY: 20 ms: a is asleep inside the remove lock.
        unsafe { ntsim::wait::KeDelayExecutionThread(KernelMode, 0, &mut d) };
        // Thread c will be stopped just before its dispatch routine runs.
        let bp = Breakpoint::set(Point::DispatchEntry, Filter::Any);
        let r2 = results.clone();
        let c = p.spawn_thread("c", move || {
            let r = device_io_control(h, IOCTL_PEND, &[], 0).expect("ioctl");
            r2.lock().unwrap().push(r);
        });
        bp.wait_hit();
        let b = p.spawn_thread("b", move || {
            close_handle(h);
        });
        b.join();
        let closed_at = ntsim::iomgr::interrupt_time();
        bp.clear();
        a.join();
        c.join();
        let rs = results.lock().unwrap().clone();
        let a_info = rs[0].info();
        assert!(a_info.pending);
        assert_eq!(a_info.status, Some(STATUS_CANCELLED));
        assert_eq!(
            a_info.completed_at,
            Some(1_000_000),
            "cancelled by cleanup after the sleep"
        );
        assert_eq!(
            closed_at, 1_000_000,
            "cleanup waited for the dispatch to leave"
        );
        assert_eq!(rs[1].info().status, Some(STATUS_DELETE_PENDING));
        p.terminate();
        p.wait();
        assert_eq!(device_refs(dev), 0);
    });
    out.expect_clean();
}
