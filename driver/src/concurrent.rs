//! `CsqEvent`: model C, the original event sample's semantics (spec B.1, B.5 E1): every
//! IRP-based registration has its own deadline, and all of them run concurrently.
//!
//! Each registration is B.1's `NOTIFY_RECORD`, a pool block with its own timer and DPC, except
//! that the sample's hand-written handshake between the DPC, the cancel routine and cleanup
//! (its rows R1–R10, the `CancelRoutineFreeMemory` flag, `PendingIrp == NULL`) is replaced by a
//! one-IRP [`CancelSafeQueue`] in the record. The IRP waits in that queue; the timer's DPC takes
//! it with `remove_next`, `IoCancelIrp` with the queue's cancel routine, cleanup with
//! `flush_file`. Each of them gets the [`csq::Irp`] only if it won the cancel-routine exchange
//! (spec A.9.7), so exactly one completes it, in every interleaving; the record is freed at
//! PASSIVE_LEVEL by whoever drops the last reference, after its timer is cancelled and its DPC
//! flushed.

use core::sync::atomic::{AtomicBool, Ordering};

use csq::pinned_init::{PinInit, pin_data, pin_init};
use csq::{
    CancelSafeQueue, DispatchLevel, DispatchStatus, Fifo, FileObject, Interval, Irp, NtStatus,
    PoolArc, SpinLock, Timer, TimerCallback, TimerKind,
};

use crate::device::IrpService;
use crate::slots::Slots;

/// The most IRP-based registrations pending on the device at a time.
pub(crate) const MAX_IRP_REGISTRATIONS: usize = 1024;

/// Pool tag of the IRP records ("CsqI").
pub const IRP_RECORD_TAG: u32 = u32::from_le_bytes(*b"CsqI");

/// One IRP-based registration.
#[pin_data]
struct IrpRecord {
    // First: its drop (cancel + wait for a running DPC) happens before the queue goes.
    #[pin]
    timer: Timer<IrpRecord>,
    /// Holds the registration's IRP until the DPC, a cancel or cleanup takes it.
    #[pin]
    queue: CancelSafeQueue<Fifo>,
    file: FileObject,
    /// Set once the IRP was queued and the timer armed: from then on an empty queue means the
    /// registration is over.
    started: AtomicBool,
}

csq::impl_has_timer!(IrpRecord, timer);

impl IrpRecord {
    /// Whether the registration is over: its IRP was completed (by the DPC, a cancel or
    /// cleanup) and only the record is left to free.
    fn is_finished(&self) -> bool {
        self.started.load(Ordering::Acquire) && self.queue.is_empty()
    }
}

impl TimerCallback for IrpRecord {
    /// The deadline: complete the IRP, if a cancel or cleanup did not take it first (B.1 R1;
    /// `None` is R4/R5/R7b's loser).
    fn expired(&self, _level: DispatchLevel<'_>) {
        if let Some(irp) = self.queue.remove_next() {
            irp.complete(NtStatus::SUCCESS, 0);
        }
    }
}

/// The IRP-based registrations of the model-C device.
#[pin_data]
pub(crate) struct Concurrent {
    records: SpinLock<Slots<PoolArc<IrpRecord>, MAX_IRP_REGISTRATIONS>>,
}

impl Concurrent {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Concurrent {
            records: SpinLock::new(Slots::new()),
        })
    }

    /// Frees the records whose IRP is gone (completed by the DPC or cancelled).
    ///
    /// IRQL: PASSIVE_LEVEL.
    fn reap(&self) {
        loop {
            let record = self.records.lock().take_first(|r| r.is_finished());
            let Some(record) = record else { break };
            drop(record);
        }
    }
}

impl IrpService for Concurrent {
    /// Queues `irp` until `due` has passed; returns what the dispatch routine returns.
    ///
    /// IRQL: PASSIVE_LEVEL. Completes the IRP with STATUS_INSUFFICIENT_RESOURCES when no record
    /// can be allocated or too many are pending.
    fn register(&self, irp: Irp, file: FileObject, due: Interval) -> DispatchStatus {
        self.reap();
        let record = PoolArc::pin_init(
            pin_init!(IrpRecord {
                timer <- Timer::new(TimerKind::Notification),
                queue <- CancelSafeQueue::new(Fifo),
                file,
                started: AtomicBool::new(false),
            }),
            IRP_RECORD_TAG,
        );
        let record = match record {
            Ok(r) => r,
            Err(status) => return irp.complete(status, 0).into(),
        };
        let armed = record.clone();
        if let Err(refused) = self.records.lock().push(record) {
            drop(refused);
            return irp.complete(NtStatus::INSUFFICIENT_RESOURCES, 0).into();
        }
        // A Fifo never refuses. If the IRP was cancelled already, the queue completes it with
        // STATUS_CANCELLED inside `insert` (spec A.9.3 step 7) and the record is reaped later.
        let inserted = armed.queue.insert(irp, ());
        if inserted.is_ok() {
            // Armed after the IRP is queued, so the DPC always finds it (or finds it taken). A
            // due time of 0 queues the DPC at once.
            armed.timer.arm(due);
        }
        armed.started.store(true, Ordering::Release);
        match inserted {
            Ok(pending) => pending.into(),
            Err(refused) => refused.complete().into(),
        }
    }

    /// `IRP_MJ_CLEANUP`: completes the pending requests of `file` with STATUS_CANCELLED, oldest
    /// first, and frees their records.
    ///
    /// IRQL: PASSIVE_LEVEL.
    fn cancel_file(&self, file: FileObject) {
        loop {
            let record = self.records.lock().take_first(|r| r.file == file);
            let Some(record) = record else { break };
            // Takes the IRP only if neither the DPC nor a cancel did (B.1 R3; R7: the DPC won).
            record.queue.flush_file(file);
            // The last reference: cancels the timer and waits for a DPC in progress.
            drop(record);
        }
        self.reap();
    }
}
