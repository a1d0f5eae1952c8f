//! Model S equivalence: `\\.\CsqEventSerial` (csq's `SerialWorker`) and `\\.\StartIoEvent`
//! (the StartIo sample) run the same scripts, and what a client observes — every completion and
//! every set of a user event, in the machine's order of observation (`completed_seq`,
//! `EventSet::seq`), with its time, status, information and whether it was pending — is the
//! same list on both, including the order of ties at one instant
//! (`docs/timer-event-design.md`, "Order of completions at one instant").
//!
//! Each script runs on its own machine per device, from one client thread that acts at given
//! instants with `sleep_until_settled` (as eventctl does: an action at T comes after every
//! timer due at T has expired and what it woke has run).

mod support;

use csq_event::interface::{EVENT_BASED, IOCTL_REGISTER_EVENT, IRP_BASED, register_event};
use ntsim::iomgr::{
    self, Handle, OpenMode, Process, Request, cancel_io_ex, close_handle, create_event,
    create_file, device_io_control, event_log, sleep_until_settled,
};
use ntsim::ntdef::{PDRIVER_OBJECT, STATUS_CANCELLED, STATUS_SUCCESS};
use support::{due_ms, ms};

/// One step of a script. Handles and events are numbered in the order they are opened.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// Act at this many milliseconds after boot (once the machine settled there).
    At(u64),
    /// Open a handle (overlapped).
    Open,
    /// Create a user event (auto-reset, not signalled).
    NewEvent,
    /// An IRP-based registration `label` on handle `h`, due after `ms`.
    Irp {
        label: &'static str,
        h: usize,
        ms: u64,
    },
    /// An event-based registration `label` on handle `h` for event `ev`, due after `ms`.
    Event {
        label: &'static str,
        h: usize,
        ev: usize,
        ms: u64,
    },
    /// CancelIoEx of request `label`.
    Cancel(&'static str),
    /// CloseHandle of handle `h` (its cleanup).
    Close(usize),
}

use Step::*;

/// What the client observed: (time in ms, what, status, information, pending). An event set is
/// `("set:" + the registration's label, 0, 0, false)`.
type Observation = (u64, String, i32, usize, bool);

/// The devices compared.
#[derive(Clone, Copy, Debug)]
enum Device {
    CsqEventSerial,
    StartIoEvent,
}

impl Device {
    fn load(self) -> PDRIVER_OBJECT {
        match self {
            Device::CsqEventSerial => {
                ntsim::driver::load_driver("CsqEvent", Some(csq_event::driver_entry))
            }
            Device::StartIoEvent => {
                ntsim::driver::load_driver("StartIoEvent", Some(startio_event::driver_entry))
            }
        }
        .expect("DriverEntry")
    }

    fn name(self) -> &'static str {
        match self {
            Device::CsqEventSerial => support::SERIAL,
            Device::StartIoEvent => r"\\.\StartIoEvent",
        }
    }
}

/// Runs `script` against `device` on a fresh machine and returns the observations in order.
fn observe(device: Device, script: &'static [Step]) -> Vec<Observation> {
    let out = support::machine().run(move || {
        let drv = device.load();
        let p = Process::create("client");
        let t = support::spawn(p, "client", move || run_script(p, device, script));
        let seen = t.join_value();
        support::unload_clean(drv);
        seen
    });
    out.expect_clean()
}

fn run_script(p: Process, device: Device, script: &[Step]) -> Vec<Observation> {
    let mut handles: Vec<Option<Handle>> = Vec::new();
    let mut events: Vec<Handle> = Vec::new();
    let mut requests: Vec<(&'static str, Request, Handle)> = Vec::new();
    let mut registrations: Vec<(&'static str, usize, u64)> = Vec::new();
    let mut last_at = 0;
    for step in script {
        match *step {
            At(t) => {
                last_at = t;
                sleep_until_settled(t);
            }
            Open => handles.push(Some(
                create_file(device.name(), OpenMode::Overlapped).expect("open"),
            )),
            NewEvent => events.push(create_event(false, false)),
            Irp { label, h, ms } => {
                let input = register_event(IRP_BASED, 0, due_ms(ms));
                let h = handles[h].expect("open handle");
                let r = device_io_control(h, IOCTL_REGISTER_EVENT, &input, 0).expect("ioctl");
                requests.push((label, r, h));
            }
            Event { label, h, ev, ms } => {
                let input = register_event(EVENT_BASED, events[ev].raw() as usize, due_ms(ms));
                let h = handles[h].expect("open handle");
                let before = iomgr::sequence();
                let r = device_io_control(h, IOCTL_REGISTER_EVENT, &input, 0).expect("ioctl");
                requests.push((label, r, h));
                registrations.push((label, ev, before));
            }
            Cancel(label) => {
                let &(_, r, h) = requests
                    .iter()
                    .find(|(l, _, _)| *l == label)
                    .expect("a request of the script");
                assert_eq!(cancel_io_ex(h, Some(r)), STATUS_SUCCESS);
            }
            Close(h) => {
                close_handle(handles[h].take().expect("open handle"));
            }
        }
    }
    // Everything due has happened well before this.
    sleep_until_settled(last_at + 10_000);
    let mut seen: Vec<(u64, Observation)> = Vec::new();
    for (label, r, _) in &requests {
        let i = r.info();
        let status = i.status.expect("every request completed");
        seen.push((
            i.completed_seq.expect("completed"),
            (
                i.completed_at.expect("completed") / ms(1),
                (*label).to_string(),
                status,
                i.information,
                i.pending,
            ),
        ));
    }
    // Each set of an event belongs to the registration of it made last before the set.
    for (e, &h) in events.iter().enumerate() {
        for set in event_log(p, h) {
            let label = registrations
                .iter()
                .rev()
                .find(|(_, ev, seq)| *ev == e && *seq < set.seq)
                .map_or("?", |(l, _, _)| l);
            seen.push((
                set.seq,
                (set.time / ms(1), format!("set:{label}"), 0, 0, false),
            ));
        }
    }
    for h in handles.into_iter().flatten() {
        close_handle(h);
    }
    for h in events {
        close_handle(h);
    }
    seen.sort_by_key(|(seq, _)| *seq);
    seen.into_iter().map(|(_, o)| o).collect()
}

/// Runs `script` on both devices, asserts they observed the same, and returns it.
fn equivalent(script: &'static [Step]) -> Vec<Observation> {
    let worker = observe(Device::CsqEventSerial, script);
    let startio = observe(Device::StartIoEvent, script);
    assert_eq!(
        worker, startio,
        "CsqEventSerial (left) and StartIoEvent (right) differ"
    );
    worker
}

fn done(t: u64, what: &str, status: i32, pending: bool) -> Observation {
    (t, what.to_string(), status, 0, pending)
}

fn set(t: u64, what: &str) -> Observation {
    (t, format!("set:{what}"), 0, 0, false)
}

const OK: i32 = STATUS_SUCCESS;
const CANCELLED: i32 = STATUS_CANCELLED;

/// Back-to-back requests: each enters service when the one before it expires; a due time of 0
/// completes at that instant, after the expired one (rule 3).
#[test]
fn back_to_back_requests() {
    let seen = equivalent(&[
        At(0),
        Open,
        Irp {
            label: "a",
            h: 0,
            ms: 10,
        },
        Irp {
            label: "b",
            h: 0,
            ms: 20,
        },
        Irp {
            label: "c",
            h: 0,
            ms: 0,
        },
        Irp {
            label: "d",
            h: 0,
            ms: 5,
        },
        Irp {
            label: "e",
            h: 0,
            ms: 0,
        },
    ]);
    assert_eq!(
        seen,
        [
            done(10, "a", OK, true),
            done(30, "b", OK, true),
            done(30, "c", OK, true),
            done(35, "d", OK, true),
            done(35, "e", OK, true),
        ]
    );
}

/// Cancelling the request in service completes it first; the next one (due 0) enters service
/// and completes at that instant, after it (rule 1).
#[test]
fn cancel_in_service_then_a_due_zero_request() {
    let seen = equivalent(&[
        At(0),
        Open,
        Irp {
            label: "a",
            h: 0,
            ms: 100,
        },
        Irp {
            label: "b",
            h: 0,
            ms: 0,
        },
        Irp {
            label: "c",
            h: 0,
            ms: 30,
        },
        At(10),
        Cancel("a"),
    ]);
    assert_eq!(
        seen,
        [
            done(10, "a", CANCELLED, true),
            done(10, "b", OK, true),
            done(40, "c", OK, true),
        ]
    );
}

/// Cancelling a queued request completes it at once; the one in service keeps its schedule
/// (rule 4).
#[test]
fn cancel_queued() {
    let seen = equivalent(&[
        At(0),
        Open,
        Irp {
            label: "a",
            h: 0,
            ms: 50,
        },
        Irp {
            label: "b",
            h: 0,
            ms: 20,
        },
        Irp {
            label: "c",
            h: 0,
            ms: 20,
        },
        At(5),
        Cancel("b"),
    ]);
    assert_eq!(
        seen,
        [
            done(5, "b", CANCELLED, true),
            done(50, "a", OK, true),
            done(70, "c", OK, true),
        ]
    );
}

/// Close with the handle's request in service, its queued requests, an event registration, and
/// requests of another handle: the one in service, then the handle's queued ones oldest first,
/// then the other handle's next request (due 0) enters service and completes at that instant;
/// the event registration is dropped unsignalled (rule 2).
#[test]
fn close_with_in_service_queued_and_other_handles_requests() {
    let seen = equivalent(&[
        At(0),
        Open,
        Open,
        NewEvent,
        Irp {
            label: "a1",
            h: 0,
            ms: 50,
        },
        Irp {
            label: "b2",
            h: 1,
            ms: 0,
        },
        Irp {
            label: "c1",
            h: 0,
            ms: 20,
        },
        Irp {
            label: "d2",
            h: 1,
            ms: 10,
        },
        Irp {
            label: "e1",
            h: 0,
            ms: 5,
        },
        Event {
            label: "ev1",
            h: 0,
            ev: 0,
            ms: 100,
        },
        At(20),
        Close(0),
    ]);
    assert_eq!(
        seen,
        [
            done(0, "ev1", OK, false),
            done(20, "a1", CANCELLED, true),
            done(20, "c1", CANCELLED, true),
            done(20, "e1", CANCELLED, true),
            done(20, "b2", OK, true),
            done(30, "d2", OK, true),
        ]
    );
}

/// Close of a handle whose request is queued only (another handle's request is in service): its
/// requests are cancelled, the one in service keeps its schedule.
#[test]
fn close_with_only_queued_requests() {
    let seen = equivalent(&[
        At(0),
        Open,
        Open,
        Irp {
            label: "a1",
            h: 0,
            ms: 50,
        },
        Irp {
            label: "b2",
            h: 1,
            ms: 10,
        },
        Irp {
            label: "c1",
            h: 0,
            ms: 0,
        },
        Irp {
            label: "d2",
            h: 1,
            ms: 0,
        },
        At(20),
        Close(1),
    ]);
    assert_eq!(
        seen,
        [
            done(20, "b2", CANCELLED, true),
            done(20, "d2", CANCELLED, true),
            done(50, "a1", OK, true),
            done(50, "c1", OK, true),
        ]
    );
}

/// Event-based registrations with due 0: the event is set before the IOCTL's completion is
/// observed, on both devices, whether or not a request is in service.
#[test]
fn event_based_due_zero() {
    let seen = equivalent(&[
        At(0),
        Open,
        NewEvent,
        Event {
            label: "e0",
            h: 0,
            ev: 0,
            ms: 0,
        },
        Irp {
            label: "a",
            h: 0,
            ms: 10,
        },
        Event {
            label: "e1",
            h: 0,
            ev: 0,
            ms: 0,
        },
        At(10),
        Event {
            label: "e2",
            h: 0,
            ev: 0,
            ms: 0,
        },
    ]);
    assert_eq!(
        seen,
        [
            set(0, "e0"),
            done(0, "e0", OK, false),
            set(0, "e1"),
            done(0, "e1", OK, false),
            done(10, "a", OK, true),
            set(10, "e2"),
            done(10, "e2", OK, false),
        ]
    );
}

/// Events due at the instant an IRP-based request expires, armed after that request's timer
/// (registered while it is in service), and one armed before it (registered before the request
/// entered service): at that instant the events are set first, then the request completes and
/// the next one enters service (rule 5).
#[test]
fn event_due_at_the_completion_instant_of_an_irp_based_request() {
    let seen = equivalent(&[
        At(0),
        Open,
        NewEvent,
        NewEvent,
        NewEvent,
        Irp {
            label: "a",
            h: 0,
            ms: 100,
        },
        Irp {
            label: "b",
            h: 0,
            ms: 0,
        },
        Event {
            label: "after",
            h: 0,
            ev: 0,
            ms: 100,
        },
        At(50),
        Event {
            label: "later",
            h: 0,
            ev: 1,
            ms: 50,
        },
        Irp {
            label: "c",
            h: 0,
            ms: 50,
        },
        Event {
            label: "before",
            h: 0,
            ev: 2,
            ms: 100,
        },
    ]);
    assert_eq!(
        seen,
        [
            done(0, "after", OK, false),
            done(50, "later", OK, false),
            done(50, "before", OK, false),
            // At 100: a's timer was armed first, yet the events due then are set before a
            // completes and b (due 0) enters service and completes (rule 5).
            set(100, "after"),
            set(100, "later"),
            done(100, "a", OK, true),
            done(100, "b", OK, true),
            // c entered service at 100, after "before" was registered: same order.
            set(150, "before"),
            done(150, "c", OK, true),
        ]
    );
}
