//! The I/O manager front end for user-mode clients (spec A.6, A.8, A.14, D-21…D-29).
//!
//! What a Win32 program does to a device, as system calls that run the kernel side in the
//! calling emulated thread: [`Process`] and [`UserThread`] (a process is a handle table and a
//! process object; its threads are actors whose requestor mode is `UserMode`), open by device
//! name ([`create_file`]), `DeviceIoControl` ([`device_io_control`]) with the user-visible
//! completion rules of A.6, `CancelIo`/`CancelIoEx` ([`cancel_io_ex`]), `CloseHandle`
//! ([`close_handle`]: IRP_MJ_CLEANUP at once, IRP_MJ_CLOSE when the last reference to the file
//! object goes), thread and process exit (IoCancelThreadIo, rule C15), user events by handle
//! ([`create_event`] and friends), and driver unload ([`unload_driver`]: deferred while a device
//! is referenced, rules C14 and C25, and a [`LeakReport`]).
//!
//! Every request leaves a record ([`RequestInfo`]): whether the dispatch routine returned
//! STATUS_PENDING, the final status and Information, and the virtual completion time.
//!
//! ntsim's bookkeeping is in `IoMgrTable` (a `World` field); the kernel objects (FILE_OBJECT,
//! IRP, KEVENT) have their real layouts.

mod cancel_io;
mod close;
mod dispatch_checks;
mod file;
mod ioctl;
pub(crate) mod owner;
mod process;
mod raw;
mod request;
mod unload;
pub(crate) mod user_event;
mod wait;
mod worker;

use std::collections::HashMap;

pub use cancel_io::{STATUS_NOT_FOUND, cancel_io, cancel_io_ex};
pub use close::close_handle;
pub(crate) use dispatch_checks::check_dispatch_return;
pub use file::{OpenMode, create_file};
pub use ioctl::{device_io_control, device_io_control_with_event};
pub use process::{Process, UserThread, sleep, sleep_until_settled};
pub use request::{IoResult, Request, RequestInfo};
pub use unload::{
    LeakReport, ObjectLeak, PoolLeak, UnloadOutcome, driver_leaks, unload_driver, wait_for_unload,
};
pub use user_event::{
    EventSet, create_event, create_semaphore, event_log, event_log_of, event_object, reset_event,
    set_event,
};
pub use wait::wait_for_single_object;

/// A handle in a process's handle table, as a user-mode program holds it. `Copy` and `Send`, so
/// that scripts can pass it between threads of one process.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(usize);

impl Handle {
    /// The raw HANDLE value (to put in an IOCTL input buffer, e.g. an event handle).
    pub fn raw(self) -> crate::ntdef::HANDLE {
        self.0 as crate::ntdef::HANDLE
    }

    /// A handle from a raw value (for tests that pass bogus handles).
    pub fn from_raw(h: crate::ntdef::HANDLE) -> Handle {
        Handle(h as usize)
    }
}

/// The I/O manager's side tables.
#[derive(Debug, Default)]
pub(crate) struct IoMgrTable {
    pub(crate) processes: HashMap<u32, process::ProcessInfo>,
    pub(crate) next_pid: u32,
    /// Per thread actor that issued I/O (user or system thread): its IRP list and exit state.
    pub(crate) threads: HashMap<crate::sched::ActorId, process::ThreadIo>,
    pub(crate) files: HashMap<usize, file::FileInfo>,
    pub(crate) requests: request::RequestTable,
    pub(crate) worker: worker::Worker,
    pub(crate) owner: owner::OwnerTable,
    pub(crate) unloads: HashMap<usize, unload::UnloadState>,
    pub(crate) events: user_event::EventTable,
    pub(crate) remlocks: crate::remove_lock::RemoveLockTable,
    /// The last number of the machine-wide order of what user mode observes: request
    /// completions and sets of logged events ([`RequestInfo::completed_seq`], [`EventSet::seq`]).
    pub(crate) seq: u64,
}

impl IoMgrTable {
    /// The next number of the observation order.
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

/// The last number handed out in the machine-wide order of request completions and event sets
/// (0 before the first). What a client sees happen after this call gets a larger number.
pub fn sequence() -> u64 {
    crate::machine::Cx::get().lock().iomgr.seq
}

/// The interrupt time now (virtual 100 ns units since boot), as eventctl timestamps lines.
pub fn interrupt_time() -> u64 {
    crate::machine::Cx::get().lock().clock.now()
}
