//! Close, rundown, process kill and unload (spec A.8, A.17, D-21, D-23, D-24, D-25, D-28, D-29).

mod support;

use ntsim::breakpoint::{Breakpoint, Filter, Point};
use ntsim::iomgr::*;
use ntsim::ntdef::*;
use ntsim::object::object_reference_count;
use support::*;

/// D-21 (model C): closing H1 cancels its three requests before the close returns; H2's request
/// keeps its deadline.
#[test]
fn close_cancels_the_handles_requests_only() {
    let out = machine().run(|| {
        let drv = load();
        let p = Process::create("app");
        p.spawn_thread("client", || {
            let h1 = create_file(CONCURRENT, OpenMode::Overlapped).expect("open");
            let h2 = create_file(CONCURRENT, OpenMode::Overlapped).expect("open");
            let a: Vec<Request> = (0..3)
                .map(|i| irp_based(h1, due_ms(1000 * (i + 1))))
                .collect();
            let b = irp_based(h2, due_ms(1500));
            sleep(200);
            close_handle(h1);
            for r in &a {
                assert_eq!(outcome(*r), (STATUS_CANCELLED, ms(200), true));
            }
            assert!(b.poll().is_none());
            b.wait();
            assert_eq!(outcome(b), (STATUS_SUCCESS, ms(1500), true));
            close_handle(h2);
        })
        .join();
        unload_clean(drv);
    });
    out.expect_clean();
}

/// D-24: an event-based registration, then close before the due time: never signalled, and the
/// event's reference is back to the handle's alone.
#[test]
fn close_drops_event_registrations_unsignalled() {
    let out = machine().run(|| {
        let drv = load();
        let p = Process::create("app");
        p.spawn_thread("client", move || {
            let h = create_file(CONCURRENT, OpenMode::Overlapped).expect("open");
            let e = create_event(true, false);
            let obj = event_object(p, e).expect("event");
            let baseline = object_reference_count(obj);
            let r = event_based(h, e, due_ms(1000));
            assert_eq!(outcome(r), (STATUS_SUCCESS, 0, false));
            assert_eq!(object_reference_count(obj), baseline.map(|n| n + 1));
            sleep(500);
            close_handle(h);
            assert_eq!(object_reference_count(obj), baseline);
            sleep(2000);
            assert!(event_log(p, e).is_empty());
        })
        .join();
        unload_clean(drv);
    });
    out.expect_clean();
}

/// D-23: cleanup waits for a dispatch routine that is still running on the handle, then cancels
/// the request that routine queued.
#[test]
fn cleanup_runs_down_a_dispatch_in_progress() {
    let out = machine().run(|| {
        let drv = load();
        let p = Process::create("app");
        let h = spawn(p, "opener", || {
            create_file(CONCURRENT, OpenMode::Overlapped).expect("open")
        })
        .join_value();
        // Stop the registering thread inside the dispatch routine, with the handle's remove
        // lock held: in IoCsqInsertIrpEx, before it checks Irp->Cancel.
        let bp = Breakpoint::set(Point::CsqInsertBeforeCancelCheck, Filter::Any);
        // The parked dispatch holds its CPU at DISPATCH_LEVEL (inside the queue lock), and
        // threads are placed on CPUs in turn: this one puts the registering thread on the CPU
        // that the main thread does not use.
        spawn(p, "spacer", || ()).join_value();
        let registering = spawn(p, "register", move || irp_based(h, due_ms(1000)));
        bp.wait_hit();
        let closing = spawn(p, "close", move || {
            close_handle(h);
            interrupt_time()
        });
        sleep(100);
        assert!(
            !closing.is_finished(),
            "cleanup waits for the dispatch routine"
        );
        bp.resume();
        bp.clear();
        let r = registering.join_value();
        assert_eq!(closing.join_value(), ms(100));
        assert_eq!(outcome(r), (STATUS_CANCELLED, ms(100), true));
        unload_clean(drv);
    });
    out.expect_clean();
}

/// D-28/D-29: unload with every handle closed leaves nothing; with a handle open it is deferred
/// until the close.
#[test]
fn unload_leaves_nothing() {
    let out = machine().run(|| {
        let drv = load();
        let p = Process::create("app");
        let h = spawn(p, "client", || {
            let h = create_file(CONCURRENT, OpenMode::Overlapped).expect("open");
            let e = create_event(true, false);
            // Fired, cancelled and completed registrations leave records to reap.
            irp_based(h, 0).wait();
            let r = irp_based(h, due_ms(5000));
            cancel_io_ex(h, Some(r));
            event_based(h, e, 0);
            event_based(h, e, due_ms(5000));
            irp_based(h, due_ms(5000));
            h
        })
        .join_value();
        assert_eq!(unload_driver(drv), Ok(UnloadOutcome::Deferred));
        p.spawn_thread("closer", move || {
            close_handle(h);
        })
        .join();
        let report = wait_for_unload(drv).expect("unloaded");
        assert_eq!(report, LeakReport::default());
        assert!(ntsim::driver::device_names().is_empty());
    });
    out.expect_clean();
}

/// D-25 on `device`: a process whose thread waits in a synchronous IRP-based DeviceIoControl
/// (due in 10 s) is terminated at 300 ms. The thread's exit runs IoCancelThreadIo, which cancels
/// the request: it is completed STATUS_CANCELLED on the exiting thread (the canceller's
/// context), and the process exits at that instant (one tick plus cancel latency at most; here,
/// no virtual time at all), far from the 5-minute fallback. Another process's request, sent at
/// 150 ms for 1 s, completes at `other_done_at`. Nothing leaks.
fn process_kill_cancels_a_pending_synchronous_request(device: &'static str, other_done_at: u64) {
    // Room for a thread parked at DISPATCH_LEVEL (in the cancel path) besides the others.
    let config = ntsim::Config {
        cpus: 8,
        ..ntsim::Config::default()
    };
    let out = ntsim::Kernel::new(config).run(move || {
        let drv = load();
        let victim = Process::create("victim");
        let vt = victim.spawn_thread("victim", move || {
            let h = create_file(device, OpenMode::Synchronous).expect("open");
            sleep(100);
            irp_based(h, due_ms(10_000));
            unreachable!("the thread is terminated while its request is pending");
        });
        let other = Process::create("other");
        let ot = spawn(other, "other", move || {
            let h = create_file(device, OpenMode::Overlapped).expect("open");
            sleep(150);
            let b = irp_based(h, due_ms(1000));
            b.wait();
            close_handle(h);
            b
        });
        sleep(50); // the victim has opened its handle
        let dispatch = Breakpoint::set(Point::DispatchEntry, Filter::Actor(vt.actor()));
        let irp = dispatch.wait_hit().object; // the synchronous IOCTL
        assert_eq!(interrupt_time(), ms(100));
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
        assert_eq!(interrupt_time(), ms(300), "the process exits at once");
        assert!(vt.is_finished());
        assert_eq!(victim.handle_count(), 0);
        let b = ot.join_value();
        assert_eq!(outcome(b), (STATUS_SUCCESS, other_done_at, true));
        unload_clean(drv);
    });
    out.expect_clean();
}

/// D-25 on CsqEventSerial: the victim's request was in service; the other process's request
/// enters service when it is cancelled, at 300 ms.
#[test]
fn process_kill_cancels_a_pending_synchronous_request_serial() {
    process_kill_cancels_a_pending_synchronous_request(SERIAL, ms(1300));
}

/// D-25 on CsqEvent: the other process's request keeps its own deadline.
#[test]
fn process_kill_cancels_a_pending_synchronous_request_concurrent() {
    process_kill_cancels_a_pending_synchronous_request(CONCURRENT, ms(1150));
}
