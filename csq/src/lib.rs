//! Safe cancel-safe IRP queues for Windows WDM drivers.
#![no_std]

mod irp;
mod policy;
mod queue;
mod status;
mod sys;

pub use irp::{
    Completed, DispatchStatus, FileObject, IoctlParameters, Irp, IrpView, MajorFunction, Pending,
    ProcessorMode, TransferMethod, ctl_code,
};
pub use policy::{Bounded, Fifo, Keyed, Position, QueuePolicy};
pub use queue::{CancelSafeQueue, Filter, Refused, Ticket};
pub use status::{NtError, NtStatus};

/// Re-exported initializer library (`pinned-init`): [`pin_init!`](pinned_init::pin_init),
/// [`stack_pin_init!`](pinned_init::stack_pin_init), `#[pin_data]`, [`PinInit`](pinned_init::PinInit).
pub use pinned_init;
