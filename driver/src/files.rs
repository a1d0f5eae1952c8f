//! Per-handle state: one remove lock per file object (spec A.17, as the WDK samples do), so
//! that `IRP_MJ_CLEANUP` can wait for the dispatch routines still running on that handle before
//! it cancels the handle's requests (D-23).
//!
//! The context is allocated at `IRP_MJ_CREATE` and freed at `IRP_MJ_CLOSE`, which the I/O
//! manager sends only once no request holds the file object any more (spec A.8).

use csq::pinned_init::{PinInit, pin_data, pin_init};
use csq::{FileObject, NtStatus, PoolArc, RemoveLock, RemoveLockGuard, SpinLock};

use crate::slots::Slots;

/// The most handles open on one device at a time.
pub(crate) const MAX_OPEN_FILES: usize = 256;

/// Pool tag of the per-handle contexts ("CsqF").
const FILE_TAG: u32 = u32::from_le_bytes(*b"CsqF");
/// Tag of the remove locks.
const REMOVE_LOCK_TAG: u32 = u32::from_le_bytes(*b"CsqR");

/// One open handle's context.
#[pin_data]
pub(crate) struct FileContext {
    file: FileObject,
    #[pin]
    remove_lock: RemoveLock,
}

impl FileContext {
    /// Enters a dispatch routine on this handle (`IoAcquireRemoveLock`); the guard is dropped
    /// before the dispatch routine returns, also when it returns STATUS_PENDING.
    ///
    /// # Errors
    /// `STATUS_DELETE_PENDING` once the handle's cleanup has started.
    pub(crate) fn enter(&self) -> Result<RemoveLockGuard<'_>, NtStatus> {
        self.remove_lock.acquire()
    }

    /// Waits until no dispatch routine runs on this handle any more, and makes later ones fail
    /// with STATUS_DELETE_PENDING (`IoReleaseRemoveLockAndWait`). Called once, by cleanup.
    ///
    /// IRQL: PASSIVE_LEVEL.
    pub(crate) fn run_down(&self) {
        // Only one cleanup per file object, so this acquisition cannot fail (spec A.17).
        if let Ok(guard) = self.remove_lock.acquire() {
            self.remove_lock.release_and_wait(guard);
        }
    }
}

/// The open handles of one device.
#[pin_data]
pub(crate) struct Files {
    open: SpinLock<Slots<PoolArc<FileContext>, MAX_OPEN_FILES>>,
}

impl Files {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Files {
            open: SpinLock::new(Slots::new()),
        })
    }

    /// `IRP_MJ_CREATE`: a context for the new handle.
    ///
    /// IRQL: PASSIVE_LEVEL.
    ///
    /// # Errors
    /// `STATUS_INSUFFICIENT_RESOURCES` when the pool is exhausted or too many handles are open.
    pub(crate) fn open(&self, file: FileObject) -> Result<(), NtStatus> {
        let context = PoolArc::pin_init(
            pin_init!(FileContext {
                file,
                remove_lock <- RemoveLock::new(REMOVE_LOCK_TAG),
            }),
            FILE_TAG,
        )?;
        let pushed = self.open.lock().push(context);
        // A refused context is dropped here, outside the lock.
        pushed.map_err(|_refused| NtStatus::INSUFFICIENT_RESOURCES)
    }

    /// The context of an open handle.
    pub(crate) fn get(&self, file: FileObject) -> Option<PoolArc<FileContext>> {
        self.open.lock().iter().find(|c| c.file == file).cloned()
    }

    /// `IRP_MJ_CLOSE`: forgets the handle.
    pub(crate) fn close(&self, file: FileObject) {
        let context = self.open.lock().take_first(|c| c.file == file);
        drop(context);
    }
}
