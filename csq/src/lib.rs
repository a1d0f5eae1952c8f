//! Safe cancel-safe IRP queues for Windows WDM drivers.
#![no_std]

mod device;
mod event;
mod irp;
mod irql;
mod policy;
mod queue;
mod semaphore;
mod spinlock;
mod status;
mod sys;
mod thread;
mod timer;
mod user_event;
mod wait;

pub use device::{Device, DeviceConfig, DeviceHandler, DriverObject};
pub use event::{Event, EventKind};
pub use irp::{
    Completed, DispatchStatus, FileObject, IoctlParameters, Irp, IrpView, MajorFunction, Pending,
    ProcessorMode, TransferMethod, ctl_code,
};
pub use irql::{DispatchLevel, current_irql};
pub use policy::{Bounded, Fifo, Keyed, Position, QueuePolicy};
pub use queue::{CancelSafeQueue, Filter, Refused, Ticket};
pub use semaphore::Semaphore;
pub use spinlock::{SpinLock, SpinLockDpcGuard, SpinLockGuard};
pub use status::{NtError, NtStatus};
pub use thread::{SystemThread, ThreadMain};
pub use timer::{HasTimer, Timer, TimerCallback, TimerKind};
pub use user_event::UserEvent;
pub use wait::{Interval, WaitResult, Waitable, sleep, wait_any};

/// Re-exported initializer library (`pinned-init`): [`pin_init!`](pinned_init::pin_init),
/// [`stack_pin_init!`](pinned_init::stack_pin_init), `#[pin_data]`, [`PinInit`](pinned_init::PinInit).
pub use pinned_init;

/// Items the crate's macros expand to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::device::{DriverObjectRaw, ascii_to_utf16, driver_entry, driver_unload};
    /// The registry-path parameter type of the generated entry point.
    pub type RegistryPathRaw = crate::sys::RegistryPath;
}
