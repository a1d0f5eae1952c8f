//! Cleanup racing the timer expiry of the closing handle's request (spec D-22), forced with
//! ntsim's breakpoints (spec A.18), on both devices and in both orders of the winner:
//!
//! - `CsqEventSerial` (model S, the worker): the timer has fired and the worker is woken, but
//!   it is stopped as its wait returns, before it claims the request with `IoCsqRemoveIrp`;
//!   then the handle is closed (the cleanup wins). Or the worker has claimed the request and is
//!   stopped at IoCompleteRequest when the handle is closed (the worker wins).
//! - `CsqEvent` (model C, one timer per registration): the timer has expired and its DPC is
//!   stopped at its start when the handle is closed (the cleanup wins; its drop of the record
//!   then waits for that DPC). Or the DPC has taken the IRP from the record's queue and is
//!   stopped at IoCompleteRequest (the DPC wins; the cleanup waits for it before it frees the
//!   record).
//!
//! Each test checks one completion, the winner's status at the expiry instant, the next request
//! starting exactly once (model S), zero verifier reports and an unload that leaves nothing.

mod support;

use std::sync::{Arc, Mutex};

use ntsim::breakpoint::{Breakpoint, Filter, Point};
use ntsim::iomgr::*;
use ntsim::ntdef::*;
use ntsim::{Config, Kernel};
use support::*;

/// A machine with a CPU for each thread of a test (threads are placed round-robin): a parked
/// DPC or thread keeps its CPU, and the others still run.
fn roomy() -> Kernel {
    Kernel::new(Config {
        cpus: 8,
        ..Config::default()
    })
}

type Slot<T> = Arc<Mutex<Option<T>>>;

/// A kernel-mode delay of the test's main thread.
fn delay_ms(n: u64) {
    let mut d = due_ms(n);
    // SAFETY: a relative delay at PASSIVE_LEVEL.
    unsafe { ntsim::wait::KeDelayExecutionThread(KernelMode, 0, &mut d) };
}

/// Lets every thread that can run at this instant run until it blocks (no time passes).
fn settle() {
    sleep_until_settled(interrupt_time() / ms(1));
}

/// Waits (polling every millisecond of virtual time) until a thread has published a value.
fn published<T: Copy>(slot: &Slot<T>) -> T {
    loop {
        if let Some(v) = *slot.lock().unwrap() {
            return v;
        }
        delay_ms(1);
    }
}

/// What a D-22 client sent: A on H1 (the handle that will be closed) and B on H2, and when.
#[derive(Clone, Copy)]
struct Sent {
    h1: Handle,
    a: Request,
    b: Request,
    t0: u64,
}

/// One client thread opens H1 and H2 on `device`, sends A (1 s) on H1 then B (`b_ms`) on H2, and
/// stays alive until B completes (its exit would cancel its requests). Returns the thread and
/// what it sent, once sent.
fn send_a_then_b(p: Process, device: &'static str, b_ms: u64) -> (UserThread, Sent) {
    let slot: Slot<Sent> = Arc::new(Mutex::new(None));
    let slot2 = slot.clone();
    let client = p.spawn_thread("client", move || {
        let h1 = create_file(device, OpenMode::Overlapped).expect("open");
        let h2 = create_file(device, OpenMode::Overlapped).expect("open");
        let t0 = interrupt_time();
        let a = irp_based(h1, due_ms(1000));
        let b = irp_based(h2, due_ms(b_ms));
        *slot2.lock().unwrap() = Some(Sent { h1, a, b, t0 });
        b.wait();
        close_handle(h2);
    });
    (client, published(&slot))
}

/// Closes `h` from a new thread of `p`.
fn closer(p: Process, h: Handle) -> UserThread {
    p.spawn_thread("closer", move || {
        assert_eq!(close_handle(h), STATUS_SUCCESS);
    })
}

/// D-22 on CsqEventSerial, the cleanup wins: A's timer has fired and the worker's wait is
/// satisfied, but the worker is stopped as the wait returns, before its claim. Closing H1
/// takes A out of service and completes it STATUS_CANCELLED at the expiry instant, before the
/// cleanup completes; the worker then claims nothing, stops the timer and starts B once, at
/// that instant: B completes 1 s later.
#[test]
fn d22_serial_cleanup_wins_against_a_woken_worker_that_has_not_claimed() {
    let out = roomy().run(|| {
        let drv = load();
        let p = Process::create("app");
        let (client, s) = send_a_then_b(p, SERIAL, 1000);
        let expiry = Breakpoint::set(Point::TimerExpiry, Filter::Any);
        expiry.wait_hit();
        assert_eq!(interrupt_time(), s.t0 + ms(1000));
        // The worker waits on the timer; it runs once the expiry's interrupt actor is done.
        let woken = Breakpoint::set(Point::WaitReturn, Filter::Any);
        expiry.clear();
        let hit = woken.wait_hit();
        assert!(hit.name.starts_with("system-thread"), "the worker: {hit:?}");
        assert!(!s.a.is_complete());
        closer(p, s.h1).join();
        // Contract "Close": H1's request completed before its cleanup did.
        assert_eq!(outcome(s.a), (STATUS_CANCELLED, s.t0 + ms(1000), true));
        assert!(!s.b.is_complete());
        woken.clear(); // the worker's claim finds nothing; it starts B now
        client.join();
        assert_eq!(outcome(s.a), (STATUS_CANCELLED, s.t0 + ms(1000), true));
        assert_eq!(
            s.a.info().cancelled_at,
            None,
            "cancelled by the cleanup, not IoCancelIrp"
        );
        assert_eq!(outcome(s.b), (STATUS_SUCCESS, s.t0 + ms(2000), true));
        unload_clean(drv);
    });
    out.expect_clean();
}

/// D-22 on CsqEventSerial, the worker wins: A's timer has fired and the worker has claimed A (it
/// is stopped at IoCompleteRequest) when H1 is closed. The cleanup finds no request of H1 and
/// completes; A then completes STATUS_SUCCESS (spec B.1 row R7's analogue) and B starts once,
/// after A.
#[test]
fn d22_serial_the_worker_that_claimed_wins_against_cleanup() {
    let out = roomy().run(|| {
        let drv = load();
        let p = Process::create("app");
        let (client, s) = send_a_then_b(p, SERIAL, 1000);
        let completing = Breakpoint::set(Point::CompleteRequestEntry, Filter::Any);
        let hit = completing.wait_hit();
        assert_eq!(interrupt_time(), s.t0 + ms(1000));
        assert!(hit.name.starts_with("system-thread"), "the worker: {hit:?}");
        closer(p, s.h1).join();
        assert!(
            !s.a.is_complete(),
            "the cleanup found nothing in service: the worker owns A"
        );
        assert!(!s.b.is_complete());
        completing.clear();
        client.join();
        assert_eq!(outcome(s.a), (STATUS_SUCCESS, s.t0 + ms(1000), true));
        assert_eq!(outcome(s.b), (STATUS_SUCCESS, s.t0 + ms(2000), true));
        unload_clean(drv);
    });
    out.expect_clean();
}

/// D-22 on CsqEvent, the cleanup wins: A's own timer has expired and its DPC is stopped at its
/// start. Closing H1 takes A from the record's queue and completes it STATUS_CANCELLED at the
/// expiry instant, then drops the record, which waits for the DPC. The DPC then finds the
/// queue empty and does nothing; only then is the record freed and the cleanup completes. B, on
/// H2, keeps its own deadline.
#[test]
fn d22_concurrent_cleanup_wins_against_an_expired_timer_whose_dpc_has_not_run() {
    let out = roomy().run(|| {
        let drv = load();
        let p = Process::create("app");
        let (client, s) = send_a_then_b(p, CONCURRENT, 2000);
        let expiry = Breakpoint::set(Point::TimerExpiry, Filter::Any);
        let hit = expiry.wait_hit();
        assert_eq!(interrupt_time(), s.t0 + ms(1000));
        // The same interrupt actor calls the timer's DPC next: park it at its start.
        let dpc = Breakpoint::set(Point::DpcStart, Filter::Actor(hit.actor));
        expiry.clear();
        dpc.wait_hit();
        let closing = closer(p, s.h1);
        settle();
        assert_eq!(outcome(s.a), (STATUS_CANCELLED, s.t0 + ms(1000), true));
        assert!(
            !closing.is_finished(),
            "the cleanup waits for the DPC before it frees the record"
        );
        dpc.clear(); // the DPC finds the queue empty
        closing.join();
        assert_eq!(interrupt_time(), s.t0 + ms(1000));
        client.join();
        assert_eq!(outcome(s.a), (STATUS_CANCELLED, s.t0 + ms(1000), true));
        assert_eq!(outcome(s.b), (STATUS_SUCCESS, s.t0 + ms(2000), true));
        unload_clean(drv);
    });
    out.expect_clean();
}

/// D-22 on CsqEvent, the DPC wins: A's DPC has taken A from the record's queue and is stopped at
/// IoCompleteRequest when H1 is closed. The cleanup finds the queue empty and waits for the DPC
/// before it frees the record; A completes STATUS_SUCCESS at the expiry instant, once.
#[test]
fn d22_concurrent_the_dpc_that_took_the_irp_wins_against_cleanup() {
    let out = roomy().run(|| {
        let drv = load();
        let p = Process::create("app");
        let (client, s) = send_a_then_b(p, CONCURRENT, 2000);
        let completing = Breakpoint::set(Point::CompleteRequestEntry, Filter::Any);
        let hit = completing.wait_hit();
        assert_eq!(interrupt_time(), s.t0 + ms(1000));
        assert!(!hit.name.contains("client"), "A's DPC: {hit:?}");
        let closing = closer(p, s.h1);
        settle();
        assert!(
            !s.a.is_complete(),
            "the cleanup found the queue empty: the DPC owns A"
        );
        assert!(
            !closing.is_finished(),
            "the cleanup waits for the DPC before it frees the record"
        );
        completing.clear();
        closing.join();
        client.join();
        assert_eq!(outcome(s.a), (STATUS_SUCCESS, s.t0 + ms(1000), true));
        assert_eq!(s.a.info().cancelled_at, None);
        assert_eq!(outcome(s.b), (STATUS_SUCCESS, s.t0 + ms(2000), true));
        unload_clean(drv);
    });
    out.expect_clean();
}
