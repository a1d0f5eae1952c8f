//! DeviceIoControl (NtDeviceIoControlFile): the IRP_MJ_DEVICE_CONTROL request, METHOD_BUFFERED
//! and METHOD_NEITHER.

use crate::machine::Cx;
use crate::ntdef::{
    EVENT_MODIFY_STATE, IO_STACK_LOCATION_DEVICE_IO_CONTROL, IO_STACK_LOCATION_PARAMETERS,
    IRP_BUFFERED_IO, IRP_DEALLOCATE_BUFFER, IRP_INPUT_OPERATION, IRP_MJ_DEVICE_CONTROL,
    IRP_SYNCHRONOUS_API, METHOD_BUFFERED, METHOD_FROM_CTL_CODE, METHOD_NEITHER, NTSTATUS,
    PDEVICE_OBJECT, STATUS_INVALID_HANDLE, STATUS_NOT_SUPPORTED, STATUS_OBJECT_TYPE_MISMATCH,
    STATUS_PENDING, UserMode,
};
use crate::object::ObjectKind;

use super::Handle;
use super::file::{acquire_file_lock, release_file_lock};
use super::request::{IrpSpec, Request, call_driver};
use super::wait::user_wait;

/// DeviceIoControl on `h` with control code `code`, the bytes of `input`, and an output buffer
/// of `output_len` bytes. The calling thread runs the kernel side: the I/O manager builds the
/// IRP (METHOD_BUFFERED: a system buffer of max(in, out) bytes holding the input; METHOD_NEITHER:
/// the user buffers themselves) and calls the driver's dispatch routine.
///
/// On a synchronous handle the call waits for the completion (and for earlier requests on the
/// same file object, which the I/O manager serializes); on an overlapped handle it returns at
/// once, with the request pending or completed. Read the outcome from the [`Request`]
/// (`info()`, `poll()`, `wait()`).
///
/// Errors before an IRP exists: STATUS_INVALID_HANDLE, STATUS_OBJECT_TYPE_MISMATCH (not a file
/// handle), STATUS_NOT_SUPPORTED (METHOD_IN_DIRECT/OUT_DIRECT, which ntsim does not model).
/// A user thread terminated while it waits does not return.
pub fn device_io_control(
    h: Handle,
    code: u32,
    input: &[u8],
    output_len: usize,
) -> Result<Request, NTSTATUS> {
    ioctl(h, code, input, output_len, None)
}

/// As [`device_io_control`], with an OVERLAPPED event: the I/O manager references it by handle
/// (EVENT_MODIFY_STATE), resets it, and signals it at completion (spec A.6: not for an error
/// returned synchronously). Also returns the event's reference errors.
pub fn device_io_control_with_event(
    h: Handle,
    code: u32,
    input: &[u8],
    output_len: usize,
    event: Handle,
) -> Result<Request, NTSTATUS> {
    ioctl(h, code, input, output_len, Some(event))
}

fn ioctl(
    h: Handle,
    code: u32,
    input: &[u8],
    output_len: usize,
    event: Option<Handle>,
) -> Result<Request, NTSTATUS> {
    let cx = Cx::get();
    if super::process::termination_requested(&cx) {
        super::process::terminate_current(&cx);
    }
    let method = METHOD_FROM_CTL_CODE(code);
    if method != METHOD_BUFFERED && method != METHOD_NEITHER {
        return Err(STATUS_NOT_SUPPORTED);
    }
    let (file, dev, sync, mode, user_event) = {
        let mut g = cx.lock();
        let pid = g.threads.process_of(cx.me);
        let mode = g.requestor_mode(cx.me);
        let entry = g
            .lookup_handle(pid, h.raw(), mode)
            .ok_or(STATUS_INVALID_HANDLE)?;
        if g.object_kind(entry.object) != Some(ObjectKind::File) {
            return Err(STATUS_OBJECT_TYPE_MISMATCH);
        }
        let user_event = match event {
            None => 0,
            Some(eh) => {
                let e = g
                    .lookup_handle(pid, eh.raw(), mode)
                    .ok_or(STATUS_INVALID_HANDLE)?;
                if g.object_kind(e.object) != Some(ObjectKind::Event) {
                    return Err(STATUS_OBJECT_TYPE_MISMATCH);
                }
                if mode == UserMode && e.access & EVENT_MODIFY_STATE == 0 {
                    return Err(crate::ntdef::STATUS_ACCESS_DENIED);
                }
                g.reference(e.object);
                crate::wait::set_signal_state(e.object, 0);
                e.object
            }
        };
        // The IRP's reference to the file object, dropped at completion.
        g.reference(entry.object);
        let info = &g.iomgr.files[&entry.object];
        (entry.object, info.device, info.sync, mode, user_event)
    };
    if sync && acquire_file_lock(&cx, file, true).is_err() {
        let mut g = cx.lock();
        let who = g.who(cx.me);
        if user_event != 0 {
            g.dereference(user_event, who.clone());
        }
        if g.dereference(file, who) == Some(ObjectKind::File) {
            super::worker::queue_close(&mut g, file);
        }
        drop(g);
        super::process::terminate_current(&cx);
    }
    let buffered = method == METHOD_BUFFERED;
    let mut flags = if sync { IRP_SYNCHRONOUS_API } else { 0 };
    if buffered {
        flags |= IRP_BUFFERED_IO | IRP_DEALLOCATE_BUFFER;
        if output_len > 0 {
            flags |= IRP_INPUT_OPERATION;
        }
    }
    let spec = IrpSpec {
        major: IRP_MJ_DEVICE_CONTROL,
        dev: dev as PDEVICE_OBJECT,
        file,
        flags,
        params: IO_STACK_LOCATION_PARAMETERS {
            DeviceIoControl: IO_STACK_LOCATION_DEVICE_IO_CONTROL::new(
                output_len as u32,
                input.len() as u32,
                code,
                std::ptr::null_mut(),
            ),
        },
        mode,
        holds_file_ref: true,
        user_event,
        code,
        buffered,
        neither: !buffered,
        input: input.to_vec(),
        output_len,
    };
    let (id, status) = call_driver(&cx, spec);
    let request = Request { id };
    if status == STATUS_PENDING && !sync {
        cx.lock()
            .iomgr
            .requests
            .by_id
            .get_mut(&id)
            .expect("a request")
            .returned = Some(STATUS_PENDING);
        return Ok(request);
    }
    if status == STATUS_PENDING {
        // IopSynchronousServiceTail: wait for the completion (a user-mode wait).
        let done = cx.lock().iomgr.requests.by_id[&id].done.addr();
        if user_wait(&cx, vec![done], None).is_err() {
            // The exit path cancels the request and releases the file lock.
            super::process::terminate_current(&cx);
        }
    }
    let mut g = cx.lock();
    let r = g.iomgr.requests.by_id.get_mut(&id).expect("a request");
    // A synchronous error is what the dispatch routine returned; otherwise the IOSB's status.
    r.returned = Some(if status == STATUS_PENDING {
        r.status.unwrap_or(status)
    } else {
        status
    });
    if sync {
        release_file_lock(&mut g, file);
    }
    Ok(request)
}
