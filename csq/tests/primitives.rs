//! The safe kernel primitives on ntsim: spin lock IRQL, events, semaphores, waits, the timer
//! whose drop waits for a running DPC, system threads joined on drop, user events by handle.

mod support;

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use csq::pinned_init::{InPlaceInit, pin_data, pin_init};
use csq::{
    DispatchLevel, Event, EventKind, Interval, NtStatus, ProcessorMode, Semaphore, SpinLock,
    SystemThread, ThreadMain, Timer, TimerCallback, TimerKind, UserEvent, WaitResult, Waitable,
    current_irql, wait_any,
};
use ntsim::breakpoint::{Breakpoint, Filter as BpFilter, Point};
use ntsim::clock::TICKS_PER_MS;
use support::machine;

#[test]
fn spin_lock_guard_runs_at_dispatch_and_restores_the_irql() {
    let out = machine().run(|| {
        let lock = SpinLock::new(0u32);
        assert_eq!(current_irql(), 0);
        {
            let mut g = lock.lock();
            assert_eq!(current_irql(), 2);
            *g += 1;
            let other = SpinLock::new(5u32);
            let level = g.dispatch_level();
            let g2 = other.lock_at_dpc_level(level);
            assert_eq!(*g2, 5);
        }
        assert_eq!(current_irql(), 0);
        assert_eq!(*lock.lock(), 1);
    });
    out.expect_clean();
}

#[test]
fn event_wakes_a_waiter_at_the_time_it_is_set() {
    let out = machine().run(|| {
        let ev: Pin<Arc<Event>> =
            Arc::pin_init(Event::new(EventKind::Notification, false)).unwrap();
        let ev2 = ev.clone();
        let t = ntsim::thread::SystemThread::spawn("setter", move || {
            csq::sleep(Interval::from_millis(5));
            assert!(!ev2.signal());
        });
        assert_eq!(ev.wait(None), WaitResult::Signaled(0));
        assert!(ev.is_set(), "a notification event stays set");
        assert!(ev.reset());
        assert_eq!(ev.wait(Some(Interval::ZERO)), WaitResult::TimedOut);
        t.join();
    });
    assert!(out.time >= 5 * TICKS_PER_MS);
    out.expect_clean();
}

#[test]
fn wait_any_reports_the_signaled_index_or_the_timeout() {
    let out = machine().run(|| {
        let a = Box::pin_init(Event::new(EventKind::Synchronization, false)).unwrap();
        let s = Box::pin_init(Semaphore::new(0, 4)).unwrap();
        assert_eq!(
            wait_any(&[&*a, &*s], Some(Interval::from_millis(3))),
            WaitResult::TimedOut
        );
        assert_eq!(s.release(2), 0);
        assert_eq!(wait_any(&[&*a, &*s], None), WaitResult::Signaled(1));
        assert_eq!(s.count(), 1, "the wait took one unit");
        a.signal();
        assert_eq!(wait_any(&[&*a, &*s], None), WaitResult::Signaled(0));
        assert!(
            !a.is_set(),
            "a synchronization event resets when a wait takes it"
        );
    });
    assert_eq!(out.time, 3 * TICKS_PER_MS);
    out.expect_clean();
}

// ---- Timer: drop cancels and waits for a running DPC -----------------------------------------

#[pin_data]
struct Ticker {
    #[pin]
    timer: Timer<Ticker>,
    log: Arc<Mutex<Vec<&'static str>>>,
    fired: AtomicU32,
}
csq::impl_has_timer!(Ticker, timer);

impl TimerCallback for Ticker {
    fn expired(&self, _level: DispatchLevel<'_>) {
        self.log.lock().unwrap().push("dpc start");
        ntsim::breakpoint::named_point("in-dpc");
        self.fired.fetch_add(1, Ordering::SeqCst);
        self.log.lock().unwrap().push("dpc end");
    }
}

fn ticker(log: &Arc<Mutex<Vec<&'static str>>>) -> Pin<Box<Ticker>> {
    Box::pin_init(pin_init!(Ticker {
        timer <- Timer::new(TimerKind::Notification),
        log: log.clone(),
        fired: AtomicU32::new(0),
    }))
    .unwrap()
}

#[test]
fn timer_runs_its_callback_on_the_container() {
    let out = machine().run(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let t = ticker(&log);
        assert!(!t.timer.arm(Interval::from_millis(10)));
        assert_eq!(t.timer.wait(None), WaitResult::Signaled(0));
        // The waiter may run before the DPC of the same expiry: let it finish.
        csq::sleep(Interval::from_millis(1));
        assert_eq!(t.fired.load(Ordering::SeqCst), 1);
        // A pending expiry is cancelled: no DPC.
        t.timer.arm(Interval::from_millis(10));
        assert!(t.timer.cancel());
        drop(t);
        assert_eq!(*log.lock().unwrap(), ["dpc start", "dpc end"]);
    });
    out.expect_clean();
}

#[test]
fn dropping_a_timer_waits_for_its_running_dpc() {
    let out = machine().run(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let t = ticker(&log);
        let addr = &*t as *const Ticker as usize;
        let bp = Breakpoint::set(Point::Named("in-dpc"), BpFilter::Any);
        // Arm from CPU 1 so that the DPC runs there and parks at DISPATCH_LEVEL on CPU 1.
        ntsim::thread::SystemThread::spawn_on(1, "armer", move || {
            // SAFETY: the test keeps the Ticker alive until the drop below, after this thread.
            let t = unsafe { &*(addr as *const Ticker) };
            t.timer.arm(Interval::from_millis(1));
        })
        .join();
        bp.wait_hit();
        // The DPC is running (parked inside the callback). A helper lets it go 20 ms later.
        let bp = Arc::new(bp);
        let bp2 = bp.clone();
        let log2 = log.clone();
        let resumer = ntsim::thread::SystemThread::spawn("resumer", move || {
            csq::sleep(Interval::from_millis(20));
            log2.lock().unwrap().push("resume");
            bp2.resume();
        });
        // KeCancelTimer returns FALSE (it already fired); the drop must wait for the DPC.
        drop(t);
        log.lock().unwrap().push("dropped");
        resumer.join();
        assert_eq!(
            *log.lock().unwrap(),
            ["dpc start", "resume", "dpc end", "dropped"]
        );
    });
    assert!(out.time >= 21 * TICKS_PER_MS);
    out.expect_clean();
}

#[pin_data]
struct Rearming {
    #[pin]
    timer: Timer<Rearming>,
    fired: AtomicU32,
}
csq::impl_has_timer!(Rearming, timer);

impl TimerCallback for Rearming {
    fn expired(&self, _level: DispatchLevel<'_>) {
        self.fired.fetch_add(1, Ordering::SeqCst);
        self.timer.arm(Interval::from_millis(1));
    }
}

#[test]
fn a_self_rearming_timer_stops_at_drop() {
    let out = machine().run(|| {
        let t = Box::pin_init(pin_init!(Rearming {
            timer <- Timer::new(TimerKind::Synchronization),
            fired: AtomicU32::new(0),
        }))
        .unwrap();
        t.timer.arm(Interval::from_millis(1));
        csq::sleep(Interval::from_millis(5));
        assert!(t.fired.load(Ordering::SeqCst) >= 3);
        drop(t);
        // Nothing fires on freed memory afterwards (ntsim would report a stale DPC).
        csq::sleep(Interval::from_millis(5));
    });
    out.expect_clean();
}

// ---- System threads ---------------------------------------------------------------------------

#[pin_data]
struct Worker {
    #[pin]
    stop: Event,
    ran: AtomicBool,
    stopped: Arc<AtomicBool>,
}

impl ThreadMain for Worker {
    fn run(self: Pin<&Self>) {
        assert_eq!(current_irql(), 0, "system threads run at PASSIVE_LEVEL");
        self.ran.store(true, Ordering::SeqCst);
        self.stop.wait(None);
        csq::sleep(Interval::from_millis(2));
        self.stopped.store(true, Ordering::SeqCst);
    }

    fn request_stop(self: Pin<&Self>) {
        self.stop.signal();
    }
}

#[test]
fn dropping_a_system_thread_stops_and_joins_it() {
    let out = machine().run(|| {
        let stopped = Arc::new(AtomicBool::new(false));
        let stopped2 = stopped.clone();
        let t = Box::try_pin_init(SystemThread::new(pin_init!(Worker {
            stop <- Event::new(EventKind::Notification, false),
            ran: AtomicBool::new(false),
            stopped: stopped2,
        })));
        let t: Pin<Box<SystemThread<Worker>>> = t.expect("thread creation");
        csq::sleep(Interval::from_millis(1));
        assert!(t.data().ran.load(Ordering::SeqCst));
        assert!(!t.is_finished());
        drop(t);
        // The drop returned only after the thread ended (it sleeps after being told to stop).
        assert!(stopped.load(Ordering::SeqCst));
    });
    out.expect_clean();
}

// ---- User events by handle --------------------------------------------------------------------

#[test]
fn a_user_event_reference_checks_the_handle_and_its_object_type() {
    let out = machine().run(|| {
        assert_eq!(
            UserEvent::from_handle(0x1234, ProcessorMode::User).unwrap_err(),
            NtStatus::INVALID_HANDLE
        );
        // A kernel handle to a thread: not an event, and not usable from user mode at all.
        let mut h: ntsim::ntdef::HANDLE = std::ptr::null_mut();
        unsafe extern "system" fn nothing(_: *mut core::ffi::c_void) {}
        // SAFETY: `h` is writable and the start routine does nothing.
        let st = unsafe {
            ntsim::thread::PsCreateSystemThread(
                &mut h,
                0x1F_FFFF,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                Some(nothing),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(st, 0);
        assert_eq!(
            UserEvent::from_handle(h as usize, ProcessorMode::Kernel).unwrap_err(),
            NtStatus::OBJECT_TYPE_MISMATCH
        );
        assert_eq!(
            UserEvent::from_handle(h as usize, ProcessorMode::User).unwrap_err(),
            NtStatus::INVALID_HANDLE
        );
        ntsim::object::ZwClose(h);
    });
    out.expect_clean();
}

#[test]
fn a_user_event_from_a_user_handle_is_signalled_and_released() {
    let out = machine().run(|| {
        let app = ntsim::iomgr::Process::create("app");
        app.spawn_thread("caller", || {
            let h = ntsim::iomgr::create_event(true, false);
            let ev = UserEvent::from_handle(h.raw() as usize, ProcessorMode::User).unwrap();
            assert!(!ev.signal());
            assert!(ev.is_set());
            assert_eq!(ev.wait(Some(Interval::ZERO)), WaitResult::Signaled(0));
            drop(ev);
            // A semaphore handle is refused by type.
            let s = ntsim::iomgr::create_semaphore(0, 1);
            assert_eq!(
                UserEvent::from_handle(s.raw() as usize, ProcessorMode::User).unwrap_err(),
                NtStatus::OBJECT_TYPE_MISMATCH
            );
        })
        .join();
    });
    out.expect_clean();
}

// ---- Remove lock ------------------------------------------------------------------------------

#[test]
fn remove_lock_release_and_wait_waits_for_holders_then_refuses() {
    let out = machine().run(|| {
        let lock: Pin<Arc<csq::RemoveLock>> =
            Arc::pin_init(csq::RemoveLock::new(u32::from_le_bytes(*b"csqT"))).unwrap();
        let l2 = lock.clone();
        let holder = ntsim::thread::SystemThread::spawn("holder", move || {
            let g = l2.acquire().expect("not removed yet");
            csq::sleep(Interval::from_millis(7));
            drop(g);
        });
        csq::sleep(Interval::from_millis(1));
        let mine = lock.acquire().unwrap();
        lock.release_and_wait(mine);
        // The wait ended when the holder released, 7 ms after it acquired.
        assert!(ntsim::iomgr::interrupt_time() >= 7 * TICKS_PER_MS);
        assert_eq!(lock.acquire().unwrap_err(), NtStatus::DELETE_PENDING);
        holder.join();
    });
    out.expect_clean();
}
