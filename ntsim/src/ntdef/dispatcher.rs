//! The dispatcher header shared by every waitable kernel object, and the dispatcher objects
//! drivers embed: events, semaphores and timers.

use core::mem::{align_of, size_of};

use super::basic::{LIST_ENTRY, ULARGE_INTEGER};
use super::dpc::KDPC;

/// Kernel object type codes (the C `KOBJECTS` enum, Windows 10 numbering), stored in
/// [`DISPATCHER_HEADER::Type`] and [`KDPC::Type`]. Kept as `u8` because that is the width of the
/// fields that hold them.
pub type KOBJECTS = u8;
pub const EventNotificationObject: KOBJECTS = 0;
pub const EventSynchronizationObject: KOBJECTS = 1;
pub const MutantObject: KOBJECTS = 2;
pub const ProcessObject: KOBJECTS = 3;
pub const QueueObject: KOBJECTS = 4;
pub const SemaphoreObject: KOBJECTS = 5;
pub const ThreadObject: KOBJECTS = 6;
pub const GateObject: KOBJECTS = 7;
pub const TimerNotificationObject: KOBJECTS = 8;
pub const TimerSynchronizationObject: KOBJECTS = 9;
pub const ApcObject: KOBJECTS = 0x12;
pub const DpcObject: KOBJECTS = 0x13;
pub const DeviceQueueObject: KOBJECTS = 0x14;
pub const ThreadedDpcObject: KOBJECTS = 0x1A;

/// The header at offset 0 of every dispatcher (waitable) object.
///
/// `Size` is the object's size in 32-bit words (6 for a `KEVENT`, 8 for a `KSEMAPHORE`, 16 for a
/// `KTIMER`). `SignalState > 0` means signalled; for a semaphore it is the count. `WaitListHead`
/// heads the list of wait blocks on Windows; ntsim keeps its waiters elsewhere and only
/// initializes it as an empty list.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DISPATCHER_HEADER {
    pub Type: u8,
    pub Signalling: u8,
    pub Size: u8,
    pub Reserved1: u8,
    pub SignalState: i32,
    pub WaitListHead: LIST_ENTRY,
}
const _: () = assert!(size_of::<DISPATCHER_HEADER>() == 24 && align_of::<DISPATCHER_HEADER>() == 8);

/// The kind of an event: a notification event stays signalled until reset and releases every
/// waiter; a synchronization event releases one waiter and resets itself.
pub type EVENT_TYPE = i32;
pub const NotificationEvent: EVENT_TYPE = 0;
pub const SynchronizationEvent: EVENT_TYPE = 1;

/// An event object. `Header.Type` is [`EventNotificationObject`] or
/// [`EventSynchronizationObject`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KEVENT {
    pub Header: DISPATCHER_HEADER,
}
const _: () = assert!(size_of::<KEVENT>() == 24);

/// A counting semaphore: the count is `Header.SignalState`, bounded by `Limit`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KSEMAPHORE {
    pub Header: DISPATCHER_HEADER,
    pub Limit: i32,
}
const _: () = assert!(size_of::<KSEMAPHORE>() == 32);

/// The kind of a timer: a notification timer stays signalled until reset; a synchronization timer
/// releases one waiter and resets itself.
pub type TIMER_TYPE = i32;
pub const NotificationTimer: TIMER_TYPE = 0;
pub const SynchronizationTimer: TIMER_TYPE = 1;

/// A timer object. `Header.Type` is [`TimerNotificationObject`] or
/// [`TimerSynchronizationObject`]; `DueTime` is the absolute expiry in interrupt-time units
/// (100 ns); `Dpc` is queued on expiry when non-null; `Period` is in milliseconds (0 = one-shot).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KTIMER {
    pub Header: DISPATCHER_HEADER,
    pub DueTime: ULARGE_INTEGER,
    pub TimerListEntry: LIST_ENTRY,
    pub Dpc: *mut KDPC,
    pub Processor: u32,
    pub Period: u32,
}
const _: () = assert!(size_of::<KTIMER>() == 64);

impl_zeroed!(DISPATCHER_HEADER, KEVENT, KSEMAPHORE, KTIMER);
