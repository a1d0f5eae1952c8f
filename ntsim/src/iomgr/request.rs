//! Requests: the IRPs the I/O manager builds for system calls, and their user-visible
//! completion (spec A.6).
//!
//! A request's IRP is queued to the issuing thread's IRP list and carries a reference to its
//! file object (and to the user's event, if any). When IoCompleteRequest finishes the stack
//! walk, [`complete_sink`] does what IopCompleteRequest does in the issuing thread on Windows:
//! buffered copy-back of `Information` bytes on success; unless the status is an error and the
//! IRP was not pending-returned (then the system call returns the error itself), the IOSB is
//! written and the event signalled; the file-object reference is dropped. The IRP is freed once
//! it is completed *and* its dispatch routine has returned (so that the dispatch-return checks
//! can read it) *and* no canceller holds it.

use std::alloc::Layout;
use std::collections::{BTreeMap, HashMap};

use crate::machine::{Cx, World};
use crate::ntdef::{
    CCHAR, IO_STACK_LOCATION_PARAMETERS, IO_STATUS_BLOCK, IRP, KEVENT, KPROCESSOR_MODE, NT_ERROR,
    NTSTATUS, NotificationEvent, PDEVICE_OBJECT, PIRP, PVOID, UCHAR, ULONG,
};
use crate::object::ObjectKind;
use crate::sched::ActorId;

use super::raw::{Raw, new_event};

/// One request and what became of it.
#[derive(Debug)]
pub(crate) struct RequestRecord {
    pub(crate) irp: usize,
    pub(crate) major: UCHAR,
    pub(crate) code: ULONG,
    pub(crate) thread: ActorId,
    pub(crate) file: usize,
    /// The IRP holds a reference to the file object (dropped at completion).
    holds_file_ref: bool,
    /// The user's event (the IRP holds a reference to it), or 0.
    pub(crate) user_event: usize,
    buffered: bool,
    system_buffer: Option<(usize, Layout)>,
    /// The user's input buffer (METHOD_NEITHER hands its address to the driver).
    _input: Vec<u8>,
    /// The user's output buffer.
    output: Vec<u8>,
    iosb: Raw<IO_STATUS_BLOCK>,
    pub(crate) done: Raw<KEVENT>,
    pub(crate) returned: Option<NTSTATUS>,
    pub(crate) dispatch_status: Option<NTSTATUS>,
    pub(crate) status: Option<NTSTATUS>,
    information: usize,
    synchronous_error: bool,
    issued_at: u64,
    completed_at: Option<u64>,
    completed_seq: Option<u64>,
    pub(crate) completed: bool,
    dispatch_returned: bool,
    /// Cancellers holding the IRP alive across IoCancelIrp.
    pub(crate) pins: u32,
    irp_freed: bool,
    pub(crate) cancelled_at: Option<u64>,
    pub(crate) disassociated: bool,
}

/// Every request of the machine, by id and by IRP address (while the IRP lives).
#[derive(Debug, Default)]
pub(crate) struct RequestTable {
    pub(crate) by_id: BTreeMap<u64, RequestRecord>,
    pub(crate) by_irp: HashMap<usize, u64>,
    next: u64,
}

/// What the I/O manager puts in a new IRP.
#[derive(Debug)]
pub(crate) struct IrpSpec {
    pub(crate) major: UCHAR,
    pub(crate) dev: PDEVICE_OBJECT,
    pub(crate) file: usize,
    pub(crate) flags: ULONG,
    pub(crate) params: IO_STACK_LOCATION_PARAMETERS,
    pub(crate) mode: KPROCESSOR_MODE,
    pub(crate) holds_file_ref: bool,
    pub(crate) user_event: usize,
    pub(crate) code: ULONG,
    pub(crate) buffered: bool,
    pub(crate) neither: bool,
    pub(crate) input: Vec<u8>,
    pub(crate) output_len: usize,
}

/// Fills a fresh IRP and its first stack location.
///
/// # Safety
/// `irp` must be a fresh IRP with at least one stack location.
#[allow(clippy::too_many_arguments)]
unsafe fn fill_irp(
    irp: PIRP,
    spec: &IrpSpec,
    thread_object: usize,
    system_buffer: PVOID,
    user_buffer: PVOID,
    type3: PVOID,
    iosb: *mut IO_STATUS_BLOCK,
) {
    // SAFETY: the caller guarantees a fresh IRP, which nothing else references yet.
    let r = unsafe { &mut *irp };
    r.Flags = spec.flags;
    r.AssociatedIrp.SystemBuffer = system_buffer;
    r.UserBuffer = user_buffer;
    r.RequestorMode = spec.mode;
    r.UserIosb = iosb;
    r.UserEvent = spec.user_event as *mut KEVENT;
    r.Tail.Overlay.Thread = thread_object as _;
    r.Tail.Overlay.OriginalFileObject = spec.file as _;
    // SAFETY: the IRP has a next stack location (IoCallDriver moves to it).
    let next = unsafe { crate::irp::IoGetNextIrpStackLocation(irp) };
    // SAFETY: the next stack location of a fresh IRP.
    let sl = unsafe { &mut *next };
    sl.MajorFunction = spec.major;
    sl.MinorFunction = 0;
    sl.Flags = 0;
    sl.Control = 0;
    sl.Parameters = spec.params;
    if spec.neither {
        sl.Parameters.DeviceIoControl.Type3InputBuffer = type3;
    }
    sl.DeviceObject = spec.dev;
    sl.FileObject = spec.file as _;
}

impl World {
    /// Allocates and fills the IRP of a new request issued by `thread`, queues it to the
    /// thread's IRP list and registers the completion sink. Returns (request id, IRP).
    pub(crate) fn issue_request(&mut self, thread: ActorId, spec: IrpSpec) -> (u64, PIRP) {
        // SAFETY: `spec.dev` is a live device object (the caller referenced it).
        let stack = unsafe { (*spec.dev).StackSize }.max(1) as CCHAR;
        let irp = self.allocate_irp(stack);
        let len = spec.input.len().max(spec.output_len);
        let system_buffer = (spec.buffered && len > 0).then(|| {
            let layout = Layout::from_size_align(len, 16).expect("valid buffer size");
            // SAFETY: non-zero size.
            let p = unsafe { std::alloc::alloc_zeroed(layout) };
            assert!(!p.is_null(), "host out of memory");
            // SAFETY: `p` has `len >= input.len()` bytes.
            unsafe { std::ptr::copy_nonoverlapping(spec.input.as_ptr(), p, spec.input.len()) };
            (p as usize, layout)
        });
        let mut input = spec.input.clone();
        let mut output = vec![0u8; spec.output_len];
        let iosb = Raw::<IO_STATUS_BLOCK>::zeroed();
        let thread_object = self.threads.object_of(thread).unwrap_or(0);
        let user_buffer = if spec.output_len > 0 {
            output.as_mut_ptr().cast()
        } else {
            std::ptr::null_mut()
        };
        let type3 = if input.is_empty() {
            std::ptr::null_mut()
        } else {
            input.as_mut_ptr().cast()
        };
        // SAFETY: a fresh IRP with `stack` locations.
        unsafe {
            fill_irp(
                irp,
                &spec,
                thread_object,
                system_buffer.map_or(std::ptr::null_mut(), |(p, _)| p as PVOID),
                user_buffer,
                type3,
                iosb.ptr(),
            )
        };
        self.iomgr.requests.next += 1;
        let id = self.iomgr.requests.next;
        let now = self.clock.now();
        self.iomgr.requests.by_id.insert(
            id,
            RequestRecord {
                irp: irp as usize,
                major: spec.major,
                code: spec.code,
                thread,
                file: spec.file,
                holds_file_ref: spec.holds_file_ref,
                user_event: spec.user_event,
                buffered: spec.buffered,
                system_buffer,
                _input: input,
                output,
                iosb,
                done: new_event(NotificationEvent, false),
                returned: None,
                dispatch_status: None,
                status: None,
                information: 0,
                synchronous_error: false,
                issued_at: now,
                completed_at: None,
                completed_seq: None,
                completed: false,
                dispatch_returned: false,
                pins: 0,
                irp_freed: false,
                cancelled_at: None,
                disassociated: false,
            },
        );
        self.iomgr.requests.by_irp.insert(irp as usize, id);
        self.queue_thread_irp(thread, irp as usize);
        crate::irp::set_sink(self, irp as usize, complete_sink);
        self.irp_event(
            irp as usize,
            thread,
            format!(
                "issued by the I/O manager (request {id}, IRP_MJ {:#x}{})",
                spec.major,
                if spec.code != 0 {
                    format!(", IOCTL {:#x}", spec.code)
                } else {
                    String::new()
                }
            ),
        );
        (id, irp)
    }

    /// The dispatch routine of request `id` returned `status`.
    pub(crate) fn dispatch_returned(&mut self, id: u64, status: NTSTATUS) {
        let rec = self.iomgr.requests.by_id.get_mut(&id).expect("a request");
        rec.dispatch_status = Some(status);
        rec.dispatch_returned = true;
        self.maybe_free_request_irp(id);
    }

    /// Frees a request's IRP and system buffer once nobody can touch them any more.
    pub(crate) fn maybe_free_request_irp(&mut self, id: u64) {
        let rec = self.iomgr.requests.by_id.get_mut(&id).expect("a request");
        if !(rec.completed && rec.dispatch_returned && rec.pins == 0) || rec.irp_freed {
            return;
        }
        rec.irp_freed = true;
        let irp = rec.irp;
        if let Some((p, layout)) = rec.system_buffer.take() {
            // SAFETY: allocated in `issue_request` with this layout; the IRP is done with it.
            unsafe { std::alloc::dealloc(p as *mut u8, layout) };
        }
        self.iomgr.requests.by_irp.remove(&irp);
        if let Some(s) = self.irps.irps.get_mut(&irp) {
            s.freed = true;
        }
        // SAFETY: the IRP was allocated by `allocate_irp` with `Size` bytes, 16-aligned;
        // nothing references it any more. Poison first, as IoFreeIrp does.
        unsafe { free_irp_memory(irp as PIRP) };
    }

    /// The request of a live IRP.
    pub(crate) fn request_of_irp(&self, irp: usize) -> Option<u64> {
        self.iomgr.requests.by_irp.get(&irp).copied()
    }
}

/// # Safety
/// `irp` must be an IRP from `allocate_irp` that nothing references.
unsafe fn free_irp_memory(irp: PIRP) {
    // SAFETY: the caller guarantees a live IRP.
    let size = usize::from(unsafe { (*irp).Size });
    let layout = Layout::from_size_align(size, 16).expect("valid IRP size");
    // SAFETY: `size` bytes of the IRP's storage.
    unsafe { std::ptr::write_bytes(irp.cast::<u8>(), 0xDD, size) };
    // SAFETY: allocated with this layout (allocate_irp: Size bytes, align 16).
    unsafe { std::alloc::dealloc(irp.cast(), layout) };
}

/// What completion leaves in the IRP.
struct Final {
    status: NTSTATUS,
    information: usize,
    pending_returned: bool,
    system_buffer: usize,
}

fn read_final(irp: usize) -> Final {
    // SAFETY: the sink runs on a live IRP that IoCompleteRequest just finished.
    let r = unsafe { &*(irp as *const IRP) };
    // SAFETY: IoStatus.u holds the status of a completed IRP.
    let status = unsafe { r.IoStatus.u.Status };
    // SAFETY: the I/O manager set SystemBuffer (or NULL) in this union.
    let system_buffer = unsafe { r.AssociatedIrp.SystemBuffer } as usize;
    Final {
        status,
        information: r.IoStatus.Information,
        pending_returned: r.PendingReturned != 0,
        system_buffer,
    }
}

/// The I/O manager's completion of its own IRPs (spec A.6, user-visible part).
pub(crate) fn complete_sink(g: &mut World, irp: usize) {
    let Some(id) = g.request_of_irp(irp) else {
        return;
    };
    let f = read_final(irp);
    let now = g.clock.now();
    let rec = g.iomgr.requests.by_id.get_mut(&id).expect("a request");
    rec.status = Some(f.status);
    rec.information = f.information;
    rec.completed_at = Some(now);
    rec.completed = true;
    let seq = g.iomgr.next_seq();
    let rec = g.iomgr.requests.by_id.get_mut(&id).expect("a request");
    rec.completed_seq = Some(seq);
    // spec A.6: buffered copy-back only when the status is not an error, exactly Information
    // bytes (clamped to the user's buffer).
    if rec.buffered && !NT_ERROR(f.status) && f.system_buffer != 0 {
        let n = f.information.min(rec.output.len());
        // SAFETY: the system buffer holds max(in, out) >= n bytes; the output Vec has >= n.
        unsafe {
            std::ptr::copy_nonoverlapping(f.system_buffer as *const u8, rec.output.as_mut_ptr(), n)
        };
    }
    // spec A.6: an error on an IRP that was not pending-returned goes back synchronously: no
    // IOSB, no event.
    let sync_error = NT_ERROR(f.status) && !f.pending_returned;
    let mut signal = None;
    if sync_error {
        rec.synchronous_error = true;
    } else {
        // SAFETY: the IOSB is the record's own storage.
        let iosb = unsafe { &mut *rec.iosb.ptr() };
        iosb.u.Status = f.status;
        iosb.Information = f.information;
        if rec.user_event != 0 {
            signal = Some(rec.user_event);
        }
    }
    let (thread, file, holds_file, user_event, done) = (
        rec.thread,
        rec.file,
        rec.holds_file_ref,
        rec.user_event,
        rec.done.addr(),
    );
    rec.holds_file_ref = false;
    rec.user_event = 0;
    if let Some(e) = signal {
        super::user_event::signal_locked(g, e);
    }
    g.dequeue_thread_irp(thread, irp);
    let who = g
        .sched
        .running
        .map_or_else(|| "I/O manager".to_string(), |a| g.who(a));
    if user_event != 0 {
        g.dereference(user_event, who.clone());
    }
    if holds_file && g.dereference(file, who) == Some(ObjectKind::File) {
        super::worker::queue_close(g, file);
    }
    crate::wait::set_signal_state(done, 1);
    g.signal_object(done);
    super::worker::reap_orphans(g);
    g.maybe_free_request_irp(id);
}

/// An I/O request issued by a system call. `Copy`: it names the request; its record stays
/// readable after completion.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Request {
    pub(crate) id: u64,
}

/// What a completed request gave the caller (GetOverlappedResult).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoResult {
    /// The status: the IOSB's, or the error the system call returned synchronously.
    pub status: NTSTATUS,
    /// IoStatus.Information (bytes for buffered I/O).
    pub information: usize,
    /// The user's output buffer (the first `information` bytes copied back on success).
    pub output: Vec<u8>,
}

/// Everything recorded about a request (what eventctl prints).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestInfo {
    /// The request's number (machine-wide, from 1).
    pub id: u64,
    /// IRP_MJ_xxx.
    pub major: u8,
    /// The I/O control code (0 for other requests).
    pub control_code: u32,
    /// Interrupt time when the system call built the IRP.
    pub issued_at: u64,
    /// What the dispatch routine returned (`None` while it runs).
    pub dispatch_status: Option<NTSTATUS>,
    /// The dispatch routine returned STATUS_PENDING.
    pub pending: bool,
    /// What the system call returned (STATUS_PENDING for an overlapped request left pending).
    pub returned: Option<NTSTATUS>,
    /// The final IoStatus.Status (`None` until completed).
    pub status: Option<NTSTATUS>,
    /// The final IoStatus.Information.
    pub information: usize,
    /// The user's output buffer.
    pub output: Vec<u8>,
    /// Completed with an error without being pending-returned: the system call returned the
    /// error, the IOSB was not written and the event not signalled (spec A.6).
    pub synchronous_error: bool,
    /// Interrupt time of completion.
    pub completed_at: Option<u64>,
    /// The completion's place in the machine-wide order of completions and event sets
    /// ([`super::sequence`]): ties in `completed_at` are told apart by it.
    pub completed_seq: Option<u64>,
    /// The I/O manager called IoCancelIrp on it (CancelIo/CancelIoEx/thread exit), and when.
    pub cancelled_at: Option<u64>,
    /// Disassociated from its thread after the thread-exit cancel timeout (rule C15).
    pub disassociated: bool,
}

impl Request {
    /// The request's number.
    pub fn id(self) -> u64 {
        self.id
    }

    /// The record of the request.
    pub fn info(self) -> RequestInfo {
        let cx = Cx::get();
        let g = cx.lock();
        let r = &g.iomgr.requests.by_id[&self.id];
        RequestInfo {
            id: self.id,
            major: r.major,
            control_code: r.code,
            issued_at: r.issued_at,
            dispatch_status: r.dispatch_status,
            pending: r.dispatch_status == Some(crate::ntdef::STATUS_PENDING),
            returned: r.returned,
            status: r.status,
            information: r.information,
            output: r.output.clone(),
            synchronous_error: r.synchronous_error,
            completed_at: r.completed_at,
            completed_seq: r.completed_seq,
            cancelled_at: r.cancelled_at,
            disassociated: r.disassociated,
        }
    }

    /// Whether the request has completed.
    pub fn is_complete(self) -> bool {
        let cx = Cx::get();
        let g = cx.lock();
        g.iomgr.requests.by_id[&self.id].completed
    }

    /// GetOverlappedResult without waiting: the result if the request has completed.
    pub fn poll(self) -> Option<IoResult> {
        let i = self.info();
        let status = i.status?;
        Some(IoResult {
            status: if i.synchronous_error {
                i.returned.unwrap_or(status)
            } else {
                status
            },
            information: i.information,
            output: i.output,
        })
    }

    /// GetOverlappedResult with waiting: waits (a user-mode wait) until the request completes.
    /// A user thread terminated while it waits does not return.
    pub fn wait(self) -> IoResult {
        let cx = Cx::get();
        let done = cx.lock().iomgr.requests.by_id[&self.id].done.addr();
        if super::wait::user_wait(&cx, vec![done], None).is_err() {
            super::process::terminate_current(&cx);
        }
        self.poll().expect("completed")
    }
}

/// Sends a new request's IRP to its device on the calling thread (IoCallDriver) and records
/// what the dispatch routine returned. Returns (request id, dispatch status).
pub(crate) fn call_driver(cx: &Cx, spec: IrpSpec) -> (u64, NTSTATUS) {
    let dev = spec.dev;
    let (id, irp) = cx.lock().issue_request(cx.me, spec);
    // SAFETY: a fresh IRP whose next stack location the I/O manager filled for `dev`.
    let status = unsafe { crate::driver::IofCallDriver(dev, irp) };
    cx.lock().dispatch_returned(id, status);
    (id, status)
}

/// Sends a request and waits (a kernel-mode wait: termination does not interrupt it) until it
/// completes. Returns (request id, final status).
pub(crate) fn call_driver_and_wait(cx: &Cx, spec: IrpSpec) -> (u64, NTSTATUS) {
    let (id, status) = call_driver(cx, spec);
    let (done, completed) = {
        let g = cx.lock();
        let r = &g.iomgr.requests.by_id[&id];
        (r.done.addr(), r.completed)
    };
    if status == crate::ntdef::STATUS_PENDING || !completed {
        crate::wait::wait_objects("I/O manager wait", vec![done], false, None);
    }
    let mut g = cx.lock();
    let r = g.iomgr.requests.by_id.get_mut(&id).expect("a request");
    let final_status = if status == crate::ntdef::STATUS_PENDING {
        r.status.unwrap_or(status)
    } else {
        status
    };
    r.returned = Some(final_status);
    (id, final_status)
}
