//! Model S on `\\.\CsqEventSerial` (`docs/timer-event-design.md`, D-11…D-16 "S:", D-21 "S"):
//! one IRP-based registration in service at a time, device-wide FIFO, its timer starting when
//! it enters service; the request in service is cancelable.

mod support;

use ntsim::iomgr::*;
use ntsim::ntdef::*;
use support::*;

/// Runs `body` as one client process against the serial device, then closes and unloads.
fn with_client(body: impl FnOnce(Process) + Send + 'static) {
    let out = machine().run(|| {
        let drv = load();
        let p = Process::create("app");
        p.spawn_thread("client", move || body(p)).join();
        unload_clean(drv);
    });
    out.expect_clean();
}

/// D-1…D-3 under S: relative, positive and zero due times, one at a time.
#[test]
fn due_times_relative_positive_and_zero() {
    with_client(|_| {
        let h = create_file(SERIAL, OpenMode::Synchronous).expect("open");
        assert_eq!(
            outcome(irp_based(h, due_ms(1000))),
            (STATUS_SUCCESS, ms(1000), true)
        );
        assert_eq!(
            outcome(irp_based(h, ms(500) as i64)),
            (STATUS_SUCCESS, ms(1500), true)
        );
        assert_eq!(outcome(irp_based(h, 0)), (STATUS_SUCCESS, ms(1500), true));
        close_handle(h);
    });
}

/// D-11 S: three 1 s requests on one handle complete at 1, 2 and 3 s, in order.
#[test]
fn back_to_back_requests_are_served_one_at_a_time() {
    with_client(|_| {
        let h = create_file(SERIAL, OpenMode::Overlapped).expect("open");
        let rs: Vec<Request> = (0..3).map(|_| irp_based(h, due_ms(1000))).collect();
        for (i, r) in rs.into_iter().enumerate() {
            r.wait();
            assert_eq!(
                outcome(r),
                (STATUS_SUCCESS, ms(1000 * (i as u64 + 1)), true)
            );
        }
        close_handle(h);
    });
}

/// D-12 S: 3 s then 1 s: the first at 3 s, the second at 4 s.
#[test]
fn a_later_short_request_waits_for_the_one_in_service() {
    with_client(|_| {
        let h = create_file(SERIAL, OpenMode::Overlapped).expect("open");
        let a = irp_based(h, due_ms(3000));
        let b = irp_based(h, due_ms(1000));
        b.wait();
        assert_eq!(outcome(a), (STATUS_SUCCESS, ms(3000), true));
        assert_eq!(outcome(b), (STATUS_SUCCESS, ms(4000), true));
        close_handle(h);
    });
}

/// D-13 S: the FIFO is device-wide, across handles and processes.
#[test]
fn fifo_is_device_wide_across_processes() {
    let out = machine().run(|| {
        let drv = load();
        let threads: Vec<ValueThread<Request>> = (0..3)
            .map(|i| {
                let p = Process::create(&format!("app{i}"));
                let t = spawn(p, "client", || {
                    let h = create_file(SERIAL, OpenMode::Overlapped).expect("open");
                    let r = irp_based(h, due_ms(1000));
                    r.wait();
                    close_handle(h);
                    r
                });
                // Issued in process order, 10 ms apart.
                sleep(10);
                t
            })
            .collect();
        let done: Vec<(i32, u64, bool)> = threads
            .into_iter()
            .map(|t| outcome(t.join_value()))
            .collect();
        assert_eq!(
            done,
            [
                (STATUS_SUCCESS, ms(1000), true),
                (STATUS_SUCCESS, ms(2000), true),
                (STATUS_SUCCESS, ms(3000), true)
            ]
        );
        unload_clean(drv);
    });
    out.expect_clean();
}

/// D-14: two threads on one synchronous handle: the I/O manager serializes them anyway.
#[test]
fn two_threads_on_a_synchronous_handle() {
    let out = machine().run(|| {
        let drv = load();
        let p = Process::create("app");
        let h = spawn(p, "opener", || {
            create_file(SERIAL, OpenMode::Synchronous).expect("open")
        })
        .join_value();
        let t1 = spawn(p, "t1", move || irp_based(h, due_ms(1000)));
        let t2 = spawn(p, "t2", move || irp_based(h, due_ms(1000)));
        let mut times = [outcome(t1.join_value()).1, outcome(t2.join_value()).1];
        times.sort();
        assert_eq!(times, [ms(1000), ms(2000)]);
        spawn(p, "closer", move || close_handle(h)).join_value();
        unload_clean(drv);
    });
    out.expect_clean();
}

/// D-15 S: cancelling a queued request completes it at once; the one in service is unaffected,
/// and the next moves up.
#[test]
fn cancel_a_queued_request() {
    with_client(|_| {
        let h = create_file(SERIAL, OpenMode::Overlapped).expect("open");
        let a = irp_based(h, due_ms(1000));
        let b = irp_based(h, due_ms(1000));
        let c = irp_based(h, due_ms(1000));
        sleep(200);
        assert_eq!(cancel_io_ex(h, Some(b)), STATUS_SUCCESS);
        assert_eq!(outcome(b), (STATUS_CANCELLED, ms(200), true));
        c.wait();
        assert_eq!(outcome(a), (STATUS_SUCCESS, ms(1000), true));
        assert_eq!(outcome(c), (STATUS_SUCCESS, ms(2000), true));
        close_handle(h);
    });
}

/// D-16 S (E2 = cancelable): cancelling the request in service completes it at once, and the
/// next enters service at that instant.
#[test]
fn cancel_the_request_in_service() {
    with_client(|_| {
        let h = create_file(SERIAL, OpenMode::Overlapped).expect("open");
        let a = irp_based(h, due_ms(1000));
        let b = irp_based(h, due_ms(1000));
        sleep(200);
        assert_eq!(cancel_io_ex(h, Some(a)), STATUS_SUCCESS);
        assert_eq!(outcome(a), (STATUS_CANCELLED, ms(200), true));
        b.wait();
        assert_eq!(outcome(b), (STATUS_SUCCESS, ms(1200), true));
        // A next request with due 0 after a cancel: completes at the cancel's instant.
        let c = irp_based(h, due_ms(1000));
        let d = irp_based(h, 0);
        sleep(100);
        cancel_io_ex(h, Some(c));
        d.wait();
        assert_eq!(outcome(c), (STATUS_CANCELLED, ms(1300), true));
        assert_eq!(outcome(d), (STATUS_SUCCESS, ms(1300), true));
        close_handle(h);
    });
}

/// D-21 S: H1 has the request in service and two queued, H2 one queued. Closing H1 cancels its
/// three before the close returns; H2's enters service then and completes a full delay later.
#[test]
fn close_cancels_the_handles_requests_and_the_next_enters_service() {
    with_client(|_| {
        let h1 = create_file(SERIAL, OpenMode::Overlapped).expect("open");
        let h2 = create_file(SERIAL, OpenMode::Overlapped).expect("open");
        let a1 = irp_based(h1, due_ms(1000));
        let b = irp_based(h2, due_ms(1000));
        let a2 = irp_based(h1, due_ms(1000));
        let a3 = irp_based(h1, due_ms(1000));
        sleep(300);
        close_handle(h1);
        for r in [a1, a2, a3] {
            assert_eq!(outcome(r), (STATUS_CANCELLED, ms(300), true));
        }
        b.wait();
        assert_eq!(outcome(b), (STATUS_SUCCESS, ms(1300), true));
        close_handle(h2);
    });
}

/// Event-based registrations on the serial device are independent of the serialized queue
/// (E3(a)): the IOCTL completes at once and the event is signalled at its own due time.
#[test]
fn event_based_registrations_bypass_the_queue() {
    with_client(|p| {
        let h = create_file(SERIAL, OpenMode::Overlapped).expect("open");
        let e = create_event(true, false);
        let a = irp_based(h, due_ms(3000));
        let r = event_based(h, e, due_ms(1000));
        assert_eq!(outcome(r), (STATUS_SUCCESS, 0, false));
        assert_eq!(wait_for_single_object(e, None), Ok(STATUS_SUCCESS));
        assert_eq!(interrupt_time(), ms(1000));
        a.wait();
        assert_eq!(event_log(p, e).len(), 1);
        close_handle(h);
    });
}
