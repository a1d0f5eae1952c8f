//! Spec D scenarios on StartIoEvent through the I/O manager (`ntsim::iomgr`), model S: basic
//! behaviour (D-1…D-5), validation (D-6…D-10), ordering (D-11…D-14), cancellation (D-15, D-16),
//! close (D-21, D-24), process kill (D-25) and unload (D-28). Every test ends with an unload that must leave nothing
//! behind and a machine with no verifier report.

mod support;

use ntsim::breakpoint::{Breakpoint, Filter, Point};
use ntsim::iomgr::{
    self, Process, cancel_io_ex, close_handle, create_event, create_semaphore, event_log, sleep,
    wait_for_single_object,
};
use ntsim::ntdef::{
    IRP, STATUS_CANCELLED, STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_HANDLE,
    STATUS_INVALID_PARAMETER, STATUS_NOT_IMPLEMENTED, STATUS_OBJECT_TYPE_MISMATCH, STATUS_SUCCESS,
};
use startio_event::interface::{IOCTL_REGISTER_EVENT, REGISTER_EVENT_SIZE};
use support::*;

const SEC: u64 = 1000 * MS;

/// D-1: IRP-based, d = 1 s, on a synchronous handle: the call returns after 1 s, success, 0.
#[test]
fn d01_irp_based_one_second_on_a_sync_handle() {
    machine()
        .run(|| {
            let drv = load();
            client(|| {
                let h = open_sync();
                let t0 = now();
                let r = irp_ms(h, 1000);
                assert_eq!(now(), t0 + SEC, "the synchronous call returned after 1 s");
                assert_eq!(r.info().returned, Some(STATUS_SUCCESS));
                assert_pending_then(r, STATUS_SUCCESS, t0 + SEC);
                close_handle(h);
            });
            unload_clean(drv);
        })
        .expect_clean();
}

/// D-2: a positive DueTime is negated: relative, not an absolute date.
#[test]
fn d02_positive_due_time_is_relative() {
    machine()
        .run(|| {
            let drv = load();
            client(|| {
                let h = open();
                let t0 = now();
                let r = register(h, &irp_input((SEC) as i64));
                r.wait();
                assert_pending_then(r, STATUS_SUCCESS, t0 + SEC);
                close_handle(h);
            });
            unload_clean(drv);
        })
        .expect_clean();
}

/// D-3: DueTime 0 completes at the instant it enters service.
#[test]
fn d03_zero_due_time_completes_at_once() {
    machine()
        .run(|| {
            let drv = load();
            client(|| {
                let h = open();
                let t0 = now();
                let r = register(h, &irp_input(0));
                assert!(r.is_complete(), "completed before the IOCTL call returned");
                assert_pending_then(r, STATUS_SUCCESS, t0);
                close_handle(h);
            });
            unload_clean(drv);
        })
        .expect_clean();
}

/// D-4: event-based, d = 1 s: the IOCTL completes at once (not pending), the event is
/// signalled once, after 1 s.
#[test]
fn d04_event_based_signals_once_at_the_due_time() {
    machine()
        .run(|| {
            let drv = load();
            let p = iomgr::Process::create("app");
            p.spawn_thread("main", move || {
                let h = open();
                let e = create_event(true, false);
                let t0 = now();
                let r = event_ms(h, e, 1000);
                assert_sync(r, STATUS_SUCCESS, t0);
                assert_eq!(wait_for_single_object(e, None), Ok(STATUS_SUCCESS));
                assert_eq!(now(), t0 + SEC);
                sleep(3000);
                let log = event_log(p, e);
                assert_eq!(log.len(), 1, "{log:?}");
                assert_eq!((log[0].time, log[0].previous), (t0 + SEC, 0));
                close_handle(e);
                close_handle(h);
            })
            .join();
            unload_clean(drv);
        })
        .expect_clean();
}

/// D-5: the test application's loops: mode 0 (IRP-based, synchronous handle) and mode 1
/// (event-based with WaitForSingleObject/ResetEvent), d = 0.5 s, 10 iterations each.
#[test]
fn d05_test_app_loops_complete_every_half_second() {
    machine()
        .run(|| {
            let drv = load();
            let p = iomgr::Process::create("event-app");
            p.spawn_thread("main", move || {
                let h = open_sync();
                let t0 = now();
                for k in 1..=10 {
                    let r = irp_ms(h, 500);
                    assert_pending_then(r, STATUS_SUCCESS, t0 + k * 500 * MS);
                }
                let e = create_event(true, false);
                let t1 = now();
                for _ in 1..=10 {
                    let r = event_ms(h, e, 500);
                    assert!(!r.info().pending);
                    assert_eq!(wait_for_single_object(e, None), Ok(STATUS_SUCCESS));
                    iomgr::reset_event(e).expect("reset");
                }
                let times: Vec<u64> = event_log(p, e).iter().map(|s| s.time - t1).collect();
                assert_eq!(times, (1..=10).map(|k| k * 500 * MS).collect::<Vec<_>>());
                close_handle(e);
                close_handle(h);
            })
            .join();
            unload_clean(drv);
        })
        .expect_clean();
}

/// D-6, D-7, D-8: validation errors are synchronous, never pending, and arm nothing.
#[test]
fn d06_d07_d08_validation_errors_are_synchronous() {
    machine()
        .run(|| {
            let drv = load();
            let drv_addr = drv as usize;
            client(move || {
                let h = open();
                let t0 = now();
                let short = irp_input(due_ms(1000));
                let r = register(h, &short[..REGISTER_EVENT_SIZE - 1]);
                assert_sync(r, STATUS_INVALID_PARAMETER, t0);
                assert!(r.info().synchronous_error);

                let mut bad_type = irp_input(due_ms(1000));
                bad_type[0] = 2;
                assert_sync(register(h, &bad_type), STATUS_INVALID_PARAMETER, t0);

                let other = IOCTL_REGISTER_EVENT + 4; // function 0x801
                let r = iomgr::device_io_control(h, other, &irp_input(0), 0).expect("ioctl");
                assert_sync(r, STATUS_NOT_IMPLEMENTED, t0);

                // A longer input is accepted; its extra bytes are ignored.
                let mut long = [0u8; REGISTER_EVENT_SIZE + 8];
                long[..REGISTER_EVENT_SIZE].copy_from_slice(&irp_input(0));
                assert_pending_then(register(h, &long), STATUS_SUCCESS, t0);

                let leaks = ntsim::iomgr::driver_leaks(drv_addr as _);
                assert!(
                    leaks.timers.is_empty() && leaks.pending_irps.is_empty(),
                    "{leaks:?}"
                );
                close_handle(h);
            });
            unload_clean(drv);
        })
        .expect_clean();
}

/// D-9: an event-based registration with a bad handle fails with ObReferenceObjectByHandle's
/// status, synchronously, and leaves nothing behind.
#[test]
fn d09_bad_event_handles_fail_synchronously() {
    machine()
        .run(|| {
            let drv = load();
            client(|| {
                let h = open();
                let t0 = now();
                let bogus = iomgr::Handle::from_raw(0x7ff0 as _);
                assert_sync(event_ms(h, bogus, 100), STATUS_INVALID_HANDLE, t0);
                let sem = create_semaphore(0, 1);
                assert_sync(event_ms(h, sem, 100), STATUS_OBJECT_TYPE_MISMATCH, t0);
                close_handle(sem);
                close_handle(h);
            });
            unload_clean(drv);
        })
        .expect_clean();
}

/// D-10: the registration record cannot be allocated: STATUS_INSUFFICIENT_RESOURCES,
/// synchronously, and the event reference is released.
#[test]
fn d10_allocation_failure_fails_synchronously() {
    machine()
        .run(|| {
            let drv = load();
            client(|| {
                let h = open();
                let e = create_event(true, false);
                let t0 = now();
                ntsim::pool::fail_allocations(1, Some(startio_event::EVENT_TAG));
                assert_sync(event_ms(h, e, 100), STATUS_INSUFFICIENT_RESOURCES, t0);
                close_handle(e);
                close_handle(h);
            });
            unload_clean(drv);
        })
        .expect_clean();
}

/// D-11: three IRP-based requests back to back on one handle complete at 1, 2, 3 s, in order.
#[test]
fn d11_three_requests_are_served_in_order() {
    machine()
        .run(|| {
            let drv = load();
            client(|| {
                let h = open();
                let t0 = now();
                let rs: Vec<_> = (0..3).map(|_| irp_ms(h, 1000)).collect();
                rs[2].wait();
                for (k, r) in rs.iter().enumerate() {
                    assert_pending_then(*r, STATUS_SUCCESS, t0 + (k as u64 + 1) * SEC);
                }
                close_handle(h);
            });
            unload_clean(drv);
        })
        .expect_clean();
}

/// D-12: 3 s then 1 s: the second starts when the first completes (model S).
#[test]
fn d12_a_short_request_waits_for_a_long_one() {
    machine()
        .run(|| {
            let drv = load();
            client(|| {
                let h = open();
                let t0 = now();
                let a = irp_ms(h, 3000);
                let b = irp_ms(h, 1000);
                b.wait();
                assert_pending_then(a, STATUS_SUCCESS, t0 + 3 * SEC);
                assert_pending_then(b, STATUS_SUCCESS, t0 + 4 * SEC);
                close_handle(h);
            });
            unload_clean(drv);
        })
        .expect_clean();
}

/// D-13: the FIFO is device-wide, across handles.
#[test]
fn d13_order_is_global_across_handles() {
    machine()
        .run(|| {
            let drv = load();
            client(|| {
                let hs: Vec<_> = (0..3).map(|_| open()).collect();
                let t0 = now();
                let rs: Vec<_> = hs.iter().map(|&h| irp_ms(h, 1000)).collect();
                rs[2].wait();
                for (k, r) in rs.iter().enumerate() {
                    assert_pending_then(*r, STATUS_SUCCESS, t0 + (k as u64 + 1) * SEC);
                }
                for h in hs {
                    close_handle(h);
                }
            });
            unload_clean(drv);
        })
        .expect_clean();
}

/// D-14: two threads on one synchronous handle: the I/O manager serializes them, so the second
/// is dispatched when the first completes: d and 2d.
#[test]
fn d14_two_threads_on_a_sync_handle() {
    machine()
        .run(|| {
            let drv = load();
            let p = iomgr::Process::create("app");
            let h = std::sync::Arc::new(std::sync::Mutex::new(None));
            let t0 = now();
            let (h1, h2) = (h.clone(), h.clone());
            let a = p.spawn_thread("a", move || {
                let handle = open_sync();
                *h1.lock().unwrap() = Some(handle);
                let r = irp_ms(handle, 1000);
                assert_pending_then(r, STATUS_SUCCESS, t0 + SEC);
            });
            let b = p.spawn_thread("b", move || {
                let handle = loop {
                    if let Some(handle) = *h2.lock().unwrap() {
                        break handle;
                    }
                    sleep(1);
                };
                let r = irp_ms(handle, 1000);
                // Not even dispatched before the first completed: the I/O manager serializes
                // requests on a synchronous file object.
                assert_eq!(r.info().issued_at, t0 + SEC);
                assert_pending_then(r, STATUS_SUCCESS, t0 + 2 * SEC);
            });
            a.join();
            b.join();
            let handle = h.lock().unwrap().expect("opened");
            p.spawn_thread("closer", move || {
                close_handle(handle);
            })
            .join();
            unload_clean(drv);
        })
        .expect_clean();
}

/// D-15: cancelling a queued request completes it at once; the others keep their schedule,
/// moving up the queue.
#[test]
fn d15_cancel_a_queued_request() {
    machine()
        .run(|| {
            let drv = load();
            client(|| {
                let h = open();
                let t0 = now();
                let (a, b, c) = (irp_ms(h, 1000), irp_ms(h, 1000), irp_ms(h, 1000));
                sleep(200);
                assert_eq!(cancel_io_ex(h, Some(b)), STATUS_SUCCESS);
                assert_pending_then(b, STATUS_CANCELLED, t0 + 200 * MS);
                c.wait();
                assert_pending_then(a, STATUS_SUCCESS, t0 + SEC);
                assert_pending_then(c, STATUS_SUCCESS, t0 + 2 * SEC);
                close_handle(h);
            });
            unload_clean(drv);
        })
        .expect_clean();
}

/// D-16: cancelling the request in service completes it at once, and the next one enters
/// service at that instant.
#[test]
fn d16_cancel_the_request_in_service() {
    machine()
        .run(|| {
            let drv = load();
            client(|| {
                let h = open();
                let t0 = now();
                let (a, b) = (irp_ms(h, 1000), irp_ms(h, 1000));
                sleep(200);
                assert_eq!(cancel_io_ex(h, Some(a)), STATUS_SUCCESS);
                assert_pending_then(a, STATUS_CANCELLED, t0 + 200 * MS);
                b.wait();
                assert_pending_then(b, STATUS_SUCCESS, t0 + 1200 * MS);
                close_handle(h);
            });
            unload_clean(drv);
        })
        .expect_clean();
}

/// D-16 with a next request of due 0: it completes at the same instant, after the cancelled
/// one ("order of completions at one instant", rule 1).
#[test]
fn d16_cancel_in_service_then_due_zero_completes_at_once() {
    machine()
        .run(|| {
            let drv = load();
            client(|| {
                let h = open();
                let t0 = now();
                let a = irp_ms(h, 1000);
                let b = register(h, &irp_input(0));
                sleep(200);
                cancel_io_ex(h, Some(a));
                assert_pending_then(a, STATUS_CANCELLED, t0 + 200 * MS);
                assert_pending_then(b, STATUS_SUCCESS, t0 + 200 * MS);
                close_handle(h);
            });
            unload_clean(drv);
        })
        .expect_clean();
}

/// D-21: closing H1 cancels all of its requests (the one in service too) before its cleanup
/// completes; H2's request moves up and keeps its own due time from when it enters service.
#[test]
fn d21_close_cancels_only_that_handles_requests() {
    machine()
        .run(|| {
            let drv = load();
            client(|| {
                let (h1, h2) = (open(), open());
                let t0 = now();
                let r1: Vec<_> = (0..3).map(|_| irp_ms(h1, 1000)).collect();
                let r2 = irp_ms(h2, 1000);
                let ev = create_event(true, false);
                event_ms(h2, ev, 5000);
                sleep(100);
                close_handle(h1);
                for r in &r1 {
                    assert_pending_then(*r, STATUS_CANCELLED, t0 + 100 * MS);
                }
                assert!(r2.poll().is_none());
                r2.wait();
                assert_pending_then(r2, STATUS_SUCCESS, t0 + 1100 * MS);
                // H2's event registration is unaffected by H1's close.
                assert_eq!(wait_for_single_object(ev, None), Ok(STATUS_SUCCESS));
                assert_eq!(now(), t0 + 5 * SEC);
                close_handle(ev);
                close_handle(h2);
            });
            unload_clean(drv);
        })
        .expect_clean();
}

/// D-24: closing the handle drops its event registration unsignalled and releases the event
/// reference.
#[test]
fn d24_close_drops_event_registrations_unsignalled() {
    machine()
        .run(|| {
            let drv = load();
            let p = iomgr::Process::create("app");
            p.spawn_thread("main", move || {
                let h = open();
                let e = create_event(true, false);
                let object = iomgr::event_object(p, e).expect("event");
                let baseline = ntsim::object::object_reference_count(object);
                event_ms(h, e, 1000);
                assert_eq!(
                    ntsim::object::object_reference_count(object),
                    baseline.map(|n| n + 1),
                    "the registration holds a reference"
                );
                sleep(500);
                close_handle(h);
                assert_eq!(ntsim::object::object_reference_count(object), baseline);
                assert_eq!(
                    wait_for_single_object(e, Some(2000)),
                    Ok(ntsim::ntdef::STATUS_TIMEOUT)
                );
                assert!(event_log(p, e).is_empty());
                close_handle(e);
            })
            .join();
            unload_clean(drv);
        })
        .expect_clean();
}

/// D-26 (E3(a)): two registrations on one event, 1 s and 2 s: signalled at 1 s; not reset, the
/// second set finds it signalled already.
#[test]
fn d26_two_registrations_on_one_event() {
    machine()
        .run(|| {
            let drv = load();
            let p = iomgr::Process::create("app");
            p.spawn_thread("main", move || {
                let h = open();
                let e = create_event(true, false);
                let t0 = now();
                event_ms(h, e, 1000);
                event_ms(h, e, 2000);
                sleep(3000);
                let log: Vec<_> = event_log(p, e)
                    .iter()
                    .map(|s| (s.time - t0, s.previous))
                    .collect();
                assert_eq!(log, [(SEC, 0), (2 * SEC, 1)]);
                close_handle(e);
                close_handle(h);
            })
            .join();
            unload_clean(drv);
        })
        .expect_clean();
}

/// D-25: a process whose thread waits in a synchronous IRP-based DeviceIoControl (in service,
/// due in 10 s) is terminated at 300 ms. The thread's exit runs IoCancelThreadIo: the request's
/// cancel routine completes it STATUS_CANCELLED on the exiting thread and starts the next
/// packet, and the process exits at that instant (one tick plus cancel latency at most; here no
/// virtual time at all), far from the 5-minute fallback. Another process's request, queued at
/// 150 ms, enters service then and completes 1 s later. Nothing leaks.
#[test]
fn d25_process_kill_cancels_a_pending_synchronous_request() {
    // Room for a thread parked at DISPATCH_LEVEL (in the cancel routine) besides the others.
    let config = ntsim::Config {
        cpus: 8,
        ..ntsim::Config::default()
    };
    ntsim::Kernel::new(config)
        .run(|| {
            let drv = load();
            let victim = Process::create("victim");
            let vt = victim.spawn_thread("victim", || {
                let h = open_sync();
                sleep(100);
                irp_ms(h, 10_000);
                unreachable!("the thread is terminated while its request is pending");
            });
            let other = Process::create("other");
            let b_slot = std::sync::Arc::new(std::sync::Mutex::new(None));
            let b_slot2 = b_slot.clone();
            let ot = other.spawn_thread("other", move || {
                let h = open();
                sleep(150);
                let b = irp_ms(h, 1000);
                b.wait();
                close_handle(h);
                *b_slot2.lock().unwrap() = Some(b);
            });
            sleep(50); // the victim has opened its handle
            let dispatch = Breakpoint::set(Point::DispatchEntry, Filter::Actor(vt.actor()));
            let irp = dispatch.wait_hit().object; // the synchronous IOCTL
            assert_eq!(now(), 100 * MS);
            dispatch.clear();
            sleep(200);
            let completing = Breakpoint::set(Point::CompleteRequestEntry, Filter::Object(irp));
            victim.terminate();
            let hit = completing.wait_hit();
            assert_eq!(
                hit.actor,
                vt.actor(),
                "cancelled by the exiting thread's IoCancelThreadIo"
            );
            // SAFETY: the IRP is live: its completion is stopped at IoCompleteRequest's entry.
            let status = unsafe { (*(irp as *const IRP)).IoStatus.status() };
            assert_eq!(status, STATUS_CANCELLED);
            completing.clear();
            victim.wait();
            assert_eq!(now(), 300 * MS, "the process exits at once");
            assert!(vt.is_finished());
            assert_eq!(victim.handle_count(), 0);
            ot.join();
            let b = b_slot.lock().unwrap().expect("sent");
            assert_pending_then(b, STATUS_SUCCESS, 1300 * MS);
            unload_clean(drv);
        })
        .expect_clean();
}

/// D-28: after every handle is closed the unload leaves no timer, DPC, pool block, IRP or
/// reference, even with registrations of every kind having come and gone.
#[test]
fn d28_unload_after_mixed_work_leaves_nothing() {
    machine()
        .run(|| {
            let drv = load();
            client(|| {
                let (h1, h2) = (open(), open());
                let e = create_event(false, false);
                let _ = irp_ms(h1, 300);
                let _ = irp_ms(h2, 300);
                event_ms(h1, e, 100);
                event_ms(h2, e, 10_000);
                let c = irp_ms(h2, 300);
                sleep(400);
                cancel_io_ex(h2, Some(c));
                close_handle(h1);
                close_handle(h2);
                close_handle(e);
            });
            unload_clean(drv);
        })
        .expect_clean();
}
