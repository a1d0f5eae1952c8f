//! The races of the StartIo design, forced with ntsim's breakpoints (spec A.18): an IRP
//! cancelled before dispatch (D-17, pitfall P2), timer expiry against cancel of the request in
//! service (D-19), the stale DPC (D-19b, P5), StartIo against the cancel routine (D-20, P1),
//! cleanup against the timer expiry of the closing handle's request (D-22), and the three
//! contexts StartIo runs in (D-34). Each ends with zero verifier reports and an unload that
//! leaves nothing.

mod support;

use std::sync::{Arc, Mutex};

use ntsim::breakpoint::{Breakpoint, Filter, Point};
use ntsim::iomgr::{self, Handle, Process, Request, cancel_io_ex, close_handle, sleep};
use ntsim::ntdef::{KernelMode, STATUS_CANCELLED, STATUS_SUCCESS};
use ntsim::{Config, Kernel};
use support::*;

const SEC: u64 = 1000 * MS;

/// A kernel-mode delay of the test's main thread.
fn delay_ms(ms: u64) {
    let mut d = -((ms * MS) as i64);
    // SAFETY: a relative delay at PASSIVE_LEVEL.
    unsafe { ntsim::wait::KeDelayExecutionThread(KernelMode, 0, &mut d) };
}

/// A machine with enough CPUs that the threads of a test (placed round-robin) each have their
/// own: a thread parked at DISPATCH_LEVEL, or a parked DPC, keeps its CPU to itself.
fn roomy() -> Kernel {
    Kernel::new(Config {
        cpus: 8,
        ..Config::default()
    })
}

type Slot<T> = Arc<Mutex<Option<T>>>;

fn slot<T>() -> Slot<T> {
    Arc::new(Mutex::new(None))
}

/// D-17 (P2): the IRP is cancelled before the dispatch routine runs (IoCancelIrp finds no
/// cancel routine and returns FALSE, leaving only `Irp->Cancel`). StartIo owns it and completes
/// it STATUS_CANCELLED exactly once, and the device is not left busy: the next request completes
/// after its own due time.
#[test]
fn d17_irp_cancelled_before_dispatch() {
    machine()
        .run(|| {
            let drv = load();
            let p = Process::create("app");
            let handle: Slot<Handle> = slot();
            let h2 = handle.clone();
            let client = p.spawn_thread("client", move || {
                let h = open();
                *h2.lock().unwrap() = Some(h);
                sleep(100);
                let t0 = now();
                let r = irp_ms(h, 1000); // parked at DispatchEntry, cancelled, resumed
                assert_pending_then(r, STATUS_CANCELLED, t0);
                assert_eq!(r.info().cancelled_at, Some(t0));
                let next = irp_ms(h, 1000);
                next.wait();
                assert_pending_then(next, STATUS_SUCCESS, t0 + SEC);
                close_handle(h);
            });
            delay_ms(50);
            let bp = Breakpoint::set(Point::DispatchEntry, Filter::Any);
            bp.wait_hit();
            let h = handle.lock().unwrap().expect("opened");
            p.spawn_thread("canceller", move || {
                assert_eq!(cancel_io_ex(h, None), STATUS_SUCCESS);
            })
            .join();
            bp.clear();
            client.join();
            unload_clean(drv);
        })
        .expect_clean();
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

/// D-19, the timer wins: the DPC has claimed the request in service (it is inside
/// IoCompleteRequest) when CancelIoEx arrives. The cancel finds no routine and does nothing;
/// the request completes STATUS_SUCCESS once, and the next starts once, at that instant.
#[test]
fn d19_timer_wins_against_cancel() {
    roomy()
        .run(|| {
            let drv = load();
            let p = Process::create("app");
            let issued: Slot<(Handle, Request, u64)> = slot();
            let issued2 = issued.clone();
            // The issuing thread stays alive: its exit would cancel its requests.
            let client = p.spawn_thread("client", move || {
                let h = open();
                let t0 = now();
                let (a, b) = (irp_ms(h, 1000), irp_ms(h, 1000));
                *issued2.lock().unwrap() = Some((h, a, t0));
                b.wait();
                assert_pending_then(a, STATUS_SUCCESS, t0 + SEC);
                assert_eq!(a.info().cancelled_at, Some(t0 + SEC));
                assert_pending_then(b, STATUS_SUCCESS, t0 + 2 * SEC);
                close_handle(h);
            });
            let (h, a, t0) = published(&issued);
            let bp = Breakpoint::set(Point::CompleteRequestEntry, Filter::Any);
            bp.wait_hit(); // A's DPC, in IoCompleteRequest after claiming A
            assert_eq!(now(), t0 + SEC);
            p.spawn_thread("canceller", move || {
                assert_eq!(cancel_io_ex(h, Some(a)), STATUS_SUCCESS);
                assert!(
                    !a.is_complete(),
                    "the cancel found no routine: the DPC owns A"
                );
            })
            .join();
            bp.clear();
            client.join();
            unload_clean(drv);
        })
        .expect_clean();
}

/// D-19 cancel wins, and D-19b (P5): A's timer has expired and its DPC is about to run when A is
/// cancelled. The cancel routine completes A STATUS_CANCELLED and starts B, whose StartIo
/// re-arms the shared timer; A's stale DPC then runs and claims nothing. B is not completed
/// early: it completes 1 s after it entered service.
#[test]
fn d19b_cancel_wins_and_the_stale_dpc_does_nothing() {
    roomy()
        .run(|| {
            let drv = load();
            let p = Process::create("app");
            let issued: Slot<(Handle, Request, Request, u64)> = slot();
            let issued2 = issued.clone();
            let client = p.spawn_thread("client", move || {
                let h = open();
                let t0 = now();
                let (a, b) = (irp_ms(h, 200), irp_ms(h, 1000));
                *issued2.lock().unwrap() = Some((h, a, b, t0));
                b.wait();
                assert_pending_then(b, STATUS_SUCCESS, t0 + 1200 * MS);
                close_handle(h);
            });
            let (h, a, b, t0) = published(&issued);
            let bp = Breakpoint::set(Point::TimerExpiry, Filter::Any);
            bp.wait_hit(); // A's expiry is processed; its DPC is not called yet
            assert_eq!(now(), t0 + 200 * MS);
            p.spawn_thread("canceller", move || {
                assert_eq!(cancel_io_ex(h, Some(a)), STATUS_SUCCESS);
                assert_pending_then(a, STATUS_CANCELLED, t0 + 200 * MS);
                assert!(!b.is_complete());
            })
            .join();
            bp.clear(); // the stale DPC runs now
            delay_ms(1);
            assert!(!b.is_complete(), "B was not completed by A's stale DPC");
            client.join();
            unload_clean(drv);
        })
        .expect_clean();
}

/// D-20 (P1): X became current and StartIo is about to run for it when X is cancelled; the
/// cancel routine is stopped after it released the cancel spin lock and before it starts the
/// next packet (at its IoCompleteRequest). StartIo for X then runs, sees that X belongs to the
/// cancel routine and leaves it alone. X completes once, STATUS_CANCELLED, and the queued B is
/// started once, by the cancel routine.
#[test]
fn d20_startio_against_the_cancel_routine() {
    roomy()
        .run(|| {
            let drv = load();
            let p = Process::create("app");
            let hx: Slot<Handle> = slot();
            let hx2 = hx.clone();
            let x_req: Slot<Request> = slot();
            let x_req2 = x_req.clone();
            let start = Breakpoint::set(Point::StartIoEntry, Filter::Any);
            let tx = p.spawn_thread("x-client", move || {
                let h = open();
                *hx2.lock().unwrap() = Some(h);
                let x = irp_ms(h, 1000); // StartIo(X) parks in IoStartPacket
                *x_req2.lock().unwrap() = Some(x);
            });
            let hit = start.wait_hit();
            let x_irp = hit.object;
            let b_req: Slot<Request> = slot();
            let b_req2 = b_req.clone();
            let hb: Slot<Handle> = slot();
            let hb2 = hb.clone();
            // Stays alive until B completes: its exit would cancel B.
            let b_client = p.spawn_thread("b-client", move || {
                let h = open();
                *hb2.lock().unwrap() = Some(h);
                let b = irp_ms(h, 1000); // queued behind X
                *b_req2.lock().unwrap() = Some(b);
                b.wait();
            });
            published(&b_req);
            let in_cancel = Breakpoint::set(Point::CompleteRequestEntry, Filter::Object(x_irp));
            let h = hx.lock().unwrap().expect("opened");
            let canceller = p.spawn_thread("canceller", move || {
                assert_eq!(cancel_io_ex(h, None), STATUS_SUCCESS);
            });
            in_cancel.wait_hit(); // cancel routine: lock released, next packet not started
            start.clear(); // StartIo(X) takes the cancel lock now and must leave X alone
            // x-client returns from its DeviceIoControl: StartIo(X) has run and returned.
            let x = published(&x_req);
            let b = published(&b_req);
            assert!(!x.is_complete(), "{:?}", x.info());
            assert!(!b.is_complete(), "{:?}", b.info());
            in_cancel.clear();
            canceller.join();
            tx.join();
            let xi = x.info();
            assert!(xi.pending && xi.status == Some(STATUS_CANCELLED), "{xi:?}");
            let t_cancel = xi.completed_at.expect("completed");
            b_client.join();
            // B was started once, by the cancel routine, when X completed.
            assert_pending_then(b, STATUS_SUCCESS, t_cancel + SEC);
            let (h, hb) = (h, hb.lock().unwrap().expect("opened"));
            p.spawn_thread("closer", move || {
                close_handle(h);
                close_handle(hb);
            })
            .join();
            unload_clean(drv);
        })
        .expect_clean();
}

/// D-34: StartIo runs at DISPATCH_LEVEL in its three contexts — inside IoStartPacket on the
/// dispatching thread, inside IoStartNextPacket in the timer DPC, and inside the cancel
/// routine — with no IRQL report from ntsim's checked calls (StartIo entry and exit IRQL, rule
/// C21; IoStartNextPacket below DISPATCH_LEVEL, rule C19).
#[test]
fn d34_startio_contexts() {
    machine()
        .run(|| {
            let drv = load();
            let seen: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
            let seen2 = seen.clone();
            let p = Process::create("app");
            let watcher = p.spawn_thread("watcher", move || {
                for _ in 0..3 {
                    let bp = Breakpoint::set(Point::StartIoEntry, Filter::Any);
                    let hit = bp.wait_hit();
                    seen2.lock().unwrap().push(hit.name.clone());
                    bp.clear();
                }
            });
            let c = p.spawn_thread("client", || {
                let h = open();
                let t0 = now();
                // Idle device: StartIo(A) in IoStartPacket, on this thread.
                let a = irp_ms(h, 100);
                let b = irp_ms(h, 1000);
                let c = irp_ms(h, 1000);
                // A's DPC completes it and starts B: StartIo(B) in the DPC.
                sleep(200);
                // Cancelling B in service starts C: StartIo(C) in the cancel routine.
                cancel_io_ex(h, Some(b));
                c.wait();
                assert_pending_then(a, STATUS_SUCCESS, t0 + 100 * MS);
                assert_pending_then(b, STATUS_CANCELLED, t0 + 200 * MS);
                assert_pending_then(c, STATUS_SUCCESS, t0 + 1200 * MS);
                close_handle(h);
            });
            c.join();
            watcher.join();
            let seen = seen.lock().unwrap().clone();
            assert_eq!(seen.len(), 3, "{seen:?}");
            assert!(seen[0].contains("client"), "{seen:?}");
            assert!(
                !seen[1].contains("client"),
                "StartIo(B) in the DPC: {seen:?}"
            );
            assert!(
                seen[2].contains("client"),
                "StartIo(C) in the canceller: {seen:?}"
            );
            unload_clean(drv);
            let _ = iomgr::interrupt_time();
        })
        .expect_clean();
}

/// What the D-22 tests issue: the request in service A on handle H1, the request B of another
/// handle H2 queued behind it, and when.
type D22 = (Handle, Request, Request, u64);

/// D-22's setup: one client thread opens H1 and H2, sends A (1 s) on H1 then B (1 s) on H2, and
/// stays alive until B completes (its exit would cancel its requests). Returns the thread and
/// what it sent, once sent.
fn d22_setup(p: Process) -> (iomgr::UserThread, D22) {
    let issued: Slot<D22> = slot();
    let issued2 = issued.clone();
    let client = p.spawn_thread("client", move || {
        let (h1, h2) = (open(), open());
        let t0 = now();
        let (a, b) = (irp_ms(h1, 1000), irp_ms(h2, 1000));
        *issued2.lock().unwrap() = Some((h1, a, b, t0));
        b.wait();
        close_handle(h2);
    });
    (client, published(&issued))
}

/// D-22, cleanup wins: A's timer has expired (its expiry is processed) and its DPC is parked at
/// its start, so the relay that completes A is not even armed, when H1 is closed. The cleanup
/// claims A under the cancel spin lock and completes it STATUS_CANCELLED at the expiry instant,
/// then starts B (which re-arms the device's timer); the DPC then runs, and its relay claims
/// nothing: A completes once, B enters service once, at that instant, and completes 1 s later.
#[test]
fn d22_cleanup_wins_against_an_expired_timer_whose_dpc_has_not_run() {
    roomy()
        .run(|| {
            let drv = load();
            let p = Process::create("app");
            let (client, (h1, a, b, t0)) = d22_setup(p);
            let expiry = Breakpoint::set(Point::TimerExpiry, Filter::Any);
            let hit = expiry.wait_hit();
            assert_eq!(now(), t0 + SEC);
            // The same interrupt actor calls the timer's DPC next: park it at its start.
            let dpc = Breakpoint::set(Point::DpcStart, Filter::Actor(hit.actor));
            expiry.clear();
            dpc.wait_hit();
            assert!(!a.is_complete());
            p.spawn_thread("closer", move || {
                assert_eq!(close_handle(h1), STATUS_SUCCESS);
                // Contract "Close": H1's request completed before its cleanup did.
                assert_pending_then(a, STATUS_CANCELLED, t0 + SEC);
            })
            .join();
            assert!(!b.is_complete());
            dpc.clear(); // the late DPC relays; the relay finds B's fresh arming unexpired
            delay_ms(1);
            assert!(!b.is_complete(), "B was completed by A's late DPC");
            client.join();
            assert_pending_then(a, STATUS_CANCELLED, t0 + SEC);
            assert_pending_then(b, STATUS_SUCCESS, t0 + 2 * SEC);
            unload_clean(drv);
        })
        .expect_clean();
}

/// D-22, the timer wins: A's expiry has been relayed and the relay DPC has claimed A (it is
/// stopped at IoCompleteRequest) when H1 is closed. The cleanup finds no request of H1 to
/// cancel and completes; A then completes STATUS_SUCCESS (spec B.1 row R7's analogue) and B
/// enters service once, when A completes.
#[test]
fn d22_an_expired_timer_that_claimed_the_request_wins_against_cleanup() {
    roomy()
        .run(|| {
            let drv = load();
            let p = Process::create("app");
            let (client, (h1, a, b, t0)) = d22_setup(p);
            let completing = Breakpoint::set(Point::CompleteRequestEntry, Filter::Any);
            let hit = completing.wait_hit(); // the relay DPC, in IoCompleteRequest for A
            assert_eq!(now(), t0 + SEC);
            assert!(!hit.name.contains("client"), "{hit:?}");
            p.spawn_thread("closer", move || {
                assert_eq!(close_handle(h1), STATUS_SUCCESS);
                assert!(
                    !a.is_complete(),
                    "the cleanup found no routine: the DPC owns A"
                );
            })
            .join();
            assert!(!b.is_complete());
            completing.clear();
            client.join();
            let ai = assert_pending_then(a, STATUS_SUCCESS, t0 + SEC);
            assert_eq!(ai.cancelled_at, None);
            assert_pending_then(b, STATUS_SUCCESS, t0 + 2 * SEC);
            unload_clean(drv);
        })
        .expect_clean();
}
