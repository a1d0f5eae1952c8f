//! Timers: spec A.12 (set, cancel, expiry, periodic, re-arming), spec E's KeTimer and rule C19.

mod support;

use ntsim::breakpoint::{Breakpoint, Filter, Point};
use ntsim::clock::BOOT_SYSTEM_TIME;
use ntsim::irql::{KeLowerIrql, KfRaiseIrql};
use ntsim::ntdef::*;
use ntsim::thread::SystemThread;
use ntsim::timer::*;
use ntsim::{Rule, Severity};
use support::*;

fn set(t: P<KTIMER>, due: i64, d: Option<P<KDPC>>) -> u8 {
    let dp = d.map_or(std::ptr::null_mut(), |d| d.get());
    // SAFETY: leaked, initialized timer and DPC.
    unsafe { KeSetTimer(t.get(), due, dp) }
}

fn cancel(t: P<KTIMER>) -> u8 {
    // SAFETY: leaked, initialized timer.
    unsafe { KeCancelTimer(t.get()) }
}

fn state(t: P<KTIMER>) -> u8 {
    // SAFETY: leaked, initialized timer.
    unsafe { KeReadStateTimer(t.get()) }
}

#[test]
fn initialize_timer_at_every_irql_up_to_high() {
    let out = run(|| {
        for level in [PASSIVE_LEVEL, APC_LEVEL, DISPATCH_LEVEL, HIGH_LEVEL] {
            for (ty, object) in [
                (NotificationTimer, TimerNotificationObject),
                (SynchronizationTimer, TimerSynchronizationObject),
            ] {
                let old = KfRaiseIrql(level);
                let t = timer(ty);
                KeLowerIrql(old);
                // SAFETY: leaked, initialized timer.
                let k = unsafe { *t.get() };
                assert_eq!(k.Header.Type, object);
                assert_eq!(k.Header.Size as usize, size_of::<KTIMER>() / 4);
                assert_eq!(k.Header.SignalState, 0);
                let head = t
                    .get()
                    .cast::<u8>()
                    .wrapping_add(std::mem::offset_of!(DISPATCHER_HEADER, WaitListHead))
                    .cast::<LIST_ENTRY>()
                    .cast_const();
                assert_eq!(
                    k.Header.WaitListHead.Flink as *const _, head,
                    "empty wait list"
                );
                assert_eq!(k.Header.WaitListHead.Blink as *const _, head);
                assert_eq!((k.DueTime, k.Period), (0, 0));
                assert!(k.Dpc.is_null());
                assert_eq!(state(t), 0);
            }
        }
    });
    out.expect_clean();
}

#[test]
fn set_timer_returns_true_iff_the_timer_was_already_set() {
    let out = run(|| {
        let t = timer(NotificationTimer);
        assert_eq!(set(t, -10 * MS as i64, None), 0);
        assert_eq!(
            set(t, -10 * MS as i64, None),
            1,
            "re-setting cancels the pending expiry"
        );
        sleep(20 * MS);
        assert_eq!(state(t), 1);
        assert_eq!(
            set(t, -10 * MS as i64, None),
            0,
            "it fired: not set any more"
        );
        assert_eq!(state(t), 0, "setting resets the signal state");
        cancel(t);
    });
    out.expect_clean();
}

#[test]
fn cancel_true_means_the_expiry_and_its_dpc_never_happen() {
    let out = run(|| {
        let log = Log::new();
        let d = logging_dpc(log);
        let t = timer(NotificationTimer);
        set(t, -10 * MS as i64, Some(d));
        assert_eq!(cancel(t), 1);
        assert_eq!(cancel(t), 0, "already cancelled");
        sleep(50 * MS);
        assert!(calls(log).is_empty());
        assert_eq!(state(t), 0);
    });
    assert_eq!(out.time, 50 * MS);
    out.expect_clean();
}

#[test]
fn cancel_after_expiry_returns_false_and_keeps_the_signal() {
    let out = run(|| {
        let log = Log::new();
        let d = logging_dpc(log);
        let t = timer(NotificationTimer);
        set(t, -10 * MS as i64, Some(d));
        sleep(11 * MS);
        let c = calls(log);
        assert_eq!(c.len(), 1);
        assert_eq!(
            c[0].time,
            10 * MS,
            "expiry at the due time exactly (virtual time)"
        );
        assert_eq!(c[0].irql, DISPATCH_LEVEL);
        let system = (c[0].a1 as u64) | ((c[0].a2 as u64) << 32);
        assert_eq!(
            system,
            BOOT_SYSTEM_TIME + 10 * MS,
            "arguments carry the system time"
        );
        assert_eq!(cancel(t), 0);
        assert_eq!(state(t), 1, "KeCancelTimer never changes the signal state");
    });
    out.expect_clean();
}

#[test]
fn zero_due_time_signals_at_once_and_queues_the_dpc() {
    let out = run(|| {
        let log = Log::new();
        let d = logging_dpc(log);
        let t = timer(NotificationTimer);
        let old = KfRaiseIrql(DISPATCH_LEVEL);
        assert_eq!(set(t, 0, Some(d)), 0);
        assert_eq!(state(t), 1);
        assert!(dpc_queued(d), "queued, not called directly");
        assert!(
            calls(log).is_empty(),
            "runs once the CPU drops below DISPATCH_LEVEL"
        );
        assert_eq!(cancel(t), 0, "not inserted");
        KeLowerIrql(old);
        assert_eq!(calls(log).len(), 1);
    });
    assert_eq!(out.time, 0);
    out.expect_clean();
}

#[test]
fn immediately_expired_timer_dpc_can_still_be_removed_from_the_queue() {
    let out = run(|| {
        let log = Log::new();
        let d = logging_dpc(log);
        let t = timer(NotificationTimer);
        let old = KfRaiseIrql(DISPATCH_LEVEL);
        set(t, 0, Some(d));
        // SAFETY: leaked DPC.
        assert_eq!(unsafe { ntsim::dpc::KeRemoveQueueDpc(d.get()) }, 1);
        KeLowerIrql(old);
        assert!(calls(log).is_empty());
    });
    out.expect_clean();
}

#[test]
fn positive_due_time_is_absolute_system_time() {
    let out = run(|| {
        let log = Log::new();
        let d = logging_dpc(log);
        let t = timer(NotificationTimer);
        set(t, (BOOT_SYSTEM_TIME + 30 * MS) as i64, Some(d));
        assert_eq!(wait(t, None), STATUS_SUCCESS);
        let at = calls(log)[0].time;
        // An absolute time already past expires at once.
        let t2 = timer(NotificationTimer);
        set(t2, (BOOT_SYSTEM_TIME + MS) as i64, None);
        assert_eq!(state(t2), 1);
        at
    });
    assert_eq!(out.expect_clean(), 30 * MS);
}

#[test]
fn periodic_timer_fires_every_period_until_cancelled() {
    let out = run(|| {
        let log = Log::new();
        let d = logging_dpc(log);
        let t = timer(SynchronizationTimer);
        // SAFETY: leaked timer and DPC.
        unsafe { KeSetTimerEx(t.get(), -10 * MS as i64, 5, d.get()) };
        for _ in 0..4 {
            assert_eq!(wait(t, None), STATUS_SUCCESS);
        }
        assert_eq!(cancel(t), 1, "a periodic timer is always inserted");
        sleep(100 * MS);
        calls(log).iter().map(|c| c.time / MS).collect::<Vec<_>>()
    });
    assert_eq!(out.expect_clean(), vec![10, 15, 20, 25]);
}

#[test]
fn notification_timer_stays_signalled_and_releases_every_waiter() {
    let out = run(|| {
        let t = timer(NotificationTimer);
        set(t, -5 * MS as i64, None);
        let waiters: Vec<SystemThread> = (0..3)
            .map(|i| {
                SystemThread::spawn(&format!("waiter{i}"), move || {
                    assert_eq!(wait(t, None), STATUS_SUCCESS);
                })
            })
            .collect();
        for w in waiters {
            w.join();
        }
        assert_eq!(state(t), 1);
        assert_eq!(wait(t, Some(0)), STATUS_SUCCESS, "still signalled");
    });
    assert_eq!(out.time, 5 * MS);
    out.expect_clean();
}

#[test]
fn synchronization_timer_releases_one_waiter_per_expiry() {
    let out = run(|| {
        let t = timer(SynchronizationTimer);
        let done = leak(std::sync::atomic::AtomicU32::new(0));
        let waiters: Vec<SystemThread> = (0..2)
            .map(|i| {
                SystemThread::spawn(&format!("waiter{i}"), move || {
                    assert_eq!(wait(t, None), STATUS_SUCCESS);
                    // SAFETY: leaked counter.
                    unsafe { &*done.get() }.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                })
            })
            .collect();
        set(t, -5 * MS as i64, None);
        sleep(10 * MS);
        // SAFETY: leaked counter.
        let after_one = unsafe { &*done.get() }.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(after_one, 1);
        assert_eq!(state(t), 0, "consumed by the released waiter");
        set(t, -5 * MS as i64, None);
        for w in waiters {
            w.join();
        }
    });
    assert_eq!(out.time, 15 * MS);
    out.expect_clean();
}

#[test]
fn fired_timer_dpc_cannot_be_stopped_by_remove_queue_dpc() {
    let out = run(|| {
        let log = Log::new();
        let d = logging_dpc(log);
        let t = timer(NotificationTimer);
        let bp = Breakpoint::set(Point::TimerExpiry, Filter::Object(t.addr()));
        // The timer expires on the CPU that set it; set it from another CPU than ours so that
        // its interrupt context can stop at the breakpoint while we go on.
        let setter = SystemThread::spawn("setter", move || {
            set(t, -(MS as i64), Some(d));
        });
        setter.join();
        let hit = bp.wait_hit();
        assert_eq!(hit.object, t.addr());
        // The timer fired; its DPC is about to be called directly, not through a queue.
        // SAFETY: leaked DPC.
        assert_eq!(unsafe { ntsim::dpc::KeRemoveQueueDpc(d.get()) }, 0);
        assert_eq!(cancel(t), 0);
        assert!(calls(log).is_empty());
        bp.clear();
        sleep(MS);
        calls(log).len()
    });
    assert_eq!(out.expect_clean(), 1);
}

unsafe extern "system" fn rearm(d: *mut KDPC, ctx: PVOID, a1: PVOID, a2: PVOID) {
    // SAFETY: the context is a leaked Log.
    unsafe { log_dpc(d, ctx, a1, a2) };
    // SAFETY: the context is a leaked Log.
    let n = unsafe { (*(ctx as *const Log)).calls.lock().unwrap().len() };
    if n < 3 {
        // The one test that uses this routine stores its timer here.
        let t = REARM_TIMER.load(std::sync::atomic::Ordering::SeqCst) as *mut KTIMER;
        // SAFETY: the test's leaked timer; re-arming from its own DPC (spec A.12.6).
        let was_set = unsafe { KeSetTimer(t, -(2 * MS as i64), d) };
        assert_eq!(was_set, 0, "a fired one-shot timer is not set");
    }
}

static REARM_TIMER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[test]
fn timer_rearmed_from_its_own_dpc_fires_again() {
    let out = run(|| {
        let log = Log::new();
        let d = dpc(Some(rearm), log.pv());
        let t = timer(NotificationTimer);
        REARM_TIMER.store(t.addr(), std::sync::atomic::Ordering::SeqCst);
        set(t, -(2 * MS as i64), Some(d));
        sleep(20 * MS);
        calls(log).iter().map(|c| c.time / MS).collect::<Vec<_>>()
    });
    assert_eq!(out.expect_clean(), vec![2, 4, 6]);
}

// Rule C19: KeSetTimer and KeCancelTimer above DISPATCH_LEVEL.

#[test]
fn set_and_cancel_timer_above_dispatch_level_are_violations() {
    let out = run(|| {
        let t = timer(NotificationTimer);
        let old = KfRaiseIrql(HIGH_LEVEL);
        set(t, -(MS as i64), None);
        cancel(t);
        KeLowerIrql(old);
    });
    let r = out.reports_of(Rule::ApiIrql);
    assert_eq!(r.len(), 2, "{:?}", out.reports);
    assert!(r.iter().all(|r| r.severity == Severity::Violation));
    assert!(r[0].message.contains("KeSetTimer") && r[1].message.contains("KeCancelTimer"));
}

#[test]
fn set_and_cancel_timer_at_dispatch_level_are_clean() {
    let out = run(|| {
        let t = timer(NotificationTimer);
        let old = KfRaiseIrql(DISPATCH_LEVEL);
        set(t, -(MS as i64), None);
        cancel(t);
        KeLowerIrql(old);
    });
    out.expect_clean();
}
