//! First checks of the machine: threads, events, timers, DPCs, virtual time, fatal stops.

use ntsim::dpc::*;
use ntsim::event::*;
use ntsim::ntdef::*;
use ntsim::thread::SystemThread;
use ntsim::timer::*;
use ntsim::wait::*;
use ntsim::{Config, Kernel, Rule};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

fn event() -> Box<KEVENT> {
    let mut e = Box::new(KEVENT::zeroed());
    // SAFETY: fresh storage.
    unsafe { KeInitializeEvent(&mut *e, NotificationEvent, 0) };
    e
}

#[test]
fn thread_waits_for_event_set_by_another_thread() {
    let out = Kernel::new(Config::default()).run(|| {
        let e = event();
        let addr = &*e as *const KEVENT as usize;
        let t = SystemThread::spawn("setter", move || {
            // SAFETY: the event outlives the thread (main joins it first).
            unsafe { KeSetEvent(addr as *mut KEVENT, 0, 0) };
        });
        // SAFETY: live event.
        let s =
            unsafe { KeWaitForSingleObject(addr as PVOID, 0, KernelMode, 0, std::ptr::null_mut()) };
        t.join();
        s
    });
    assert_eq!(out.expect_clean(), STATUS_SUCCESS);
}

#[test]
fn wait_times_out_in_virtual_time() {
    let out = Kernel::new(Config::default()).run(|| {
        let e = event();
        let mut timeout: i64 = -10_000_000; // 1 s
        // SAFETY: live event and timeout.
        unsafe {
            KeWaitForSingleObject(
                &*e as *const KEVENT as PVOID,
                0,
                KernelMode,
                0,
                &mut timeout,
            )
        }
    });
    assert_eq!(out.time, 10_000_000);
    assert_eq!(out.expect_clean(), STATUS_TIMEOUT);
}

static DPC_RUNS: AtomicU64 = AtomicU64::new(0);

unsafe extern "system" fn count_dpc(_d: *mut KDPC, ctx: PVOID, _a: PVOID, _b: PVOID) {
    assert_eq!(ntsim::irql::KeGetCurrentIrql(), DISPATCH_LEVEL);
    let e = ctx as *mut KEVENT;
    DPC_RUNS.fetch_add(1, Ordering::SeqCst);
    // SAFETY: the context is the test's live event.
    unsafe { KeSetEvent(e, 0, 0) };
}

#[test]
fn timer_dpc_runs_at_due_time() {
    let out = Kernel::new(Config::default()).run(|| {
        let e = event();
        let mut t = Box::new(KTIMER::zeroed());
        let mut d = Box::new(KDPC::zeroed());
        // SAFETY: fresh storage, kept alive until after the wait.
        unsafe {
            KeInitializeTimer(&mut *t);
            KeInitializeDpc(&mut *d, Some(count_dpc), &*e as *const KEVENT as PVOID);
            assert_eq!(KeSetTimer(&mut *t, -5_000_000, &mut *d), 0);
            assert_eq!(KeSetTimer(&mut *t, -5_000_000, &mut *d), 1);
            KeWaitForSingleObject(
                &*e as *const KEVENT as PVOID,
                0,
                KernelMode,
                0,
                std::ptr::null_mut(),
            );
            assert_eq!(KeReadStateTimer(&mut *t), 1);
            assert_eq!(KeCancelTimer(&mut *t), 0);
        }
        Arc::new(())
    });
    assert_eq!(out.time, 5_000_000);
    out.expect_clean();
}

#[test]
fn waiting_at_dispatch_level_is_fatal() {
    let out = Kernel::new(Config::default()).run(|| {
        let e = event();
        let _old = ntsim::irql::KeRaiseIrqlToDpcLevel();
        // SAFETY: live event.
        unsafe {
            KeWaitForSingleObject(
                &*e as *const KEVENT as PVOID,
                0,
                KernelMode,
                0,
                std::ptr::null_mut(),
            )
        };
        unreachable!("the machine halts at the illegal wait");
    });
    let stop = out.stop.expect("fatal stop");
    assert_eq!(stop.rule, Rule::IllegalWait);
    assert!(out.value.is_none());
}

#[test]
fn deadlock_is_reported() {
    let out = Kernel::new(Config::default()).run(|| {
        let e = event();
        // SAFETY: live event that nobody sets.
        unsafe {
            KeWaitForSingleObject(
                &*e as *const KEVENT as PVOID,
                0,
                KernelMode,
                0,
                std::ptr::null_mut(),
            )
        };
    });
    assert_eq!(out.stop.expect("stop").rule, Rule::Deadlock);
}
