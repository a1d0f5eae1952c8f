//! Per-handle records: one remove lock per file object, to run down the dispatch routines that
//! are inside the driver for a handle when its IRP_MJ_CLEANUP arrives (spec A.17, the WDS
//! samples' pattern; scenario D-23).

use core::pin::Pin;

use csq::pinned_init::{pin_data, pin_init};
use csq::{FileObject, NtStatus, PoolBox, RemoveLock, RemoveLockGuard, SpinLock};

use crate::list::{NewNode, PoolList};

/// Pool tag of the per-handle records ("SioF").
pub const FILE_TAG: u32 = u32::from_le_bytes(*b"SioF");

/// What the driver keeps for one open file object.
#[pin_data]
pub struct FileContext {
    file: FileObject,
    #[pin]
    remove_lock: RemoveLock,
}

/// The device's open file objects.
pub struct Files {
    list: SpinLock<PoolList<Pin<PoolBox<FileContext>>>>,
}

impl Files {
    /// No file objects.
    pub const fn new() -> Files {
        Files {
            list: SpinLock::new(PoolList::new()),
        }
    }

    /// IRP_MJ_CREATE: a record for `file`.
    ///
    /// IRQL: PASSIVE_LEVEL.
    ///
    /// # Errors
    /// `STATUS_INSUFFICIENT_RESOURCES`: the open fails and nothing is left behind.
    pub fn open(&self, file: FileObject) -> Result<(), NtStatus> {
        let ctx = PoolBox::try_pin_init(
            FILE_TAG,
            pin_init!(FileContext {
                file,
                remove_lock <- RemoveLock::new(FILE_TAG),
            }),
        )?;
        let node = NewNode::new(FILE_TAG, ctx)?;
        self.list.lock().push_back(node);
        Ok(())
    }

    /// The remove lock of `file`; `None` for a request without a file object or on a file
    /// object this driver did not open.
    ///
    /// The caller must be a dispatch routine of a request on `file` (its IRP not completed yet),
    /// and must drop what it acquires from the lock before that IRP's handle can be cleaned up.
    fn remove_lock(&self, file: Option<FileObject>) -> Option<&RemoveLock> {
        let file = file?;
        let lock: *const RemoveLock = {
            let list = self.list.lock();
            &list.iter().find(|c| c.file == file)?.remove_lock
        };
        // SAFETY: the record of `file` is freed only by `close` (IRP_MJ_CLOSE), which the I/O
        // manager sends once the last reference to the file object is gone. The caller's IRP
        // holds one until it completes, and whatever the caller acquires from the lock holds up
        // the handle's cleanup (`run_down`), which comes before IRP_MJ_CLOSE.
        Some(unsafe { &*lock })
    }

    /// Acquires the remove lock of `file` for a dispatch routine of a request on `file`
    /// (`Ok(None)`: no lock for that request). Drop the guard before returning from the
    /// dispatch routine, also when it returns STATUS_PENDING.
    ///
    /// IRQL: <= DISPATCH_LEVEL.
    ///
    /// # Errors
    /// `STATUS_DELETE_PENDING` once the handle's cleanup has run down the lock: the request must
    /// be completed with it at once.
    pub fn acquire(
        &self,
        file: Option<FileObject>,
    ) -> Result<Option<RemoveLockGuard<'_>>, NtStatus> {
        match self.remove_lock(file) {
            Some(lock) => lock.acquire().map(Some),
            None => Ok(None),
        }
    }

    /// IRP_MJ_CLEANUP: waits until no dispatch routine is inside the driver for `file`, and makes
    /// every later one fail with STATUS_DELETE_PENDING (`IoReleaseRemoveLockAndWait`).
    ///
    /// IRQL: PASSIVE_LEVEL, in the cleanup dispatch routine of `file`.
    pub fn run_down(&self, file: Option<FileObject>) {
        if let Some(lock) = self.remove_lock(file) {
            // Only one cleanup per file object: the acquisition cannot fail (spec A.17).
            if let Ok(guard) = lock.acquire() {
                lock.release_and_wait(guard);
            }
        }
    }

    /// IRP_MJ_CLOSE: frees the record of `file`.
    ///
    /// IRQL: PASSIVE_LEVEL.
    pub fn close(&self, file: Option<FileObject>) {
        let Some(file) = file else { return };
        let gone = self.list.lock().take_if(|c| c.file == file);
        drop(gone); // outside the lock
    }

    /// Whether no file object is open (what unload expects).
    pub fn is_empty(&self) -> bool {
        self.list.lock().is_empty()
    }
}

impl Default for Files {
    fn default() -> Self {
        Files::new()
    }
}
