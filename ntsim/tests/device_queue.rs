//! Device queues (spec A.10, F-7), after ReactOS's KeDevQueue kmtest (spec E) plus the keyed
//! removes and WRK's tail-equality quirk.

use ntsim::device_queue::*;
use ntsim::irql::{KeLowerIrql, KeRaiseIrqlToDpcLevel};
use ntsim::ntdef::*;
use ntsim::{Config, Kernel, Rule};

/// A queue and some entries in stable heap storage.
struct Fixture {
    q: Box<KDEVICE_QUEUE>,
    /// Never grows after creation, so the entries' addresses are stable.
    e: Vec<KDEVICE_QUEUE_ENTRY>,
}

impl Fixture {
    fn new(n: usize) -> Fixture {
        let mut f = Fixture {
            q: Box::new(KDEVICE_QUEUE::zeroed()),
            e: (0..n).map(|_| KDEVICE_QUEUE_ENTRY::zeroed()).collect(),
        };
        // SAFETY: the queue is writable heap storage.
        unsafe { KeInitializeDeviceQueue(f.q()) };
        f
    }

    fn q(&mut self) -> *mut KDEVICE_QUEUE {
        &mut *self.q
    }

    fn e(&mut self, i: usize) -> *mut KDEVICE_QUEUE_ENTRY {
        &mut self.e[i]
    }

    fn insert(&mut self, i: usize) -> u8 {
        let (q, e) = (self.q(), self.e(i));
        // SAFETY: live queue and unlinked entry.
        unsafe { KeInsertDeviceQueue(q, e) }
    }

    fn insert_key(&mut self, i: usize, key: u32) -> u8 {
        let (q, e) = (self.q(), self.e(i));
        // SAFETY: live queue and unlinked entry.
        unsafe { KeInsertByKeyDeviceQueue(q, e, key) }
    }

    fn remove(&mut self) -> *mut KDEVICE_QUEUE_ENTRY {
        // SAFETY: live queue.
        unsafe { KeRemoveDeviceQueue(self.q()) }
    }

    fn remove_key(&mut self, key: u32) -> *mut KDEVICE_QUEUE_ENTRY {
        // SAFETY: live queue.
        unsafe { KeRemoveByKeyDeviceQueue(self.q(), key) }
    }

    fn remove_key_if_busy(&mut self, key: u32) -> *mut KDEVICE_QUEUE_ENTRY {
        // SAFETY: live queue.
        unsafe { KeRemoveByKeyDeviceQueueIfBusy(self.q(), key) }
    }

    fn remove_entry(&mut self, i: usize) -> u8 {
        let (q, e) = (self.q(), self.e(i));
        // SAFETY: live queue; the entry is on it or on none.
        unsafe { KeRemoveEntryDeviceQueue(q, e) }
    }

    fn busy(&self) -> bool {
        self.q.Busy != 0
    }

    fn inserted(&self, i: usize) -> bool {
        self.e[i].Inserted != 0
    }

    fn empty(&mut self) -> bool {
        let q = self.q();
        // SAFETY: live queue.
        let h = unsafe { &raw mut (*q).DeviceListHead };
        // SAFETY: as above.
        let (f, b) = (unsafe { (*h).Flink }, unsafe { (*h).Blink });
        f == h && b == h
    }
}

/// Runs `body` at DISPATCH_LEVEL on a fresh machine and expects a clean run.
fn at_dispatch(body: impl FnOnce() + Send + 'static) {
    Kernel::new(Config::default())
        .run(move || {
            let old = KeRaiseIrqlToDpcLevel();
            body();
            KeLowerIrql(old);
        })
        .expect_clean();
}

#[test]
fn initialized_queue_is_empty_and_not_busy() {
    at_dispatch(|| {
        let mut f = Fixture::new(0);
        assert_eq!(f.q.Type, i16::from(DeviceQueueObject));
        assert_eq!(f.q.Size, 40);
        assert!(!f.busy());
        assert!(f.empty());
    });
}

#[test]
fn first_insert_into_idle_queue_is_not_inserted_and_makes_it_busy() {
    at_dispatch(|| {
        let mut f = Fixture::new(1);
        assert_eq!(f.insert(0), 0);
        assert!(!f.inserted(0));
        assert!(f.busy());
        assert!(f.empty());
    });
}

#[test]
fn inserts_into_busy_queue_are_fifo_and_remove_clears_inserted() {
    at_dispatch(|| {
        let mut f = Fixture::new(4);
        assert_eq!(f.insert(0), 0);
        for i in 1..4 {
            assert_eq!(f.insert(i), 1);
            assert!(f.inserted(i));
        }
        for i in 1..4 {
            let e = f.remove();
            assert_eq!(e, f.e(i));
            assert!(!f.inserted(i));
            assert!(f.busy(), "busy while an entry is in service");
        }
        assert!(f.remove().is_null());
        assert!(!f.busy(), "removing from an empty queue makes it idle");
        // Idle again: the next insert is refused once more.
        assert_eq!(f.insert(0), 0);
        assert!(f.busy());
    });
}

#[test]
fn remove_entry_is_true_once_then_false_and_keeps_busy() {
    at_dispatch(|| {
        let mut f = Fixture::new(3);
        f.insert(0);
        f.insert(1);
        f.insert(2);
        assert_eq!(f.remove_entry(1), 1);
        assert!(!f.inserted(1));
        assert_eq!(f.remove_entry(1), 0);
        // An entry that was never inserted (the one in service).
        assert_eq!(f.remove_entry(0), 0);
        assert!(f.busy());
        assert_eq!(f.remove(), f.e(2));
        assert!(f.remove().is_null());
    });
}

#[test]
fn remove_entry_at_passive_raises_itself_and_restores_irql() {
    let out = Kernel::new(Config::default()).run(|| {
        let mut f = Fixture::new(2);
        let old = KeRaiseIrqlToDpcLevel();
        f.insert(0);
        f.insert(1);
        KeLowerIrql(old);
        assert_eq!(f.remove_entry(1), 1);
        assert_eq!(ntsim::irql::KeGetCurrentIrql(), PASSIVE_LEVEL);
    });
    out.expect_clean();
}

#[test]
fn insert_by_key_orders_ascending_keys() {
    // ReactOS kmtest: keys 3, 1, 2 ⇒ after removing the 2 entry, removal gives 1 then 3.
    at_dispatch(|| {
        let mut f = Fixture::new(4);
        assert_eq!(f.insert_key(0, 0), 0);
        assert_eq!(f.e[0].SortKey, 0);
        assert_eq!(f.insert_key(1, 3), 1);
        assert_eq!(f.insert_key(2, 1), 1);
        assert_eq!(f.insert_key(3, 2), 1);
        assert_eq!(f.remove_entry(3), 1);
        assert_eq!(f.remove(), f.e(2));
        assert_eq!(f.remove(), f.e(1));
        assert!(f.remove().is_null());
        assert!(!f.busy());
    });
}

#[test]
fn insert_by_key_is_fifo_among_equal_keys() {
    at_dispatch(|| {
        let mut f = Fixture::new(5);
        f.insert_key(0, 0);
        f.insert_key(1, 5);
        f.insert_key(2, 2);
        f.insert_key(3, 5);
        f.insert_key(4, 2);
        for i in [2, 4, 1, 3] {
            assert_eq!(f.remove(), f.e(i));
        }
    });
}

#[test]
fn remove_by_key_takes_first_key_at_least_key_and_wraps_to_head() {
    at_dispatch(|| {
        let mut f = Fixture::new(4);
        f.insert(0);
        f.insert_key(1, 10);
        f.insert_key(2, 20);
        f.insert_key(3, 30);
        assert_eq!(f.remove_key(15), f.e(2));
        // No key >= 40: the head.
        assert_eq!(f.remove_key(40), f.e(1));
        assert_eq!(f.remove_key(0), f.e(3));
        assert!(f.remove_key(0).is_null());
        assert!(!f.busy(), "keyed remove from an empty queue makes it idle");
    });
}

#[test]
fn remove_by_key_wrk_quirk_prefers_head_over_equal_tail() {
    // spec A.10 / F-7: the tail's key equals Key, yet WRK returns the head.
    at_dispatch(|| {
        let mut f = Fixture::new(3);
        f.insert(0);
        f.insert_key(1, 1);
        f.insert_key(2, 5);
        assert_eq!(f.remove_key(5), f.e(1));
        assert_eq!(f.remove_key(5), f.e(2));
    });
}

#[test]
fn remove_by_key_if_busy_has_no_quirk() {
    at_dispatch(|| {
        let mut f = Fixture::new(3);
        f.insert(0);
        f.insert_key(1, 1);
        f.insert_key(2, 5);
        assert_eq!(f.remove_key_if_busy(5), f.e(2));
        assert_eq!(f.remove_key_if_busy(5), f.e(1));
        assert!(f.remove_key_if_busy(5).is_null());
        assert!(!f.busy());
    });
}

#[test]
fn remove_by_key_if_busy_on_idle_queue_is_null_and_stays_idle() {
    at_dispatch(|| {
        let mut f = Fixture::new(0);
        assert!(f.remove_key_if_busy(0).is_null());
        assert!(!f.busy());
    });
}

#[test]
fn insert_below_dispatch_is_an_irql_violation() {
    let out = Kernel::new(Config::default()).run(|| {
        let mut f = Fixture::new(1);
        f.insert(0);
    });
    let r = out.reports_of(Rule::ApiIrql);
    assert_eq!(r.len(), 1, "{:?}", out.reports);
    assert!(r[0].message.contains("KeInsertDeviceQueue"));
}

#[test]
fn remove_below_dispatch_is_an_irql_violation() {
    let out = Kernel::new(Config::default()).run(|| {
        let mut f = Fixture::new(0);
        f.remove();
    });
    assert_eq!(out.reports_of(Rule::ApiIrql).len(), 1);
}

#[test]
fn device_queue_lock_under_cancel_lock_is_legal() {
    // spec A.1.4: cancel lock → device-queue lock, as a StartIo driver's cancel routine does.
    let out = Kernel::new(Config::default()).run(|| {
        let mut f = Fixture::new(2);
        let mut old = 0;
        // SAFETY: `old` is writable.
        unsafe { ntsim::spinlock::IoAcquireCancelSpinLock(&mut old) };
        f.insert(0);
        f.insert(1);
        assert_eq!(f.remove_entry(1), 1);
        ntsim::spinlock::IoReleaseCancelSpinLock(old);
    });
    out.expect_clean();
}
