//! The ntsim backend against small test drivers written here with `csq` (the real drivers are
//! tested in `tests/`, the acceptance suite): what the backend observes (times, statuses,
//! pending, signals, the order of one instant), what it counts (violations, leaks), and that a
//! driver that stops the machine gives a result, not a panic.
#![cfg(not(windows))]

use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};

use csq::pinned_init::{pin_data, pin_init};
use csq::{
    CancelSafeQueue, DeviceConfig, DeviceHandler, DispatchLevel, DispatchStatus, DriverObject,
    Fifo, Interval, Irp, NtStatus, Timer, TimerCallback, TimerKind, UserEvent,
};
use eventctl::backend::Backend;
use eventctl::interface::IOCTL_REGISTER_EVENT;
use eventctl::ntsim_backend::{DriverImage, NtsimBackend};
use eventctl::observation::format_json;
use eventctl::script::parse;

/// What the test driver does wrong, if anything (one driver image, so a global switch).
static BUG: AtomicU8 = AtomicU8::new(0);
const NO_BUG: u8 = 0;
/// Event-based registrations keep their event reference forever.
const LEAK_EVENT: u8 = 1;
/// IRP-based registrations with due 0 are completed twice (rule C1, fatal).
const COMPLETE_TWICE: u8 = 2;

/// A deliberately simple timer-event device: IRP-based requests wait in a cancel-safe queue and
/// one device timer completes the oldest when it expires (then re-arms with the same due time
/// while requests remain); due 0 completes at once; event-based registrations are signalled at
/// once. Enough to exercise the backend; it is no model of the contract.
#[pin_data]
struct TestDevice {
    #[pin]
    queue: CancelSafeQueue<Fifo>,
    #[pin]
    timer: Timer<TestDevice>,
    due: AtomicI64,
}

csq::impl_has_timer!(TestDevice, timer);

impl TimerCallback for TestDevice {
    fn expired(&self, _level: DispatchLevel<'_>) {
        if let Some(irp) = self.queue.remove_next() {
            let _ = irp.complete(NtStatus::SUCCESS, 0);
        }
        if !self.queue.is_empty() {
            self.timer
                .arm(Interval::from_100ns(self.due.load(Ordering::SeqCst) as u64));
        }
    }
}

impl DeviceHandler for TestDevice {
    fn device_control(&self, irp: Irp) -> DispatchStatus {
        if irp.ioctl_code() != Some(IOCTL_REGISTER_EVENT) {
            return irp.complete(NtStatus::NOT_IMPLEMENTED, 0).into();
        }
        let input = irp.buffered_input();
        if input.len() < 24 {
            return irp.complete(NtStatus::INVALID_PARAMETER, 0).into();
        }
        let ty = u32::from_le_bytes(input[0..4].try_into().unwrap());
        let handle = u64::from_le_bytes(input[8..16].try_into().unwrap());
        let due = i64::from_le_bytes(input[16..24].try_into().unwrap());
        match ty {
            0 if due == 0 => {
                if BUG.load(Ordering::SeqCst) == COMPLETE_TWICE {
                    let raw = irp.into_raw().cast();
                    // SAFETY: deliberately wrong: the second completion stops the machine
                    // (rule C1) and this thread never comes back from it.
                    unsafe { ntsim::complete::IofCompleteRequest(raw, 0) };
                    // SAFETY: as above.
                    unsafe { ntsim::complete::IofCompleteRequest(raw, 0) };
                    unreachable!("rule C1 stops the machine");
                }
                irp.complete(NtStatus::SUCCESS, 0).into()
            }
            0 => {
                let due = due.unsigned_abs() as i64;
                match self.queue.insert(irp, ()) {
                    Ok(pending) => {
                        if self.queue.len() == 1 {
                            self.due.store(due, Ordering::SeqCst);
                            self.timer.arm(Interval::from_100ns(due as u64));
                        }
                        pending.into()
                    }
                    Err(refused) => refused.complete().into(),
                }
            }
            1 => match UserEvent::for_request(&irp, handle as usize) {
                Ok(event) => {
                    event.signal();
                    if BUG.load(Ordering::SeqCst) == LEAK_EVENT {
                        std::mem::forget(event);
                    }
                    irp.complete(NtStatus::SUCCESS, 0).into()
                }
                Err(status) => irp.complete(status, 0).into(),
            },
            _ => irp.complete(NtStatus::INVALID_PARAMETER, 0).into(),
        }
    }

    fn cleanup(&self, irp: Irp) -> DispatchStatus {
        if let Some(file) = irp.file_object() {
            self.queue.flush_file(file);
        }
        irp.complete(NtStatus::SUCCESS, 0).into()
    }
}

fn init(driver: &DriverObject) -> Result<(), NtStatus> {
    let config = DeviceConfig {
        name: csq::wstr!("\\Device\\TestEvent"),
        symbolic_link: Some(csq::wstr!("\\DosDevices\\TestEvent")),
        access: csq::DeviceAccess::SystemAndAdministrators,
        device_type: 0x22,
        characteristics: 0x100,
        exclusive: false,
        buffered_io: true,
    };
    driver.create_device(
        &config,
        pin_init!(TestDevice {
            queue <- CancelSafeQueue::new(Fifo),
            timer <- Timer::new(TimerKind::Notification),
            due: AtomicI64::new(0),
        }),
    )?;
    Ok(())
}

fn unload(_driver: &DriverObject) {}

csq::driver_entry!(fn test_entry = init; unload = unload);

const IMAGE: DriverImage = DriverImage {
    service: "TestEvent",
    entry: Some(test_entry),
    device_path: r"\\.\TestEvent",
};

/// Serializes the tests: the bug switch is global.
static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run_with(bug: u8, text: &str) -> (String, eventctl::backend::RunResult) {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    BUG.store(bug, Ordering::SeqCst);
    let script = parse(text).expect("a valid script");
    let result = NtsimBackend::new("test", IMAGE)
        .run(&script)
        .expect("the run is carried out");
    BUG.store(NO_BUG, Ordering::SeqCst);
    (
        format_json(&result.observations, &result.summary("test")),
        result,
    )
}

fn run(text: &str) -> String {
    run_with(NO_BUG, text).0
}

#[test]
fn completions_statuses_pending_and_signals() {
    let out = run("\
at 0 open h1
at 0 irp r1 h1 due=100
at 10 event e1 h1 due=500
at 20 raw short h1 len=16
at 20 raw badtype h1 len=24 type=7
at 30 ioctl other h1 code=0x222004
at 40 badevent nohandle h1 handle=invalid
at 40 badevent notevent h1 handle=not-event
at 50 irp zero h1 due=0
at 300 end
");
    assert_eq!(
        out,
        r#"{"t":10,"event":"e1"}
{"t":10,"req":"e1","status":"STATUS_SUCCESS","info":0,"pending":false}
{"t":20,"req":"short","status":"STATUS_INVALID_PARAMETER","info":0,"pending":false}
{"t":20,"req":"badtype","status":"STATUS_INVALID_PARAMETER","info":0,"pending":false}
{"t":30,"req":"other","status":"STATUS_NOT_IMPLEMENTED","info":0,"pending":false}
{"t":40,"req":"nohandle","status":"STATUS_INVALID_HANDLE","info":0,"pending":false}
{"t":40,"req":"notevent","status":"STATUS_OBJECT_TYPE_MISMATCH","info":0,"pending":false}
{"t":50,"req":"zero","status":"STATUS_SUCCESS","info":0,"pending":false}
{"t":100,"req":"r1","status":"STATUS_SUCCESS","info":0,"pending":true}
{"summary":{"device":"test","requests":8,"success":3,"cancelled":0,"failed":5,"violations":0,"leaks":0}}
"#
    );
}

#[test]
fn cancel_and_close_complete_pending_requests_with_cancelled() {
    let out = run("\
at 0 open h1
at 0 open h2
at 0 irp r1 h1 due=1000
at 0 irp r2 h2 due=1000
at 200 cancel r1
at 300 close h2
at 400 cancel r2
at 500 end
");
    assert_eq!(
        out,
        r#"{"t":200,"req":"r1","status":"STATUS_CANCELLED","info":0,"pending":true}
{"t":300,"req":"r2","status":"STATUS_CANCELLED","info":0,"pending":true}
{"summary":{"device":"test","requests":2,"success":0,"cancelled":2,"failed":0,"violations":0,"leaks":0}}
"#
    );
}

#[test]
fn end_closes_remaining_handles_and_cancels_their_requests() {
    let out = run("at 0 open h1\nat 0 irp r1 h1 due=1000\nat 250 end\n");
    assert_eq!(
        out,
        r#"{"t":250,"req":"r1","status":"STATUS_CANCELLED","info":0,"pending":true}
{"summary":{"device":"test","requests":1,"success":0,"cancelled":1,"failed":0,"violations":0,"leaks":0}}
"#
    );
}

/// A timer expiry and an action at the same millisecond: the expiry comes first, so the cancel
/// finds the request completed.
#[test]
fn actions_run_after_the_timers_of_their_instant() {
    let out = run("\
at 0 open h1
at 0 irp r1 h1 due=100
at 0 irp r2 h1 due=100
at 100 cancel r1
at 200 cancel r2
at 300 end
");
    assert_eq!(
        out,
        r#"{"t":100,"req":"r1","status":"STATUS_SUCCESS","info":0,"pending":true}
{"t":200,"req":"r2","status":"STATUS_SUCCESS","info":0,"pending":true}
{"summary":{"device":"test","requests":2,"success":2,"cancelled":0,"failed":0,"violations":0,"leaks":0}}
"#
    );
}

/// Signals are reported on not-signalled → signalled transitions only.
#[test]
fn a_second_signal_shows_only_after_a_reset() {
    let out = run("\
at 0 open h1
at 0 event e1 h1 due=5
at 10 event e1 h1 due=5
at 20 reset e1
at 30 event e1 h1 due=5
at 40 end
");
    let signals: Vec<&str> = out.lines().filter(|l| l.contains("\"event\"")).collect();
    assert_eq!(
        signals,
        [r#"{"t":0,"event":"e1"}"#, r#"{"t":30,"event":"e1"}"#]
    );
}

#[test]
fn identical_scripts_give_identical_runs() {
    let text = "at 0 open h1\nat 0 open h2\nat 0 irp a h1 due=30\nat 0 irp b h2 due=30\n\
                at 0 irp c h1 due=30\nat 10 cancel b\nat 45 close h1\nat 100 end\n";
    let first = run(text);
    for _ in 0..5 {
        assert_eq!(run(text), first);
    }
}

/// An IOCTL code whose transfer method ntsim does not model fails before any IRP exists.
#[test]
fn a_direct_io_code_fails_in_the_io_manager() {
    let out = run("at 0 open h1\nat 5 ioctl d h1 code=0x222001\nat 10 end\n");
    assert!(
        out.starts_with(r#"{"t":5,"req":"d","status":"0xC00000BB","info":0,"pending":false}"#),
        "{out}"
    );
}

#[test]
fn a_leaked_event_reference_counts_as_a_leak() {
    let (out, result) = run_with(
        LEAK_EVENT,
        "at 0 open h1\nat 0 event e1 h1 due=5\nat 10 end\n",
    );
    assert!(result.leaks >= 1, "{out}");
    assert_eq!(result.violations, 0, "{:?}", result.reports);
    assert!(!result.reports.is_empty());
}

#[test]
fn a_driver_that_stops_the_machine_gives_a_result_with_a_violation() {
    let (out, result) = run_with(
        COMPLETE_TWICE,
        "at 0 open h1\nat 0 irp r1 h1 due=100\nat 50 irp boom h1 due=0\nat 500 end\n",
    );
    assert!(result.violations >= 1, "{out}");
    assert!(
        result.reports.iter().any(|r| r.contains("C1")),
        "{:?}",
        result.reports
    );
    assert!(
        result
            .reports
            .iter()
            .any(|r| r.contains("stopped at 50 ms")),
        "{:?}",
        result.reports
    );
}

#[test]
fn a_device_that_cannot_be_opened_is_an_error() {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let image = DriverImage {
        device_path: r"\\.\NoSuchDevice",
        ..IMAGE
    };
    let script = parse("at 0 open h1\nat 1 end\n").unwrap();
    let error = NtsimBackend::new("test", image).run(&script).unwrap_err();
    assert_eq!(
        error.to_string(),
        r"test: cannot open \\.\NoSuchDevice: 0xC0000034"
    );
}
