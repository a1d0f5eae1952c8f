//! The object manager: object headers, types, handle tables, references (spec A.14, A.16).
//!
//! Objects that ntsim creates (threads, processes, events made by user mode, files, devices)
//! have a header in `ObjectTable`: their type, reference count and name. Handles live in one
//! table per process; kernel handles (System process, `OBJ_KERNEL_HANDLE`) have the top bit set
//! as on Windows, so a user-mode reference to one fails with STATUS_INVALID_HANDLE.

use std::alloc::Layout;
use std::collections::{BTreeMap, HashMap};

use crate::machine::{Cx, World};
use crate::ntdef::{
    ACCESS_MASK, DISPATCHER_HEADER, HANDLE, KPROCESSOR_MODE, LIST_ENTRY, NTSTATUS, PVOID,
    STATUS_ACCESS_DENIED, STATUS_INVALID_HANDLE, STATUS_OBJECT_TYPE_MISMATCH, STATUS_SUCCESS,
    UserMode,
};
use crate::verifier::Rule;

/// Writes a dispatcher header: type, size in 4-byte units, signal state, empty wait list.
///
/// # Safety
/// `h` must be valid for writes.
pub(crate) unsafe fn init_header(h: *mut DISPATCHER_HEADER, ty: u8, size: usize, signal: i32) {
    // SAFETY: the caller guarantees `h` is valid; this only computes a field address.
    let list: *mut LIST_ENTRY = unsafe { &raw mut (*h).WaitListHead };
    let header = DISPATCHER_HEADER {
        Type: ty,
        Signalling: 0,
        Size: (size / 4) as u8,
        Reserved1: 0,
        SignalState: signal,
        WaitListHead: LIST_ENTRY {
            Flink: list,
            Blink: list,
        },
    };
    // SAFETY: the caller guarantees `h` is writable.
    unsafe { h.write(header) };
}

/// The types of objects ntsim knows.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// KEVENT.
    Event,
    /// KSEMAPHORE.
    Semaphore,
    /// KTIMER.
    Timer,
    /// ETHREAD.
    Thread,
    /// EPROCESS.
    Process,
    /// FILE_OBJECT.
    File,
    /// DEVICE_OBJECT.
    Device,
    /// DRIVER_OBJECT.
    Driver,
}

/// An object type, as the `PxxxType` exports point to.
#[repr(C)]
#[derive(Debug)]
#[allow(non_camel_case_types)]
pub struct OBJECT_TYPE {
    kind: ObjectKind,
}

/// Pointer to an object type.
#[allow(non_camel_case_types)]
pub type POBJECT_TYPE = *mut OBJECT_TYPE;

static EVENT_TYPE: OBJECT_TYPE = OBJECT_TYPE {
    kind: ObjectKind::Event,
};
static SEMAPHORE_TYPE: OBJECT_TYPE = OBJECT_TYPE {
    kind: ObjectKind::Semaphore,
};
static THREAD_TYPE: OBJECT_TYPE = OBJECT_TYPE {
    kind: ObjectKind::Thread,
};
static PROCESS_TYPE: OBJECT_TYPE = OBJECT_TYPE {
    kind: ObjectKind::Process,
};
static FILE_TYPE: OBJECT_TYPE = OBJECT_TYPE {
    kind: ObjectKind::File,
};

fn type_ptr(t: &'static OBJECT_TYPE) -> POBJECT_TYPE {
    t as *const OBJECT_TYPE as POBJECT_TYPE
}

/// `*ExEventObjectType`.
#[allow(non_snake_case)]
pub fn ExEventObjectType() -> POBJECT_TYPE {
    type_ptr(&EVENT_TYPE)
}

/// `*ExSemaphoreObjectType`.
#[allow(non_snake_case)]
pub fn ExSemaphoreObjectType() -> POBJECT_TYPE {
    type_ptr(&SEMAPHORE_TYPE)
}

/// `*PsThreadType`.
#[allow(non_snake_case)]
pub fn PsThreadType() -> POBJECT_TYPE {
    type_ptr(&THREAD_TYPE)
}

/// `*PsProcessType`.
#[allow(non_snake_case)]
pub fn PsProcessType() -> POBJECT_TYPE {
    type_ptr(&PROCESS_TYPE)
}

/// `*IoFileObjectType`.
#[allow(non_snake_case)]
pub fn IoFileObjectType() -> POBJECT_TYPE {
    type_ptr(&FILE_TYPE)
}

#[derive(Debug)]
pub(crate) struct ObjectInfo {
    pub(crate) kind: ObjectKind,
    pub(crate) refs: i64,
    pub(crate) name: Option<String>,
    /// Storage ntsim allocated for the object (freed at the last dereference).
    storage: Option<(usize, Layout)>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct HandleEntry {
    pub(crate) object: usize,
    pub(crate) access: ACCESS_MASK,
}

/// Handle value bit that marks a kernel handle.
const KERNEL_HANDLE_BIT: usize = 1 << (usize::BITS - 1);

/// Process id of the System process.
pub const SYSTEM_PROCESS: u32 = 0;

/// Objects and handle tables.
#[derive(Debug, Default)]
pub(crate) struct ObjectTable {
    pub(crate) objects: HashMap<usize, ObjectInfo>,
    /// Per process: handle value → entry.
    handles: HashMap<u32, BTreeMap<usize, HandleEntry>>,
    next_handle: usize,
}

impl World {
    /// Creates an object of `kind` in zeroed storage of `size` bytes (16-aligned), with one
    /// reference.
    pub(crate) fn create_object(
        &mut self,
        kind: ObjectKind,
        size: usize,
        name: Option<String>,
    ) -> usize {
        let layout = Layout::from_size_align(size.max(1), 16).expect("valid object size");
        // SAFETY: the layout has non-zero size.
        let p = unsafe { std::alloc::alloc_zeroed(layout) } as usize;
        assert!(p != 0, "host out of memory");
        self.objects.objects.insert(
            p,
            ObjectInfo {
                kind,
                refs: 1,
                name,
                storage: Some((p, layout)),
            },
        );
        p
    }

    /// Registers an object whose storage someone else owns (a driver's device object).
    pub(crate) fn register_object(&mut self, addr: usize, kind: ObjectKind, name: Option<String>) {
        self.objects.objects.insert(
            addr,
            ObjectInfo {
                kind,
                refs: 1,
                name,
                storage: None,
            },
        );
    }

    pub(crate) fn reference(&mut self, obj: usize) {
        if let Some(o) = self.objects.objects.get_mut(&obj) {
            o.refs += 1;
        }
    }

    /// Drops one reference; returns the kind if it was the last (the object is then gone).
    pub(crate) fn dereference(&mut self, obj: usize, who: String) -> Option<ObjectKind> {
        let Some(o) = self.objects.objects.get_mut(&obj) else {
            self.report(
                Rule::Leak,
                format!("ObDereferenceObject({obj:#x}): not a referenced object"),
                vec![who],
            );
            return None;
        };
        o.refs -= 1;
        if o.refs > 0 {
            return None;
        }
        let o = self.objects.objects.remove(&obj).expect("present");
        if let Some((p, layout)) = o.storage {
            // SAFETY: allocated by `create_object` with this layout; the last reference is gone.
            unsafe { std::alloc::dealloc(p as *mut u8, layout) };
        }
        Some(o.kind)
    }

    /// Adds a handle to `obj` in `process`'s table (no new reference: the caller transfers one).
    pub(crate) fn insert_handle(
        &mut self,
        process: u32,
        obj: usize,
        access: ACCESS_MASK,
    ) -> HANDLE {
        self.objects.next_handle += 4;
        let mut value = self.objects.next_handle;
        if process == SYSTEM_PROCESS {
            value |= KERNEL_HANDLE_BIT;
        }
        self.objects.handles.entry(process).or_default().insert(
            value,
            HandleEntry {
                object: obj,
                access,
            },
        );
        value as HANDLE
    }

    /// Looks a handle up for a caller in `process` with `mode` (kernel handles only from kernel
    /// mode).
    pub(crate) fn lookup_handle(
        &self,
        process: u32,
        handle: HANDLE,
        mode: KPROCESSOR_MODE,
    ) -> Option<HandleEntry> {
        let value = handle as usize;
        let table = if value & KERNEL_HANDLE_BIT != 0 {
            if mode == UserMode {
                return None;
            }
            SYSTEM_PROCESS
        } else {
            process
        };
        self.objects.handles.get(&table)?.get(&value).copied()
    }

    /// Removes a handle; returns its entry.
    pub(crate) fn remove_handle(&mut self, process: u32, handle: HANDLE) -> Option<HandleEntry> {
        let value = handle as usize;
        let table = if value & KERNEL_HANDLE_BIT != 0 {
            SYSTEM_PROCESS
        } else {
            process
        };
        self.objects.handles.get_mut(&table)?.remove(&value)
    }

    /// Every handle of `process` (for process exit).
    pub(crate) fn handles_of(&self, process: u32) -> Vec<HANDLE> {
        self.objects
            .handles
            .get(&process)
            .map(|t| t.keys().map(|&v| v as HANDLE).collect())
            .unwrap_or_default()
    }

    /// The kind of a known object.
    pub(crate) fn object_kind(&self, obj: usize) -> Option<ObjectKind> {
        self.objects.objects.get(&obj).map(|o| o.kind)
    }

    /// References of a known object (for tests of reference counting).
    pub(crate) fn object_refs(&self, obj: usize) -> Option<i64> {
        self.objects.objects.get(&obj).map(|o| o.refs)
    }
}

/// References the object behind `handle`, checking its type and, for a user-mode requestor, the
/// access the handle grants.
///
/// IRQL: <= APC_LEVEL (PASSIVE_LEVEL in practice). Returns STATUS_SUCCESS,
/// STATUS_INVALID_HANDLE (no such handle in the caller's process, or a kernel handle from user
/// mode), STATUS_OBJECT_TYPE_MISMATCH, or STATUS_ACCESS_DENIED.
///
/// # Safety
/// `object` must be valid for a write.
#[allow(non_snake_case)]
pub unsafe fn ObReferenceObjectByHandle(
    handle: HANDLE,
    desired_access: ACCESS_MASK,
    object_type: POBJECT_TYPE,
    access_mode: KPROCESSOR_MODE,
    object: *mut PVOID,
    _handle_information: PVOID,
) -> NTSTATUS {
    let cx = Cx::get();
    cx.check_irql_at_most("ObReferenceObjectByHandle", crate::ntdef::APC_LEVEL);
    let mut g = cx.lock();
    let process = g.threads.process_of(cx.me);
    let Some(entry) = g.lookup_handle(process, handle, access_mode) else {
        return STATUS_INVALID_HANDLE;
    };
    let kind = g.object_kind(entry.object);
    if !object_type.is_null() {
        // SAFETY: a non-NULL object type is one of ntsim's static OBJECT_TYPEs.
        let want = unsafe { (*object_type).kind };
        if kind != Some(want) {
            return STATUS_OBJECT_TYPE_MISMATCH;
        }
    }
    if access_mode == UserMode && entry.access & desired_access != desired_access {
        return STATUS_ACCESS_DENIED;
    }
    g.reference(entry.object);
    // SAFETY: the caller guarantees `object` is writable.
    unsafe { object.write(entry.object as PVOID) };
    STATUS_SUCCESS
}

/// Adds a reference to `object`.
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// `object` must be a live object.
#[allow(non_snake_case)]
pub unsafe fn ObfReferenceObject(object: PVOID) -> isize {
    let cx = Cx::get();
    let mut g = cx.lock();
    g.reference(object as usize);
    g.object_refs(object as usize).unwrap_or(0) as isize
}

/// Drops a reference to `object`; the last one deletes it.
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// `object` must be a live object the caller holds a reference to.
#[allow(non_snake_case)]
pub unsafe fn ObfDereferenceObject(object: PVOID) -> isize {
    let cx = Cx::get();
    cx.check_irql_at_most("ObDereferenceObject", crate::ntdef::DISPATCH_LEVEL);
    let mut g = cx.lock();
    let who = g.who(cx.me);
    g.dereference(object as usize, who);
    g.object_refs(object as usize).unwrap_or(0) as isize
}

/// `ObDereferenceObject`.
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// As [`ObfDereferenceObject`].
#[allow(non_snake_case)]
pub unsafe fn ObDereferenceObject(object: PVOID) {
    // SAFETY: forwarded caller contract.
    unsafe { ObfDereferenceObject(object) };
}

/// Closes a handle of the caller's process (or a kernel handle).
///
/// IRQL: PASSIVE_LEVEL. Returns STATUS_SUCCESS or STATUS_INVALID_HANDLE.
#[allow(non_snake_case)]
pub fn ZwClose(handle: HANDLE) -> NTSTATUS {
    let cx = Cx::get();
    cx.check_irql_at_most("ZwClose", crate::ntdef::PASSIVE_LEVEL);
    let mut g = cx.lock();
    let process = g.threads.process_of(cx.me);
    let Some(entry) = g.remove_handle(process, handle) else {
        return STATUS_INVALID_HANDLE;
    };
    let who = g.who(cx.me);
    g.dereference(entry.object, who);
    STATUS_SUCCESS
}

/// The reference count of an object ntsim tracks, or `None` once it is deleted.
pub fn object_reference_count(object: PVOID) -> Option<i64> {
    Cx::get().lock().object_refs(object as usize)
}
