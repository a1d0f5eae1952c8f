//! Safe cancel-safe IRP queues and kernel primitives for Windows WDM drivers.
//!
//! `wdm-csq` (imported as `csq`) wraps the kernel's cancel-safe queue (`IoCsqInitializeEx`
//! and its six callbacks) and the kernel objects a driver needs around it — spin locks, events,
//! semaphores, timers with their DPCs, system threads, user events referenced by handle, devices
//! and the driver entry point — in safe Rust. It is `#![no_std]` and allocates nothing: every
//! kernel object lives in the device extension or other pinned storage and is built in place
//! with the [`pinned_init`] library. It builds against the real kernel on Windows (`wdk-sys`)
//! and against `ntsim`, a user-mode model of the kernel with a verifier, everywhere else; the
//! examples below run on ntsim.
//!
//! # The ownership rule
//!
//! `Irp->CancelRoutine` changes only by atomic exchange, and whoever swaps a non-NULL value out
//! owns the IRP and is the only party that may complete it (spec A.3). In this crate that rule is
//! a type: an [`Irp`] value is the right to complete one IRP.
//!
//! - A dispatch routine receives an `Irp` and must return a [`DispatchStatus`], which can only
//!   be made from what it did with the IRP: [`Irp::complete`] (consumes it; gives
//!   [`Completed`]) or a queue's [`insert`](CancelSafeQueue::insert) (consumes it; gives
//!   [`Pending`], which returns `STATUS_PENDING` — the IRP was marked pending under the queue
//!   lock).
//! - A refused insert gives the `Irp` back ([`Refused`]) with the policy's NT error.
//! - Getting it out of the queue gives an `Irp` again: [`remove_next`](CancelSafeQueue::remove_next),
//!   [`remove_tracked`](CancelSafeQueue::remove_tracked), or — when the IRP is cancelled while
//!   queued — [`QueuePolicy::cancelled`], which runs outside the queue lock and by default
//!   completes it with `STATUS_CANCELLED`.
//! - Since an `Irp` cannot be copied, an IRP cannot be completed twice, nor completed while it
//!   is queued, nor by a remover that lost the race to a cancel. Dropping an `Irp` is the one
//!   mistake the types cannot forbid: it is reported (rule F1 on ntsim, `DbgPrint` on Windows)
//!   and the IRP is completed with `STATUS_CANCELLED`.
//!
//! ```
//! use csq::pinned_init::stack_pin_init;
//! use csq::{CancelSafeQueue, DispatchStatus, Fifo, Irp, NtStatus};
//!
//! /// The dispatch side: queue the request, or complete it if the queue refuses.
//! fn dispatch(queue: &CancelSafeQueue<Fifo>, irp: Irp) -> DispatchStatus {
//!     match queue.insert(irp, ()) {
//!         Ok(pending) => pending.into(),             // STATUS_PENDING
//!         Err(refused) => refused.complete().into(), // the policy's error
//!     }
//! }
//!
//! /// The service side (a worker thread, a DPC): take the next request and finish it.
//! fn service(queue: &CancelSafeQueue<Fifo>) {
//!     if let Some(irp) = queue.remove_next() {
//!         irp.complete(NtStatus::SUCCESS, 0);
//!     }
//! }
//!
//! # fn new_irp() -> Irp {
//! #     let irp = ntsim::irp::IoAllocateIrp(1, 0);
//! #     unsafe { ntsim::irp::IoSetNextIrpStackLocation(irp) };
//! #     unsafe { Irp::from_raw(irp.cast()) }
//! # }
//! ntsim::Kernel::new(ntsim::Config::default())
//!     .run(|| {
//!         stack_pin_init!(let queue = CancelSafeQueue::<Fifo>::new(Fifo));
//!         let (a, b) = (new_irp(), new_irp());
//!         let b_addr = b.addr() as *mut core::ffi::c_void;
//!         assert_eq!(dispatch(&queue, a).status(), NtStatus::PENDING);
//!         assert_eq!(dispatch(&queue, b).status(), NtStatus::PENDING);
//!         service(&queue); // completes a
//!         // The requester of b gives up: IoCancelIrp runs the queue's cancel routine, which
//!         // hands b to `QueuePolicy::cancelled` (STATUS_CANCELLED) outside the lock.
//!         assert_eq!(unsafe { ntsim::cancel::IoCancelIrp(b_addr.cast()) }, 1);
//!         assert!(queue.is_empty());
//!     })
//!     .expect_clean(); // the verifier saw no completion by a non-owner, no double completion
//! ```
//!
//! # Pieces
//!
//! - [`CancelSafeQueue`] with a [`QueuePolicy`] ([`Fifo`], [`Keyed`], [`Bounded`], or your own
//!   that may refuse), removal by [`Filter`] (any, file object, predicate), removal by
//!   [`Ticket`] (`IoCsqRemoveIrp`, with the context's lifetime rule enforced), and
//!   [`flush_file`](CancelSafeQueue::flush_file) for `IRP_MJ_CLEANUP`.
//! - [`SpinLock`] (guards its data; the guard proves [`DispatchLevel`]), [`Event`],
//!   [`Semaphore`], [`wait_any`], [`Timer`] (drop cancels and waits for a running DPC),
//!   [`SystemThread`] (joined before its data goes), [`UserEvent`] (referenced from a handle
//!   with the requester's access mode), [`RemoveLock`].
//! - [`DriverObject::create_device`] with a [`DeviceConfig`] (a [`DeviceAccess`] DACL, symbolic link)
//!   and a [`DeviceHandler`] extension whose methods are the dispatch routines;
//!   [`driver_entry!`] for the entry point on both backends; [`wstr!`] for UTF-16 names.
//!
//! Every function documents the IRQL it may be called at and the statuses it can return.
#![no_std]

mod device;
mod event;
pub mod image;
mod irp;
mod irql;
mod policy;
mod queue;
mod remove_lock;
mod semaphore;
mod spinlock;
mod status;
mod sys;
mod thread;
mod timer;
mod user_event;
mod wait;

pub use device::{Device, DeviceAccess, DeviceConfig, DeviceHandler, DriverObject};
pub use event::{Event, EventKind};
pub use irp::{
    Completed, DispatchStatus, FileObject, IoctlParameters, Irp, IrpView, MajorFunction, Pending,
    ProcessorMode, TransferMethod, ctl_code,
};
pub use irql::{DispatchLevel, current_irql};
pub use policy::{Bounded, Fifo, Keyed, Position, QueuePolicy};
pub use queue::{CancelSafeQueue, Filter, Refused, Ticket};
pub use remove_lock::{RemoveLock, RemoveLockGuard};
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
