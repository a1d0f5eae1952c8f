//! Model C on `\\.\CsqEvent` (spec B.1, B.5 E1 "C", D-1…D-5, D-11…D-16 "C:"): every IRP-based
//! registration has its own deadline; cancel and close complete STATUS_CANCELLED at once.

mod support;

use ntsim::iomgr::*;
use ntsim::ntdef::*;
use support::*;

/// D-1, D-2, D-3: relative, positive (negated) and zero due times.
#[test]
fn due_times_relative_positive_and_zero() {
    let out = machine().run(|| {
        let drv = load();
        let p = Process::create("app");
        p.spawn_thread("client", || {
            let h = create_file(CONCURRENT, OpenMode::Synchronous).expect("open");
            let a = irp_based(h, due_ms(1000));
            assert_eq!(outcome(a), (STATUS_SUCCESS, ms(1000), true));
            assert_eq!(a.info().information, 0);
            let b = irp_based(h, ms(500) as i64);
            assert_eq!(outcome(b), (STATUS_SUCCESS, ms(1500), true));
            let c = irp_based(h, 0);
            assert_eq!(outcome(c), (STATUS_SUCCESS, ms(1500), true));
            close_handle(h);
        })
        .join();
        unload_clean(drv);
    });
    out.expect_clean();
}

/// D-11 C: three requests of 1 s on one overlapped handle all complete at 1 s.
#[test]
fn back_to_back_requests_run_concurrently() {
    let out = machine().run(|| {
        let drv = load();
        let p = Process::create("app");
        p.spawn_thread("client", || {
            let h = create_file(CONCURRENT, OpenMode::Overlapped).expect("open");
            let rs: Vec<Request> = (0..3).map(|_| irp_based(h, due_ms(1000))).collect();
            for r in &rs {
                assert_eq!(r.info().returned, Some(STATUS_PENDING));
            }
            for r in rs {
                assert_eq!(
                    {
                        r.wait();
                        outcome(r)
                    },
                    (STATUS_SUCCESS, ms(1000), true)
                );
            }
            close_handle(h);
        })
        .join();
        unload_clean(drv);
    });
    out.expect_clean();
}

/// D-12 C: 3 s then 1 s: the second completes first, at 1 s; the first at 3 s.
#[test]
fn shorter_deadline_completes_first() {
    let out = machine().run(|| {
        let drv = load();
        let p = Process::create("app");
        p.spawn_thread("client", || {
            let h = create_file(CONCURRENT, OpenMode::Overlapped).expect("open");
            let a = irp_based(h, due_ms(3000));
            let b = irp_based(h, due_ms(1000));
            b.wait();
            assert!(
                a.poll().is_none(),
                "the 3 s request is still pending at 1 s"
            );
            a.wait();
            assert_eq!(outcome(b), (STATUS_SUCCESS, ms(1000), true));
            assert_eq!(outcome(a), (STATUS_SUCCESS, ms(3000), true));
            close_handle(h);
        })
        .join();
        unload_clean(drv);
    });
    out.expect_clean();
}

/// D-13 C: requests from three processes each complete at their own deadline.
#[test]
fn requests_of_several_processes_are_independent() {
    let out = machine().run(|| {
        let drv = load();
        let threads: Vec<UserThread> = (0..3u64)
            .map(|i| {
                let p = Process::create(&format!("app{i}"));
                p.spawn_thread("client", move || {
                    let h = create_file(CONCURRENT, OpenMode::Synchronous).expect("open");
                    let r = irp_based(h, due_ms(1000 + 100 * i));
                    assert_eq!(outcome(r), (STATUS_SUCCESS, ms(1000 + 100 * i), true));
                    close_handle(h);
                })
            })
            .collect();
        for t in threads {
            t.join();
        }
        unload_clean(drv);
    });
    out.expect_clean();
}

/// D-15 C and D-16: cancelling one request completes it at once with STATUS_CANCELLED; the
/// others keep their deadlines.
#[test]
fn cancel_completes_at_once_and_leaves_the_others() {
    let out = machine().run(|| {
        let drv = load();
        let p = Process::create("app");
        p.spawn_thread("client", || {
            let h = create_file(CONCURRENT, OpenMode::Overlapped).expect("open");
            let a = irp_based(h, due_ms(1000));
            let b = irp_based(h, due_ms(1000));
            let c = irp_based(h, due_ms(1000));
            sleep(200);
            assert_eq!(cancel_io_ex(h, Some(b)), STATUS_SUCCESS);
            assert_eq!(outcome(b), (STATUS_CANCELLED, ms(200), true));
            assert_eq!(b.info().information, 0);
            sleep(100);
            assert_eq!(cancel_io_ex(h, Some(a)), STATUS_SUCCESS);
            assert_eq!(outcome(a), (STATUS_CANCELLED, ms(300), true));
            c.wait();
            assert_eq!(outcome(c), (STATUS_SUCCESS, ms(1000), true));
            // Cancelling a completed request finds nothing.
            assert_eq!(cancel_io_ex(h, Some(c)), ntsim::iomgr::STATUS_NOT_FOUND);
            close_handle(h);
        })
        .join();
        unload_clean(drv);
    });
    out.expect_clean();
}

/// D-4 and D-26: event-based registrations complete at once and signal at their due times.
#[test]
fn event_based_signals_at_due_time() {
    let out = machine().run(|| {
        let drv = load();
        let p = Process::create("app");
        p.spawn_thread("client", move || {
            let h = create_file(CONCURRENT, OpenMode::Synchronous).expect("open");
            let e = create_event(true, false);
            let r1 = event_based(h, e, due_ms(1000));
            let r2 = event_based(h, e, due_ms(2000));
            for r in [r1, r2] {
                assert_eq!(outcome(r), (STATUS_SUCCESS, 0, false));
            }
            assert_eq!(wait_for_single_object(e, None), Ok(STATUS_SUCCESS));
            assert_eq!(interrupt_time(), ms(1000));
            sleep(1500);
            let log = event_log(p, e);
            assert_eq!(log.len(), 2);
            assert_eq!((log[0].time, log[0].previous), (ms(1000), 0));
            // Not reset in between: the second set finds it signalled (D-26).
            assert_eq!((log[1].time, log[1].previous), (ms(2000), 1));
            // Both references were released when the events were signalled.
            let obj = event_object(p, e).expect("event");
            assert_eq!(ntsim::object::object_reference_count(obj), Some(1));
            close_handle(h);
        })
        .join();
        unload_clean(drv);
    });
    out.expect_clean();
}

/// D-5: the test app's loop, mode 0: ten 0.5 s registrations in a row.
#[test]
fn test_app_loop_irp_mode() {
    let out = machine().run(|| {
        let drv = load();
        let p = Process::create("app");
        p.spawn_thread("client", || {
            let h = create_file(CONCURRENT, OpenMode::Synchronous).expect("open");
            for i in 1..=10 {
                let r = irp_based(h, due_ms(500));
                assert_eq!(outcome(r), (STATUS_SUCCESS, ms(500 * i), true));
            }
            close_handle(h);
        })
        .join();
        unload_clean(drv);
    });
    out.expect_clean();
}
