//! Time and scheduling: virtual and real time, the Random and PCT policies (reproducible per
//! seed, exploring different interleavings), and breakpoints (spec A.18).

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ntsim::breakpoint::{Breakpoint, Filter, Point, named_point};
use ntsim::clock::{BOOT_SYSTEM_TIME, KeQueryInterruptTime, KeQuerySystemTime, TimeMode};
use ntsim::ntdef::*;
use ntsim::sched::{Policy, Status};
use ntsim::spinlock::{KeAcquireSpinLockRaiseToDpc, KeReleaseSpinLock};
use ntsim::thread::{SystemThread, actor_status};
use ntsim::{Config, Kernel};
use support::*;

#[test]
fn virtual_time_jumps_to_deadlines_and_is_exact() {
    let start = Instant::now();
    let out = run(|| {
        assert_eq!(KeQueryInterruptTime(), 0);
        let mut system = 0i64;
        // SAFETY: writable.
        unsafe { KeQuerySystemTime(&mut system) };
        assert_eq!(system as u64, BOOT_SYSTEM_TIME);
        let t = SystemThread::spawn("sleeper", || {
            sleep(3_600 * 1_000 * MS); // an hour
        });
        sleep(10 * MS);
        assert_eq!(KeQueryInterruptTime(), 10 * MS);
        t.join();
        KeQueryInterruptTime()
    });
    assert_eq!(out.time, 3_600 * 1_000 * MS);
    assert_eq!(out.expect_clean(), 3_600 * 1_000 * MS);
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "an hour of virtual time is instant"
    );
}

#[test]
fn real_time_delay_really_waits() {
    let config = Config {
        time: TimeMode::Real,
        ..Config::default()
    };
    let start = Instant::now();
    let out = Kernel::new(config).run(|| {
        let before = KeQueryInterruptTime();
        assert_eq!(sleep(20 * MS), STATUS_SUCCESS);
        KeQueryInterruptTime() - before
    });
    let host = start.elapsed();
    let emulated = out.expect_clean();
    assert!(emulated >= 20 * MS, "interrupt time moved {emulated}");
    assert!(
        host >= Duration::from_millis(20),
        "host time moved {host:?}"
    );
}

#[test]
fn real_time_timer_fires() {
    let config = Config {
        time: TimeMode::Real,
        ..Config::default()
    };
    let out = Kernel::new(config).run(|| {
        let log = Log::new();
        let d = logging_dpc(log);
        let t = timer(NotificationTimer);
        // SAFETY: leaked timer and DPC.
        unsafe { ntsim::timer::KeSetTimer(t.get(), -(2 * MS as i64), d.get()) };
        assert_eq!(wait(t, None), STATUS_SUCCESS);
        sleep(MS);
        calls(log)[0].time
    });
    assert!(out.expect_clean() >= 2 * MS);
}

/// Two threads race through three steps each; returns the order of their steps and of their
/// completions.
fn race(policy: Policy) -> (Vec<u32>, Vec<u32>) {
    let steps = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(Mutex::new(Vec::new()));
    let (s, d) = (steps.clone(), done.clone());
    let out = Kernel::new(Config::with_policy(policy)).run(move || {
        let threads: Vec<SystemThread> = (0..2u32)
            .map(|i| {
                let (s, d) = (s.clone(), d.clone());
                SystemThread::spawn(&format!("racer{i}"), move || {
                    for _ in 0..3 {
                        named_point("step");
                        s.lock().unwrap().push(i);
                    }
                    d.lock().unwrap().push(i);
                })
            })
            .collect();
        threads.into_iter().for_each(SystemThread::join);
    });
    out.expect_clean();
    let steps = steps.lock().unwrap().clone();
    let done = done.lock().unwrap().clone();
    (steps, done)
}

fn explores(policy: impl Fn(u64) -> Policy) {
    let mut traces = BTreeSet::new();
    let mut completions = BTreeSet::new();
    for seed in 0..16 {
        let first = race(policy(seed));
        assert_eq!(race(policy(seed)), first, "seed {seed} replays exactly");
        traces.insert(first.0);
        completions.insert(first.1);
    }
    assert!(
        traces.len() >= 2,
        "different seeds interleave differently: {traces:?}"
    );
    assert!(
        completions.len() >= 2,
        "either racer can finish first: {completions:?}"
    );
}

#[test]
fn random_policy_is_reproducible_per_seed_and_explores_interleavings() {
    explores(|seed| Policy::Random { seed });
}

#[test]
fn pct_policy_is_reproducible_per_seed_and_explores_interleavings() {
    explores(|seed| Policy::Pct { seed, depth: 3 });
}

#[test]
fn fifo_policy_runs_the_first_racer_to_completion_first() {
    let (steps, done) = race(Policy::Fifo);
    assert_eq!(steps, vec![0, 0, 0, 1, 1, 1]);
    assert_eq!(done, vec![0, 1]);
}

#[test]
fn thread_parked_at_spin_lock_acquire_lets_another_thread_run() {
    let out = run(|| {
        let l = spin_lock();
        let bp = Breakpoint::set(Point::SpinLockAcquire, Filter::Object(l.addr()));
        let parked = SystemThread::spawn("parked", move || {
            // SAFETY: leaked lock.
            let old = unsafe { KeAcquireSpinLockRaiseToDpc(l.get()) };
            // SAFETY: held.
            unsafe { KeReleaseSpinLock(l.get(), old) };
        });
        let hit = bp.wait_hit();
        assert_eq!((hit.actor, hit.object), (parked.actor(), l.addr()));
        assert!(matches!(
            actor_status(parked.actor()),
            Status::Parked { .. }
        ));
        // SAFETY: leaked lock word.
        assert_eq!(unsafe { *l.get() }, 0, "parked before the acquire attempt");
        // Meanwhile another thread runs to completion, and time goes on.
        let other = SystemThread::spawn("other", || {
            sleep(5 * MS);
        });
        other.join();
        assert!(!parked.is_finished());
        bp.clear();
        parked.join();
    });
    assert_eq!(out.time, 5 * MS);
    out.expect_clean();
}

/// A finished run leaves no idle interrupt thread behind, so thousands of runs in one process
/// (eventctl's random-script comparison) do not accumulate OS threads.
#[test]
fn finished_runs_release_their_interrupt_threads() {
    fn threads() -> usize {
        std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
    }
    let before = threads();
    for _ in 0..50 {
        ntsim::Kernel::new(ntsim::Config::default())
            .run(|| ())
            .expect_clean();
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    let after = threads();
    // Other tests of this binary may run concurrently: allow for their threads, but not for
    // 50 runs x 3 parked actors.
    assert!(
        after < before + 40,
        "threads before {before}, after {after}"
    );
}
