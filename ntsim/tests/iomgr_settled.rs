//! The scenario client's clock (eventctl): `sleep_until_settled` wakes only once everything due
//! at its instant has run — timers expired, their DPCs run, the threads they woke run until they
//! block — and the machine-wide sequence numbers of completions and event sets order what
//! happened at one instant.

mod iomgr_support;

use std::sync::{Arc, Mutex};

use iomgr_support::*;
use ntsim::iomgr::*;
use ntsim::ntdef::*;
use ntsim::{Config, Kernel};

fn register(h: Handle, event: Handle, due: i64) -> Request {
    let mut input = Vec::new();
    input.extend_from_slice(&(event.raw() as u64).to_le_bytes());
    input.extend_from_slice(&due.to_le_bytes());
    device_io_control(h, IOCTL_EVENT, &input, 0).expect("ioctl")
}

/// At 1000 ms the driver's timer DPC sets the event; the thread waiting for it wakes and
/// completes a pending request. A sleeper until 1000 ms, armed before all of it, sees the whole
/// chain done when it wakes, still at 1000 ms; the set is numbered before the completion.
#[test]
fn a_settled_sleeper_wakes_after_the_chain_of_its_instant() {
    let out = Kernel::new(Config::default()).run(|| {
        let (_drv, _dev) = load();
        let p = Process::create("app");
        let shared: Arc<Mutex<Option<(Request, Handle)>>> = Arc::default();
        let s = shared.clone();
        let client = p.spawn_thread("client", move || {
            let h = create_file(NAME, OpenMode::Overlapped).expect("open");
            let e = create_event(true, false);
            let pending = device_io_control(h, IOCTL_PEND, &[], 0).expect("pend");
            *s.lock().unwrap() = Some((pending, e));
            register(h, e, -10_000_000);
            wait_for_single_object(e, None).expect("wait");
            device_io_control(h, IOCTL_COMPLETE_ALL, &[], 0).expect("complete");
            close_handle(h);
        });
        sleep_until_settled(1000);
        assert_eq!(interrupt_time(), 10_000_000);
        let (pending, e) = shared.lock().unwrap().expect("issued");
        let info = pending.info();
        assert_eq!(info.status, Some(STATUS_SUCCESS));
        assert_eq!(info.completed_at, Some(10_000_000));
        let log = event_log(p, e);
        assert_eq!(log.len(), 1);
        assert_eq!((log[0].time, log[0].previous), (10_000_000, 0));
        let completed = info.completed_seq.expect("numbered");
        assert!(log[0].seq < completed, "{log:?} {completed}");
        assert!(sequence() >= completed);
        client.join();
    });
    out.expect_clean();
}

/// A time that has passed: the sleeper only waits for the machine to settle now.
#[test]
fn a_settled_sleep_into_the_past_does_not_move_the_clock() {
    let out = Kernel::new(Config::default()).run(|| {
        sleep(5);
        sleep_until_settled(2);
        sleep_until_settled(5);
        interrupt_time()
    });
    assert_eq!(out.expect_clean(), 50_000);
}

/// Numbers grow in the order things happen: two requests completed one after the other.
#[test]
fn completions_are_numbered_in_order() {
    let out = Kernel::new(Config::default()).run(|| {
        let (_drv, _dev) = load();
        let p = Process::create("app");
        p.spawn_thread("client", || {
            let before = sequence();
            let h = create_file(NAME, OpenMode::Overlapped).expect("open");
            let a = device_io_control(h, IOCTL_PEND, &[], 0).expect("pend");
            let b = device_io_control(h, IOCTL_PEND, &[], 0).expect("pend");
            assert_eq!(a.info().completed_seq, None);
            device_io_control(h, IOCTL_COMPLETE_ALL, &[], 0).expect("complete");
            let (sa, sb) = (a.info().completed_seq, b.info().completed_seq);
            assert!(sa.is_some() && sb.is_some());
            assert!(before < sa.unwrap() && sa < sb, "{sa:?} {sb:?}");
            close_handle(h);
        })
        .join();
    });
    out.expect_clean();
}
