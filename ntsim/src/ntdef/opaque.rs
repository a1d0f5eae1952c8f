//! Objects drivers only hold pointers to (threads, processes, APCs, MDLs): opaque byte blocks.
//!
//! Threads and processes begin with their dispatcher header, as on Windows, because drivers wait
//! on them (`KeWaitForSingleObject(thread, …)`); the rest is opaque padding and is **not** the
//! real (much larger, version-dependent) size. ntsim allocates these and tracks their state in
//! side tables.

use core::mem::{align_of, size_of};

use super::dispatcher::DISPATCHER_HEADER;

/// The kernel part of a thread. `Header.Type` is [`super::ThreadObject`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KTHREAD {
    pub Header: DISPATCHER_HEADER,
    _opaque: [u8; 0x40],
}

/// The executive thread object; begins with its [`KTHREAD`] (`Tcb`) as on Windows.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ETHREAD {
    pub Tcb: KTHREAD,
    _opaque: [u8; 0x40],
}

/// The kernel part of a process. `Header.Type` is [`super::ProcessObject`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KPROCESS {
    pub Header: DISPATCHER_HEADER,
    _opaque: [u8; 0x40],
}

/// The executive process object; begins with its [`KPROCESS`] (`Pcb`) as on Windows.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EPROCESS {
    pub Pcb: KPROCESS,
    _opaque: [u8; 0x40],
}

pub type PKTHREAD = *mut KTHREAD;
pub type PETHREAD = *mut ETHREAD;
pub type PKPROCESS = *mut KPROCESS;
pub type PEPROCESS = *mut EPROCESS;

/// An asynchronous procedure call object: opaque, 88 bytes on x64 (the size matters because it
/// is a member of the `IRP.Tail` union).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KAPC {
    _opaque: [u64; 11],
}
const _: () = assert!(size_of::<KAPC>() == 88 && align_of::<KAPC>() == 8);

/// A memory descriptor list: opaque here. 48 bytes is the size of the fixed MDL header on x64
/// (the page-frame array follows it).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MDL {
    _opaque: [u64; 6],
}
const _: () = assert!(size_of::<MDL>() == 48);

/// The wait context block that `DEVICE_OBJECT.Queue` overlays with a list entry (used by the
/// DMA adapter routines): opaque, 72 bytes on x64.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WAIT_CONTEXT_BLOCK {
    _opaque: [u64; 9],
}
const _: () = assert!(size_of::<WAIT_CONTEXT_BLOCK>() == 72);

impl_zeroed!(
    KTHREAD,
    ETHREAD,
    KPROCESS,
    EPROCESS,
    KAPC,
    MDL,
    WAIT_CONTEXT_BLOCK
);
