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
//! # Moving a driver from StartIo to the worker
//!
//! A driver that serializes its requests with `IoStartPacket`/StartIo moves in two steps, each
//! of which leaves a working driver. Both examples below are the same device: a request waits
//! for the number of milliseconds given as its input length, one request at a time (model S of
//! `docs/timer-event-design.md`), and the request in service stays cancelable.
//!
//! ## Step 1: the same StartIo driver, in safe Rust
//!
//! Keep the kernel's device queue and StartIo, but let the crate write the parts that are easy
//! to get wrong (spec A.11.4, B.5 E2a): the cancel routine, StartIo's checks of `CurrentIrp`
//! and `Cancel` (P1, P2), the claim of the request in service under the cancel spin lock with
//! the stale-DPC check (P5), and the order "complete the cancelled request, then start the next
//! packet". The device is created with [`DriverObject::create_startio_device`]; its extension
//! implements [`StartIoHandler`] and embeds a [`StartIoQueue`]:
//!
//! - dispatch: [`StartIoQueue::start_packet`] (`IoStartPacket`, returns [`Pending`]);
//! - StartIo: [`StartIoHandler::start_io`] gets the request as an owned [`InService`] at
//!   DISPATCH_LEVEL (a [`DispatchLevel`] token: it cannot wait, P4), and completes it
//!   ([`InService::complete`]) or arms the timer for it ([`InService::arm_timer`]);
//! - the timer's DPC: [`StartIoQueue::claim_expired`] gives the request back as [`Claimed`],
//!   or `None` if it was cancelled or the DPC is stale; completing it starts the next packet;
//! - cancellation in service: [`StartIoHandler::cancelled_in_service`] (cancel the timer); the
//!   crate completes the request with `STATUS_CANCELLED` and starts the next packet.
//!
//! ```
//! use csq::pinned_init::{pin_data, pin_init};
//! use csq::*;
//!
//! #[pin_data]
//! struct Waiter {
//!     #[pin]
//!     timer: Timer<Waiter>,
//!     start_io: StartIoQueue,
//! }
//! csq::impl_has_timer!(Waiter, timer);
//!
//! impl DeviceHandler for Waiter {
//!     fn device_control(&self, irp: Irp) -> DispatchStatus {
//!         self.start_io.start_packet(irp).into() // IoStartPacket; STATUS_PENDING
//!     }
//! }
//!
//! impl StartIoHandler for Waiter {
//!     fn start_io_queue(&self) -> &StartIoQueue {
//!         &self.start_io
//!     }
//!
//!     fn start_io(&self, request: InService<'_>, _level: DispatchLevel<'_>) {
//!         match request.input_buffer_length() {
//!             0 => request.complete(NtStatus::SUCCESS, 0), // then the next packet starts
//!             ms => {
//!                 request.arm_timer(&self.timer, Interval::from_millis(ms.into()));
//!             }
//!         }
//!     }
//!
//!     fn cancelled_in_service(&self, _tag: ServiceTag, _level: DispatchLevel<'_>) {
//!         self.timer.cancel();
//!     }
//! }
//!
//! impl TimerCallback for Waiter {
//!     fn expired(&self, _level: DispatchLevel<'_>) {
//!         if let Some(request) = self.start_io.claim_expired(&self.timer) {
//!             request.complete(NtStatus::SUCCESS, 0); // then the next packet starts
//!         }
//!     }
//! }
//!
//! fn init(driver: &DriverObject) -> Result<(), NtStatus> {
//!     driver.create_startio_device(
//!         &CONFIG,
//!         pin_init!(Waiter {
//!             timer <- Timer::new(TimerKind::Notification),
//!             start_io: StartIoQueue::new(),
//!         }),
//!     )?;
//!     Ok(())
//! }
//! csq::driver_entry!(fn driver_entry = init);
//! # const CONFIG: DeviceConfig = DeviceConfig {
//! #     name: csq::wstr!("\\Device\\Waiter"), symbolic_link: None,
//! #     access: csq::DeviceAccess::SystemAndAdministrators, device_type: 0x22,
//! #     characteristics: 0x100, exclusive: false, buffered_io: true,
//! # };
//! # include!("../doc/harness.rs");
//! # fn main() { run(driver_entry); }
//! ```
//!
//! ## Step 2: the worker
//!
//! Then replace the device queue, StartIo and the DPC with a [`SerialWorker`]: a cancel-safe
//! queue served by a system thread at PASSIVE_LEVEL. The dispatch routine inserts; the
//! [`SerialHandler`] starts each request and names what it completes on
//! ([`Service::Until`] the timer fires, or [`Service::Complete`] at once); cancellation of a
//! queued or in-service request is handled by the queue (`CsqCompleteCanceledIrp`, in the
//! canceller's context), and the next request enters service at that instant. The handler's
//! code runs at PASSIVE_LEVEL, so it may take locks that wait, touch pageable data, and so on.
//! Cleanup is [`SerialWorker::flush_file`], unload drops the worker (which joins its thread).
//!
//! ```
//! use csq::pinned_init::{pin_data, pin_init, try_pin_init};
//! use csq::*;
//!
//! #[pin_data]
//! struct Waits {
//!     #[pin]
//!     timer: Timer<Waits>,
//! }
//! csq::impl_has_timer!(Waits, timer);
//! impl TimerCallback for Waits {
//!     fn expired(&self, _level: DispatchLevel<'_>) {} // the worker waits on the timer itself
//! }
//!
//! impl SerialHandler for Waits {
//!     fn start(&self, request: &IrpView, _worker: usize) -> Service<'_> {
//!         match request.input_buffer_length() {
//!             0 => Service::Complete(NtStatus::SUCCESS, 0),
//!             ms => {
//!                 self.timer.arm(Interval::from_millis(ms.into()));
//!                 Service::Until { source: &self.timer, status: NtStatus::SUCCESS, information: 0 }
//!             }
//!         }
//!     }
//!
//!     fn stop(&self, _worker: usize) {
//!         self.timer.cancel(); // always before the next request arms it again
//!     }
//! }
//!
//! #[pin_data]
//! struct Waiter {
//!     #[pin]
//!     worker: SerialWorker<Waits>,
//! }
//!
//! impl DeviceHandler for Waiter {
//!     fn device_control(&self, irp: Irp) -> DispatchStatus {
//!         match self.worker.insert(irp, ()) {
//!             Ok(pending) => pending.into(),
//!             Err(refused) => refused.complete().into(), // purged or unloading
//!         }
//!     }
//!
//!     fn cleanup(&self, irp: Irp) -> DispatchStatus {
//!         if let Some(file) = irp.file_object() {
//!             self.worker.flush_file(file);
//!         }
//!         irp.complete(NtStatus::SUCCESS, 0).into()
//!     }
//! }
//!
//! fn init(driver: &DriverObject) -> Result<(), NtStatus> {
//!     let waits = pin_init!(Waits { timer <- Timer::new(TimerKind::Notification) });
//!     driver.create_device(
//!         &CONFIG,
//!         try_pin_init!(Waiter { worker <- SerialWorker::new(waits, Fifo) }? NtStatus),
//!     )?;
//!     Ok(())
//! }
//! csq::driver_entry!(fn driver_entry = init);
//! # const CONFIG: DeviceConfig = DeviceConfig {
//! #     name: csq::wstr!("\\Device\\Waiter"), symbolic_link: None,
//! #     access: csq::DeviceAccess::SystemAndAdministrators, device_type: 0x22,
//! #     characteristics: 0x100, exclusive: false, buffered_io: true,
//! # };
//! # include!("../doc/harness.rs");
//! # fn main() { run(driver_entry); }
//! ```
//!
//! What changes for the driver's users: nothing observable (both devices pass the same
//! scenarios); completions move from the DPC at DISPATCH_LEVEL to the worker thread at
//! PASSIVE_LEVEL (spec B.5 E4). [`SerialWorker`] adds what StartIo never had: stop, resume,
//! purge and drain like a KMDF queue, and more than one worker thread.
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
//!   with the requester's access mode), [`RemoveLock`], [`PoolBox`] (a value in its own pool
//!   block, for records allocated per request), [`PoolArc`] (the same, shared by reference
//!   count: a record that a list and a running request both hold).
//! - [`StartIoQueue`] and [`StartIoHandler`] (the safe StartIo wrapper) and [`SerialWorker`]
//!   with its [`SerialHandler`] (the worker thread that replaces StartIo).
//! - [`DriverObject::create_device`] with a [`DeviceConfig`] (a [`DeviceAccess`] DACL, symbolic
//!   link)
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
mod pool;
mod pool_arc;
mod queue;
mod remove_lock;
mod semaphore;
mod spinlock;
mod startio;
mod status;
mod sys;
mod thread;
mod timer;
mod user_event;
mod wait;
mod worker;

pub use device::{Device, DeviceAccess, DeviceConfig, DeviceHandler, DriverObject};
pub use event::{Event, EventKind};
pub use irp::{
    Completed, DispatchStatus, FileObject, IoctlParameters, Irp, IrpView, MajorFunction, Pending,
    ProcessorMode, TransferMethod, ctl_code,
};
pub use irql::{DispatchLevel, current_irql};
pub use policy::{Bounded, Fifo, Keyed, Position, QueuePolicy};
pub use pool::PoolBox;
pub use pool_arc::PoolArc;
pub use queue::{CancelSafeQueue, Filter, Refused, Ticket};
pub use remove_lock::{RemoveLock, RemoveLockGuard};
pub use semaphore::Semaphore;
pub use spinlock::{SpinLock, SpinLockDpcGuard, SpinLockGuard};
pub use startio::{Claimed, InService, ServiceTag, StartIoHandler, StartIoQueue};
pub use status::{NtError, NtStatus};
pub use thread::{SystemThread, ThreadMain};
pub use timer::{HasTimer, Timer, TimerCallback, TimerKind};
pub use user_event::UserEvent;
pub use wait::{Interval, WaitResult, Waitable, sleep, wait_any};
pub use worker::{SerialHandler, SerialWorker, Service};

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
