//! `SerialWorker` on ntsim: a timer handler of the CsqEventSerial kind (the request's timer is
//! armed when it enters service; it completes STATUS_SUCCESS when the timer fires; due 0
//! completes at once), driven through cancel of a queued and of an in-service request,
//! stop/resume/purge/drain, cleanup flush, unload with requests queued, two workers, and the
//! wake accounting of spec B.2 (D-36).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};

use csq::pinned_init::{pin_data, pin_init, stack_try_pin_init};
use csq::{
    DeviceConfig, DeviceHandler, DispatchLevel, DispatchStatus, DriverObject, Fifo, FileObject,
    Interval, Irp, IrpView, NtStatus, SerialHandler, SerialWorker, Service, Timer, TimerCallback,
    TimerKind, TransferMethod, Waitable, ctl_code,
};
use ntsim::breakpoint::{Breakpoint, Filter as BpFilter, Point};
use ntsim::ntdef::{STATUS_CANCELLED, STATUS_PENDING, STATUS_SUCCESS};
use support::{Log, RawIrp, completions, machine, new_log, now_ms, send, sleep_until_ms};

const IOCTL_WAIT: u32 = ctl_code(0x22, 0x800, TransferMethod::Buffered, 0);
const X: usize = 0x100;
const Y: usize = 0x200;

/// Waits the request's input length in milliseconds, on a timer of its worker.
#[pin_data]
struct Waits {
    #[pin]
    timer0: Timer<Waits, 0>,
    #[pin]
    timer1: Timer<Waits, 1>,
    starts: AtomicUsize,
}

csq::impl_has_timer!(Waits, timer0, 0);
csq::impl_has_timer!(Waits, timer1, 1);

impl TimerCallback<0> for Waits {
    fn expired(&self, _level: DispatchLevel<'_>) {}
}

impl TimerCallback<1> for Waits {
    fn expired(&self, _level: DispatchLevel<'_>) {}
}

impl SerialHandler for Waits {
    fn start(&self, request: &IrpView, worker: usize) -> Service<'_> {
        assert_eq!(csq::current_irql(), 0, "the handler runs at PASSIVE_LEVEL");
        self.starts.fetch_add(1, Ordering::Relaxed);
        let due = u64::from(request.input_buffer_length());
        if due == 0 {
            return Service::Complete(NtStatus::SUCCESS, 0);
        }
        let due = Interval::from_millis(due);
        let source: &dyn Waitable = if worker == 0 {
            self.timer0.arm(due);
            &self.timer0
        } else {
            self.timer1.arm(due);
            &self.timer1
        };
        Service::Until {
            source,
            status: NtStatus::SUCCESS,
            information: 0,
        }
    }

    fn stop(&self, worker: usize) {
        if worker == 0 {
            self.timer0.cancel();
        } else {
            self.timer1.cancel();
        }
    }
}

fn waits() -> impl csq::pinned_init::PinInit<Waits> {
    pin_init!(Waits {
        timer0 <- Timer::new(TimerKind::Notification),
        timer1 <- Timer::new(TimerKind::Notification),
        starts: AtomicUsize::new(0),
    })
}

/// A request due after `ms`, sent on `file`, logged in `log`.
fn request(ms: u32, file: usize, log: Log) -> RawIrp {
    let buf: &'static mut [u8] = Box::leak(vec![0u8; 1].into_boxed_slice());
    RawIrp::ioctl(IOCTL_WAIT, file, buf, ms, 0).logged(log)
}

/// Dispatch: queue it, or complete it with the refusal status.
fn submit<const N: usize>(w: &SerialWorker<Waits, Fifo, N>, r: RawIrp) -> NtStatus {
    match w.insert(r.take(), ()) {
        Ok(pending) => DispatchStatus::from(pending).status(),
        Err(refused) => DispatchStatus::from(refused.complete()).status(),
    }
}

#[test]
fn requests_are_served_one_at_a_time_in_order_at_passive_level() {
    let out = machine().run(|| {
        stack_try_pin_init!(let w: SerialWorker<Waits> = SerialWorker::new(waits(), Fifo));
        let w = w.unwrap();
        let log = new_log();
        let (a, b, c) = (request(10, X, log), request(20, X, log), request(0, Y, log));
        for r in [a, b, c] {
            assert_eq!(submit(&w, r), NtStatus::PENDING);
        }
        w.drain();
        assert_eq!(now_ms(), 30);
        assert_eq!(
            completions(log),
            [
                (a, STATUS_SUCCESS, 10),
                (b, STATUS_SUCCESS, 30),
                (c, STATUS_SUCCESS, 30)
            ]
        );
        assert_eq!(w.outstanding(), 0);
    });
    out.expect_clean();
}

#[test]
fn cancelling_a_queued_request_completes_it_at_once_and_leaves_the_one_in_service() {
    let out = machine().run(|| {
        stack_try_pin_init!(let w: SerialWorker<Waits> = SerialWorker::new(waits(), Fifo));
        let w = w.unwrap();
        let log = new_log();
        let (a, b, c) = (
            request(50, X, log),
            request(20, X, log),
            request(20, X, log),
        );
        for r in [a, b, c] {
            submit(&w, r);
        }
        sleep_until_ms(5);
        assert!(b.cancel());
        assert_eq!(completions(log), [(b, STATUS_CANCELLED, 5)]);
        w.drain();
        assert_eq!(
            completions(log),
            [
                (b, STATUS_CANCELLED, 5),
                (a, STATUS_SUCCESS, 50),
                (c, STATUS_SUCCESS, 70)
            ]
        );
    });
    out.expect_clean();
}

#[test]
fn cancelling_the_request_in_service_completes_it_first_and_the_next_enters_service_at_once() {
    let out = machine().run(|| {
        stack_try_pin_init!(let w: SerialWorker<Waits> = SerialWorker::new(waits(), Fifo));
        let w = w.unwrap();
        let log = new_log();
        let (a, b, c) = (
            request(100, X, log),
            request(0, X, log),
            request(30, X, log),
        );
        for r in [a, b, c] {
            submit(&w, r);
        }
        sleep_until_ms(10);
        assert!(a.cancel(), "the request in service stays cancelable");
        // Completed by CsqCompleteCanceledIrp in this (the canceller's) context.
        assert_eq!(completions(log), [(a, STATUS_CANCELLED, 10)]);
        w.drain();
        assert_eq!(
            completions(log),
            [
                (a, STATUS_CANCELLED, 10),
                (b, STATUS_SUCCESS, 10),
                (c, STATUS_SUCCESS, 40)
            ]
        );
    });
    out.expect_clean();
}

#[test]
fn stop_keeps_requests_queued_and_resume_serves_them() {
    let out = machine().run(|| {
        stack_try_pin_init!(let w: SerialWorker<Waits> = SerialWorker::new(waits(), Fifo));
        let w = w.unwrap();
        let log = new_log();
        w.stop();
        let (a, b) = (request(10, X, log), request(20, X, log));
        assert_eq!(submit(&w, a), NtStatus::PENDING, "a stopped queue accepts");
        submit(&w, b);
        sleep_until_ms(100);
        assert!(completions(log).is_empty());
        assert_eq!(w.queued(), 2);
        w.resume();
        w.drain();
        assert_eq!(
            completions(log),
            [(a, STATUS_SUCCESS, 110), (b, STATUS_SUCCESS, 130)]
        );
    });
    out.expect_clean();
}

#[test]
fn purge_cancels_everything_and_refuses_new_requests_until_resume() {
    let out = machine().run(|| {
        stack_try_pin_init!(let w: SerialWorker<Waits> = SerialWorker::new(waits(), Fifo));
        let w = w.unwrap();
        let log = new_log();
        let (a, b, c) = (
            request(100, X, log),
            request(10, X, log),
            request(10, Y, log),
        );
        for r in [a, b, c] {
            submit(&w, r);
        }
        sleep_until_ms(10);
        w.purge();
        assert_eq!(now_ms(), 10);
        let mut done = completions(log);
        done.sort_by_key(|d| d.0.0);
        let mut want = vec![
            (a, STATUS_CANCELLED, 10),
            (b, STATUS_CANCELLED, 10),
            (c, STATUS_CANCELLED, 10),
        ];
        want.sort_by_key(|d| d.0.0);
        assert_eq!(done, want);
        assert_eq!(w.outstanding(), 0);
        let d = request(5, X, log);
        assert_eq!(submit(&w, d), NtStatus::INVALID_DEVICE_STATE);
        w.resume();
        let e = request(5, X, log);
        assert_eq!(submit(&w, e), NtStatus::PENDING);
        w.drain();
        let done = completions(log);
        assert_eq!(done[3].0, d);
        assert_eq!(done[4], (e, STATUS_SUCCESS, 15));
    });
    out.expect_clean();
}

#[test]
fn cleanup_flush_cancels_the_request_in_service_first_then_the_queued_ones_oldest_first() {
    let out = machine().run(|| {
        stack_try_pin_init!(let w: SerialWorker<Waits> = SerialWorker::new(waits(), Fifo));
        let w = w.unwrap();
        let log = new_log();
        let (a, b, c, d) = (
            request(50, X, log),
            request(10, Y, log),
            request(10, X, log),
            request(10, X, log),
        );
        for r in [a, b, c, d] {
            submit(&w, r);
        }
        sleep_until_ms(5);
        assert_eq!(w.flush_file(FileObject::from_addr(X)), 3);
        w.drain();
        assert_eq!(
            completions(log),
            [
                (a, STATUS_CANCELLED, 5),
                (c, STATUS_CANCELLED, 5),
                (d, STATUS_CANCELLED, 5),
                (b, STATUS_SUCCESS, 15)
            ]
        );
    });
    out.expect_clean();
}

#[test]
fn two_workers_serve_two_requests_at_a_time() {
    let out = machine().run(|| {
        stack_try_pin_init!(let w: SerialWorker<Waits, Fifo, 2> = SerialWorker::new(waits(), Fifo));
        let w = w.unwrap();
        let log = new_log();
        let (a, b, c) = (
            request(50, X, log),
            request(50, X, log),
            request(10, X, log),
        );
        for r in [a, b, c] {
            submit(&w, r);
        }
        sleep_until_ms(20);
        assert!(b.cancel(), "in service on the second worker, cancelable");
        w.drain();
        let done = completions(log);
        assert_eq!(done[0], (b, STATUS_CANCELLED, 20));
        // c enters service on b's worker at once.
        assert_eq!(done[1], (c, STATUS_SUCCESS, 30));
        assert_eq!(done[2], (a, STATUS_SUCCESS, 50));
    });
    out.expect_clean();
}

/// D-36: K inserts, J of them cancelled before a worker woke for them: K wakes in all (J of them
/// empty), not a busy loop.
#[test]
fn requests_cancelled_before_the_worker_wakes_cost_one_empty_wake_each() {
    const K: usize = 6;
    let out = machine().run(|| {
        stack_try_pin_init!(let w: SerialWorker<Waits> = SerialWorker::new(waits(), Fifo));
        let w = w.unwrap();
        let log = new_log();
        let gate = request(100, X, log);
        submit(&w, gate);
        sleep_until_ms(1);
        assert_eq!(w.wake_count(), 1);
        let rest: Vec<RawIrp> = (0..K).map(|_| request(10, X, log)).collect();
        for r in &rest {
            submit(&w, *r);
        }
        for r in rest.iter().step_by(2) {
            assert!(r.cancel());
        }
        w.drain();
        assert_eq!(w.wake_count(), 1 + K);
        assert_eq!(now_ms(), 100 + 10 * (K as u64 / 2));
        assert_eq!(w.handler().starts.load(Ordering::Relaxed), 1 + K / 2);
    });
    out.expect_clean();
}

/// The idle race of `drain` (see `Counted::wait_idle`): a completion on one CPU brings the count
/// to 0 and is stopped before it signals the idle event; meanwhile an insert on another CPU
/// counts a new request and resets the event; then the stale signal comes, leaving the event
/// signalled while a request is outstanding. `drain` must still wait for that request. (Against
/// a `drain` that waits on the event alone, it returns at 10 ms with the request in service.)
#[test]
fn drain_waits_for_a_request_inserted_while_a_completion_signals_idle() {
    let out = machine().run(|| {
        stack_try_pin_init!(let w: SerialWorker<Waits> = SerialWorker::new(waits(), Fifo));
        let w = w.unwrap();
        let log = new_log();
        let (a, b) = (request(10, X, log), request(20, X, log));
        let idle_signal = Breakpoint::set(Point::Named("csq.worker.idle_signal"), BpFilter::Any);
        submit(&w, a);
        // A completes at 10 ms; its worker counts it done (0 outstanding) and parks before the
        // idle signal.
        let hit = idle_signal.wait_hit();
        assert_eq!(now_ms(), 10);
        assert_eq!(completions(log), [(a, STATUS_SUCCESS, 10)]);
        assert_eq!(w.outstanding(), 0);
        assert!(
            hit.name.contains("system-thread"),
            "the worker parked: {hit:?}"
        );
        // The insert counts B and resets the idle event...
        submit(&w, b);
        assert_eq!(w.outstanding(), 1);
        // ...and the parked completion now signals it: stale, B is outstanding.
        idle_signal.clear();
        w.drain();
        assert_eq!(
            w.outstanding(),
            0,
            "drain returned with a request outstanding"
        );
        assert_eq!(now_ms(), 30);
        assert_eq!(
            completions(log),
            [(a, STATUS_SUCCESS, 10), (b, STATUS_SUCCESS, 30)]
        );
    });
    out.expect_clean();
}

// ---- a driver: unload with requests queued ---------------------------------------------------

#[pin_data]
struct Ext {
    #[pin]
    worker: SerialWorker<Waits>,
}

impl DeviceHandler for Ext {
    fn device_control(&self, irp: Irp) -> DispatchStatus {
        match self.worker.insert(irp, ()) {
            Ok(pending) => pending.into(),
            Err(refused) => refused.complete().into(),
        }
    }

    fn cleanup(&self, irp: Irp) -> DispatchStatus {
        if let Some(file) = irp.file_object() {
            self.worker.flush_file(file);
        }
        irp.complete(NtStatus::SUCCESS, 0).into()
    }
}

fn init(driver: &DriverObject) -> Result<(), NtStatus> {
    let config = DeviceConfig {
        name: csq::wstr!("\\Device\\WorkerTest"),
        symbolic_link: None,
        access: csq::DeviceAccess::SystemAndAdministrators,
        device_type: 0x22,
        characteristics: 0x100,
        exclusive: false,
        buffered_io: true,
    };
    driver.create_device(
        &config,
        csq::pinned_init::try_pin_init!(Ext {
            worker <- SerialWorker::new(waits(), Fifo),
        }? NtStatus),
    )?;
    Ok(())
}

csq::driver_entry!(fn worker_driver_entry = init);

#[test]
fn unload_cancels_the_requests_and_joins_the_thread() {
    let out = machine().run(|| {
        let driver = ntsim::driver::load_driver("WorkerTest", Some(worker_driver_entry)).unwrap();
        let log = new_log();
        let (a, b, c) = (
            request(100, X, log),
            request(10, X, log),
            request(10, Y, log),
        );
        for r in [a, b, c] {
            assert_eq!(send(driver, r), STATUS_PENDING);
        }
        sleep_until_ms(10);
        support::unload(driver);
        assert_eq!(
            completions(log),
            [
                (a, STATUS_CANCELLED, 10),
                (b, STATUS_CANCELLED, 10),
                (c, STATUS_CANCELLED, 10)
            ]
        );
    });
    out.expect_clean();
}
