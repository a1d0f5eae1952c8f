//! Semaphores: spec A.15, the fork's KeSemaphore tests (spec E), rules C19, C20 and C29.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};

use ntsim::irql::{KeGetCurrentIrql, KeLowerIrql, KfRaiseIrql};
use ntsim::ntdef::*;
use ntsim::semaphore::*;
use ntsim::thread::SystemThread;
use ntsim::{Rule, Severity};
use support::*;

fn release(s: P<KSEMAPHORE>, n: i32) -> i32 {
    // SAFETY: leaked, initialized semaphore.
    unsafe { KeReleaseSemaphore(s.get(), 0, n, 0) }
}

fn count(s: P<KSEMAPHORE>) -> i32 {
    // SAFETY: leaked, initialized semaphore.
    unsafe { KeReadStateSemaphore(s.get()) }
}

#[test]
fn initialize_sets_count_limit_and_type() {
    let out = run(|| {
        let s = semaphore(2, 10);
        // SAFETY: leaked semaphore.
        let k = unsafe { *s.get() };
        assert_eq!(k.Header.Type, SemaphoreObject);
        assert_eq!(k.Header.Size as usize, size_of::<KSEMAPHORE>() / 4);
        assert_eq!(k.Limit, 10);
        count(s)
    });
    assert_eq!(out.expect_clean(), 2);
}

#[test]
fn release_returns_the_previous_count_and_waits_consume_one() {
    let out = run(|| {
        let s = semaphore(0, 10);
        assert_eq!(release(s, 1), 0);
        assert_eq!(release(s, 3), 1);
        assert_eq!(count(s), 4);
        assert_eq!(wait(s, None), STATUS_SUCCESS);
        assert_eq!(count(s), 3);
        assert_eq!(release(s, 7), 3, "up to the limit exactly is fine");
        count(s)
    });
    assert_eq!(out.expect_clean(), 10);
}

#[test]
fn release_beyond_the_limit_is_fatal_and_leaves_the_count() {
    let sem = std::sync::Arc::new(std::sync::Mutex::new(0usize));
    let slot = sem.clone();
    let out = run(move || {
        let s = semaphore(2, 3);
        *slot.lock().unwrap() = s.addr();
        release(s, 2);
        unreachable!("STATUS_SEMAPHORE_LIMIT_EXCEEDED is raised and not handled");
    });
    let stop = out.stop.expect("fatal stop");
    assert_eq!(stop.rule, Rule::SemaphoreLimit);
    let s = *sem.lock().unwrap() as *const KSEMAPHORE;
    // SAFETY: the semaphore was leaked; the machine has stopped.
    assert_eq!(unsafe { (*s).Header.SignalState }, 2, "count unchanged");
}

#[test]
fn release_wakes_a_waiting_system_thread() {
    let out = run(|| {
        let s = semaphore(0, 1);
        let t = SystemThread::spawn("waiter", move || {
            assert_eq!(wait(s, None), STATUS_SUCCESS);
        });
        sleep(MS);
        assert!(!t.is_finished());
        assert_eq!(release(s, 1), 0);
        t.join();
        count(s)
    });
    assert_eq!(out.expect_clean(), 0, "the woken wait consumed the unit");
}

#[test]
fn zero_timeout_wait_on_zero_count_times_out() {
    let out = run(|| {
        let s = semaphore(0, 1);
        wait(s, Some(0))
    });
    assert_eq!(out.time, 0);
    assert_eq!(out.expect_clean(), STATUS_TIMEOUT);
}

fn waiters(s: P<KSEMAPHORE>, n: u32, done: P<AtomicU32>) -> Vec<SystemThread> {
    (0..n)
        .map(|i| {
            SystemThread::spawn(&format!("waiter{i}"), move || {
                assert_eq!(wait(s, None), STATUS_SUCCESS);
                // SAFETY: leaked counter.
                unsafe { &*done.get() }.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect()
}

fn done_count(d: P<AtomicU32>) -> u32 {
    // SAFETY: leaked counter.
    unsafe { &*d.get() }.load(Ordering::SeqCst)
}

#[test]
fn k_releases_wake_k_waits() {
    let out = run(|| {
        let s = semaphore(0, 10);
        let done = leak(AtomicU32::new(0));
        let threads = waiters(s, 4, done);
        sleep(MS);
        // One release of 3 satisfies three waits.
        release(s, 3);
        sleep(MS);
        assert_eq!(done_count(done), 3);
        assert_eq!(count(s), 0);
        // And single releases one each.
        release(s, 1);
        sleep(MS);
        assert_eq!(done_count(done), 4);
        threads.into_iter().for_each(SystemThread::join);
        count(s)
    });
    assert_eq!(out.expect_clean(), 0);
}

#[test]
fn release_with_wait_true_followed_by_a_wait_on_a_thread_is_clean() {
    let out = run(|| {
        let s = semaphore(0, 1);
        let t = SystemThread::spawn("consumer", move || {
            wait(s, None);
        });
        sleep(MS);
        // SAFETY: leaked semaphore.
        unsafe { KeReleaseSemaphore(s.get(), 0, 1, 1) };
        assert_eq!(KeGetCurrentIrql(), DISPATCH_LEVEL);
        // The very next call waits on the thread object, as the cancel sample's Unload does.
        // SAFETY: the thread object stays referenced by `t`.
        let status = unsafe {
            ntsim::wait::KeWaitForSingleObject(t.object(), 0, KernelMode, 0, std::ptr::null_mut())
        };
        assert_eq!(status, STATUS_SUCCESS);
        KeGetCurrentIrql()
    });
    assert_eq!(out.expect_clean(), PASSIVE_LEVEL);
}

#[test]
fn release_with_wait_true_not_followed_by_a_wait_is_a_violation() {
    let out = run(|| {
        let s = semaphore(0, 5);
        // SAFETY: leaked semaphore.
        unsafe { KeReleaseSemaphore(s.get(), 0, 1, 1) };
        release(s, 1);
    });
    assert_eq!(out.reports_of(Rule::WaitNext).len(), 1);
}

#[test]
fn release_semaphore_above_dispatch_level_is_a_violation() {
    let out = run(|| {
        let s = semaphore(0, 5);
        let old = KfRaiseIrql(HIGH_LEVEL);
        release(s, 1);
        KeLowerIrql(old);
    });
    let r = out.reports_of(Rule::ApiIrql);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].severity, Severity::Violation);
    assert!(r[0].message.contains("KeReleaseSemaphore"));
}

#[test]
fn release_semaphore_at_dispatch_level_is_clean() {
    let out = run(|| {
        let s = semaphore(0, 5);
        let old = KfRaiseIrql(DISPATCH_LEVEL);
        release(s, 1);
        KeLowerIrql(old);
    });
    out.expect_clean();
}
