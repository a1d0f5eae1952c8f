//! Events: spec A.14, spec E's KeEvent, and rules C19 and C20 for KeSetEvent.

mod support;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use ntsim::event::*;
use ntsim::irql::{KeGetCurrentIrql, KeLowerIrql, KfRaiseIrql};
use ntsim::ntdef::*;
use ntsim::thread::SystemThread;
use ntsim::wait::{KeWaitForMultipleObjects, WaitAll};
use ntsim::{Rule, Severity};
use support::*;

fn set(e: P<KEVENT>) -> i32 {
    // SAFETY: leaked, initialized event.
    unsafe { KeSetEvent(e.get(), 0, 0) }
}

fn read(e: P<KEVENT>) -> i32 {
    // SAFETY: leaked, initialized event.
    unsafe { KeReadStateEvent(e.get()) }
}

#[test]
fn initial_states_and_types() {
    let out = run(|| {
        for (ty, object) in [
            (NotificationEvent, EventNotificationObject),
            (SynchronizationEvent, EventSynchronizationObject),
        ] {
            for initial in [false, true] {
                let e = event(ty, initial);
                // SAFETY: leaked event.
                let h = unsafe { (*e.get()).Header };
                assert_eq!(h.Type, object);
                assert_eq!(h.Size as usize, size_of::<KEVENT>() / 4);
                assert_eq!(read(e), i32::from(initial));
            }
        }
    });
    out.expect_clean();
}

#[test]
fn set_reset_and_pulse_return_the_previous_state() {
    let out = run(|| {
        let e = event(NotificationEvent, false);
        assert_eq!(set(e), 0);
        assert_eq!(set(e), 1);
        // SAFETY: leaked event.
        assert_eq!(unsafe { KeResetEvent(e.get()) }, 1);
        // SAFETY: leaked event.
        assert_eq!(unsafe { KeResetEvent(e.get()) }, 0);
        // SAFETY: leaked event.
        assert_eq!(unsafe { KePulseEvent(e.get(), 0, 0) }, 0);
        assert_eq!(read(e), 0, "a pulse leaves the event reset");
        set(e);
        // SAFETY: leaked event.
        unsafe { KeClearEvent(e.get()) };
        assert_eq!(read(e), 0);
        // An arbitrary previous value is returned as it was.
        // SAFETY: leaked event, no waiters.
        unsafe { (*e.get()).Header.SignalState = 0x1234 };
        assert_eq!(set(e), 0x1234);
        // SAFETY: as above.
        unsafe { (*e.get()).Header.SignalState = 0x55 };
        // SAFETY: leaked event.
        assert_eq!(unsafe { KeResetEvent(e.get()) }, 0x55);
        // SAFETY: as above.
        unsafe { (*e.get()).Header.SignalState = 7 };
        // SAFETY: leaked event.
        assert_eq!(unsafe { KePulseEvent(e.get(), 0, 0) }, 7);
    });
    out.expect_clean();
}

#[test]
fn set_event_with_wait_true_stays_at_dispatch_until_the_wait() {
    let out = run(|| {
        let e = event(NotificationEvent, false);
        let other = event(NotificationEvent, true);
        // SAFETY: leaked event.
        assert_eq!(unsafe { KeSetEvent(e.get(), 0, 1) }, 0);
        assert_eq!(KeGetCurrentIrql(), DISPATCH_LEVEL);
        // The very next call is a wait: legal although the IRQL is DISPATCH_LEVEL.
        assert_eq!(wait(other, None), STATUS_SUCCESS);
        KeGetCurrentIrql()
    });
    assert_eq!(out.expect_clean(), PASSIVE_LEVEL);
}

#[test]
fn set_event_with_wait_true_not_followed_by_a_wait_is_a_violation() {
    let out = run(|| {
        let e = event(NotificationEvent, false);
        // SAFETY: leaked event.
        unsafe { KeSetEvent(e.get(), 0, 1) };
        set(e); // not a wait
        KeGetCurrentIrql()
    });
    let r = out.reports_of(Rule::WaitNext);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].severity, Severity::Violation);
    assert_eq!(out.value, Some(PASSIVE_LEVEL), "the saved IRQL is restored");
}

#[test]
fn set_event_with_wait_true_at_dispatch_then_infinite_wait_is_fatal() {
    let out = run(|| {
        let e = event(NotificationEvent, false);
        let old = KfRaiseIrql(DISPATCH_LEVEL);
        // SAFETY: leaked event.
        unsafe { KeSetEvent(e.get(), 0, 1) };
        // The wait returns to DISPATCH_LEVEL, where only a poll is legal (rule C16).
        wait(e, None);
        KeLowerIrql(old);
    });
    assert_eq!(out.stop.expect("fatal stop").rule, Rule::IllegalWait);
}

/// Starts five waiters, one after another, so that they wait in index order; each appends its
/// index to `woken` when its wait returns.
fn five_waiters(e: P<KEVENT>, woken: P<Mutex<Vec<u32>>>) -> Vec<SystemThread> {
    (0..5u32)
        .map(|i| {
            let t = SystemThread::spawn(&format!("waiter{i}"), move || {
                assert_eq!(wait(e, None), STATUS_SUCCESS);
                // SAFETY: leaked log.
                unsafe { &*woken.get() }.lock().unwrap().push(i);
            });
            sleep(MS); // let it reach its wait
            t
        })
        .collect()
}

fn woken_list(w: P<Mutex<Vec<u32>>>) -> Vec<u32> {
    // SAFETY: leaked log.
    unsafe { &*w.get() }.lock().unwrap().clone()
}

#[test]
fn notification_set_wakes_all_five_waiters_and_stays_signalled() {
    let out = run(|| {
        let e = event(NotificationEvent, false);
        let woken = leak(Mutex::new(Vec::new()));
        let threads = five_waiters(e, woken);
        assert!(woken_list(woken).is_empty());
        set(e);
        sleep(MS);
        assert_eq!(woken_list(woken).len(), 5);
        assert_eq!(read(e), 1);
        threads.into_iter().for_each(SystemThread::join);
    });
    out.expect_clean();
}

#[test]
fn notification_pulse_wakes_all_five_waiters_and_resets() {
    let out = run(|| {
        let e = event(NotificationEvent, false);
        let woken = leak(Mutex::new(Vec::new()));
        let threads = five_waiters(e, woken);
        // SAFETY: leaked event.
        assert_eq!(unsafe { KePulseEvent(e.get(), 0, 0) }, 0);
        assert_eq!(read(e), 0);
        sleep(MS);
        assert_eq!(woken_list(woken).len(), 5);
        threads.into_iter().for_each(SystemThread::join);
    });
    out.expect_clean();
}

#[test]
fn synchronization_set_wakes_exactly_one_waiter_per_call_in_fifo_order() {
    let out = run(|| {
        let e = event(SynchronizationEvent, false);
        let woken = leak(Mutex::new(Vec::new()));
        let threads = five_waiters(e, woken);
        for k in 0..5u32 {
            assert_eq!(set(e), 0);
            assert_eq!(read(e), 0, "the released wait consumed the signal");
            sleep(MS);
            assert_eq!(woken_list(woken), (0..=k).collect::<Vec<_>>());
        }
        threads.into_iter().for_each(SystemThread::join);
    });
    out.expect_clean();
}

#[test]
fn synchronization_pulse_wakes_exactly_one_waiter() {
    let out = run(|| {
        let e = event(SynchronizationEvent, false);
        let woken = leak(Mutex::new(Vec::new()));
        let threads = five_waiters(e, woken);
        // SAFETY: leaked event.
        unsafe { KePulseEvent(e.get(), 0, 0) };
        sleep(MS);
        assert_eq!(woken_list(woken), vec![0]);
        for _ in 1..5 {
            set(e);
        }
        threads.into_iter().for_each(SystemThread::join);
    });
    out.expect_clean();
}

#[test]
fn synchronization_event_set_without_waiters_stays_set_until_one_wait() {
    let out = run(|| {
        let e = event(SynchronizationEvent, false);
        set(e);
        assert_eq!(wait(e, Some(0)), STATUS_SUCCESS);
        assert_eq!(
            wait(e, Some(0)),
            STATUS_TIMEOUT,
            "auto-reset by the first wait"
        );
    });
    out.expect_clean();
}

#[test]
fn notification_set_satisfies_wait_all_of_five_threads() {
    let out = run(|| {
        let a = event(NotificationEvent, false);
        let b = event(NotificationEvent, true);
        let done = leak(AtomicU32::new(0));
        let threads: Vec<SystemThread> = (0..5)
            .map(|i| {
                SystemThread::spawn(&format!("all{i}"), move || {
                    let objs = [a.pv(), b.pv()];
                    // SAFETY: two leaked events; infinite wait at PASSIVE_LEVEL.
                    let s = unsafe {
                        KeWaitForMultipleObjects(
                            2,
                            objs.as_ptr(),
                            WaitAll,
                            0,
                            KernelMode,
                            0,
                            std::ptr::null_mut(),
                            std::ptr::null_mut(),
                        )
                    };
                    assert_eq!(s, STATUS_SUCCESS);
                    // SAFETY: leaked counter.
                    unsafe { &*done.get() }.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        sleep(MS);
        set(a);
        threads.into_iter().for_each(SystemThread::join);
        // SAFETY: leaked counter.
        unsafe { &*done.get() }.load(Ordering::SeqCst)
    });
    assert_eq!(out.expect_clean(), 5);
}

// Rule C19: KeSetEvent above DISPATCH_LEVEL.

#[test]
fn set_event_above_dispatch_level_is_a_violation() {
    let out = run(|| {
        let e = event(NotificationEvent, false);
        let old = KfRaiseIrql(HIGH_LEVEL);
        set(e);
        KeLowerIrql(old);
    });
    let r = out.reports_of(Rule::ApiIrql);
    assert_eq!(r.len(), 1);
    assert!(r[0].message.contains("KeSetEvent"));
}

#[test]
fn set_event_at_dispatch_level_is_clean() {
    let out = run(|| {
        let e = event(NotificationEvent, false);
        let old = KfRaiseIrql(DISPATCH_LEVEL);
        set(e);
        KeLowerIrql(old);
    });
    out.expect_clean();
}
