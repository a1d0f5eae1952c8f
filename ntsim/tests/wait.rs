//! Waits and delays: spec A.16, rule C16, and the machine's Deadlock stop.

mod support;

use ntsim::Rule;
use ntsim::clock::BOOT_SYSTEM_TIME;
use ntsim::event::KeSetEvent;
use ntsim::irql::{KeLowerIrql, KfRaiseIrql};
use ntsim::ntdef::*;
use ntsim::spinlock::{KeAcquireSpinLockRaiseToDpc, KeReleaseSpinLock};
use ntsim::thread::SystemThread;
use ntsim::wait::*;
use support::*;

fn wait_multiple(objs: &[PVOID], wait_type: u32, timeout: Option<i64>) -> NTSTATUS {
    let mut t = timeout.unwrap_or(0);
    let tp: *mut i64 = if timeout.is_some() {
        &mut t
    } else {
        std::ptr::null_mut()
    };
    // SAFETY: the objects are leaked dispatcher objects; `tp` is NULL or points to `t`.
    unsafe {
        KeWaitForMultipleObjects(
            objs.len() as u32,
            objs.as_ptr(),
            wait_type,
            0,
            KernelMode,
            0,
            tp,
            std::ptr::null_mut(),
        )
    }
}

fn set(e: P<KEVENT>) {
    // SAFETY: leaked event.
    unsafe { KeSetEvent(e.get(), 0, 0) };
}

#[test]
fn wait_any_returns_wait_0_plus_the_index_of_the_first_signalled_object() {
    let out = run(|| {
        let e: Vec<P<KEVENT>> = (0..3).map(|_| event(NotificationEvent, false)).collect();
        let objs: Vec<PVOID> = e.iter().map(|e| e.pv()).collect();
        set(e[2]);
        set(e[1]);
        assert_eq!(wait_multiple(&objs, WaitAny, None), STATUS_WAIT_0 + 1);
        // Blocking: woken by the only object that becomes signalled.
        let f: Vec<P<KEVENT>> = (0..3).map(|_| event(SynchronizationEvent, false)).collect();
        let fobjs: Vec<PVOID> = f.iter().map(|e| e.pv()).collect();
        let f2 = f[2];
        let t = SystemThread::spawn("setter", move || {
            sleep(5 * MS);
            set(f2);
        });
        let s = wait_multiple(&fobjs, WaitAny, None);
        t.join();
        assert_eq!(signal_state(f2), 0, "consumed by the wait");
        s
    });
    assert_eq!(out.time, 5 * MS);
    assert_eq!(out.expect_clean(), STATUS_WAIT_0 + 2);
}

#[test]
fn wait_all_returns_when_every_object_is_signalled_and_consumes_them_together() {
    let out = run(|| {
        let sync = event(SynchronizationEvent, true);
        let notif = event(NotificationEvent, false);
        let objs = [sync.pv(), notif.pv()];
        assert_eq!(wait_multiple(&objs, WaitAll, Some(0)), STATUS_TIMEOUT);
        assert_eq!(signal_state(sync), 1, "nothing consumed");
        let t = SystemThread::spawn("setter", move || {
            sleep(3 * MS);
            set(notif);
        });
        assert_eq!(wait_multiple(&objs, WaitAll, None), STATUS_SUCCESS);
        t.join();
        (signal_state(sync), signal_state(notif))
    });
    assert_eq!(out.time, 3 * MS);
    assert_eq!(out.expect_clean(), (0, 1));
}

#[test]
fn relative_and_absolute_timeouts_expire_exactly() {
    let out = run(|| {
        let e = event(NotificationEvent, false);
        assert_eq!(wait(e, Some(-(7 * MS as i64))), STATUS_TIMEOUT);
        assert_eq!(ntsim::clock::KeQueryInterruptTime(), 7 * MS);
        let absolute = (BOOT_SYSTEM_TIME + 20 * MS) as i64;
        assert_eq!(wait(e, Some(absolute)), STATUS_TIMEOUT);
        let objs = [e.pv()];
        assert_eq!(
            wait_multiple(&objs, WaitAny, Some(-(MS as i64))),
            STATUS_TIMEOUT
        );
    });
    assert_eq!(out.time, 21 * MS);
    out.expect_clean();
}

#[test]
fn signalled_wait_ends_before_its_timeout() {
    let out = run(|| {
        let e = event(NotificationEvent, false);
        let t = SystemThread::spawn("setter", move || {
            sleep(2 * MS);
            set(e);
        });
        let s = wait(e, Some(-(100 * MS as i64)));
        t.join();
        sleep(200 * MS); // the cancelled timeout must not fire into a later wait
        s
    });
    assert_eq!(out.time, 202 * MS);
    assert_eq!(out.expect_clean(), STATUS_SUCCESS);
}

#[test]
fn poll_at_dispatch_level_is_legal() {
    let out = run(|| {
        let e = event(NotificationEvent, false);
        let old = KfRaiseIrql(DISPATCH_LEVEL);
        let s = wait(e, Some(0));
        KeLowerIrql(old);
        s
    });
    assert_eq!(out.expect_clean(), STATUS_TIMEOUT);
}

#[test]
fn waits_at_apc_level_are_legal() {
    let out = run(|| {
        let e = event(NotificationEvent, false);
        let old = KfRaiseIrql(APC_LEVEL);
        let s = wait(e, Some(-(MS as i64)));
        sleep(MS);
        KeLowerIrql(old);
        s
    });
    assert_eq!(out.expect_clean(), STATUS_TIMEOUT);
}

#[test]
fn infinite_wait_at_dispatch_level_is_fatal() {
    let out = run(|| {
        let e = event(NotificationEvent, false);
        KfRaiseIrql(DISPATCH_LEVEL);
        wait(e, None);
        unreachable!("the machine halts at the illegal wait");
    });
    assert_eq!(out.stop.expect("fatal stop").rule, Rule::IllegalWait);
    assert!(out.value.is_none());
}

#[test]
fn timed_wait_at_dispatch_level_is_fatal() {
    let out = run(|| {
        let e = event(NotificationEvent, false);
        KfRaiseIrql(DISPATCH_LEVEL);
        wait(e, Some(-(MS as i64)));
        unreachable!("the machine halts at the illegal wait");
    });
    assert_eq!(out.stop.expect("fatal stop").rule, Rule::IllegalWait);
}

#[test]
fn wait_holding_a_spin_lock_is_fatal_even_as_a_poll() {
    let out = run(|| {
        let e = event(NotificationEvent, true);
        let lock = spin_lock();
        // SAFETY: leaked lock.
        let _old = unsafe { KeAcquireSpinLockRaiseToDpc(lock.get()) };
        wait(e, Some(0));
        unreachable!("the machine halts at the illegal wait");
    });
    assert_eq!(out.stop.expect("fatal stop").rule, Rule::IllegalWait);
}

#[test]
fn poll_after_releasing_the_spin_lock_is_clean() {
    let out = run(|| {
        let e = event(NotificationEvent, true);
        let lock = spin_lock();
        // SAFETY: leaked lock.
        let old = unsafe { KeAcquireSpinLockRaiseToDpc(lock.get()) };
        // SAFETY: held, with the IRQL its acquire returned.
        unsafe { KeReleaseSpinLock(lock.get(), old) };
        wait(e, Some(0))
    });
    assert_eq!(out.expect_clean(), STATUS_SUCCESS);
}

#[test]
fn delay_execution_advances_virtual_time_exactly() {
    let out = run(|| {
        assert_eq!(sleep(1_234_567), STATUS_SUCCESS);
        let mut zero = 0i64;
        // SAFETY: valid interval.
        let s = unsafe { KeDelayExecutionThread(KernelMode, 0, &mut zero) };
        assert_eq!(s, STATUS_SUCCESS);
        ntsim::clock::KeQueryInterruptTime()
    });
    assert_eq!(out.time, 1_234_567);
    assert_eq!(out.expect_clean(), 1_234_567);
}

#[test]
fn delay_execution_above_apc_level_is_fatal() {
    let out = run(|| {
        KfRaiseIrql(DISPATCH_LEVEL);
        sleep(MS);
        unreachable!("the machine halts at the illegal delay");
    });
    assert_eq!(out.stop.expect("fatal stop").rule, Rule::IllegalWait);
}

#[test]
fn delay_execution_at_apc_level_is_clean() {
    let out = run(|| {
        let old = KfRaiseIrql(APC_LEVEL);
        sleep(MS);
        KeLowerIrql(old);
    });
    out.expect_clean();
}

#[test]
fn waiting_for_an_event_nobody_sets_is_a_deadlock() {
    let out = run(|| {
        let e = event(NotificationEvent, false);
        wait(e, None);
    });
    assert_eq!(out.stop.expect("stop").rule, Rule::Deadlock);
}

#[test]
fn thread_waits_for_an_event_set_by_another_thread() {
    let out = run(|| {
        let e = event(NotificationEvent, false);
        let t = SystemThread::spawn("setter", move || set(e));
        let s = wait(e, None);
        t.join();
        s
    });
    assert_eq!(out.expect_clean(), STATUS_SUCCESS);
}
