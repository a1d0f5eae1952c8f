//! CloseHandle (spec A.8): IRP_MJ_CLEANUP when the last handle to a file object is closed,
//! IRP_MJ_CLOSE when the last reference goes (after every IRP on the file object completed),
//! then the device reference of the file object goes — which may run a deferred unload.

use crate::machine::{Cx, World};
use crate::ntdef::{
    FO_CLEANUP_COMPLETE, IO_STACK_LOCATION_PARAMETERS, IRP_CLOSE_OPERATION, IRP_MJ_CLEANUP,
    IRP_MJ_CLOSE, IRP_SYNCHRONOUS_API, KernelMode, NTSTATUS, PDEVICE_OBJECT, STATUS_INVALID_HANDLE,
    STATUS_SUCCESS,
};
use crate::object::ObjectKind;
use crate::sched::ActorId;
use crate::verifier::Rule;

use super::Handle;
use super::request::{IrpSpec, call_driver_and_wait};

/// CloseHandle on a handle of the calling thread's process. For the last handle to a file
/// object, IRP_MJ_CLEANUP is sent at once on the calling thread (which waits for it); the
/// IRP_MJ_CLOSE follows when the last reference to the file object goes: here if no request
/// is pending on it, otherwise when the last one completes (on the I/O manager's worker).
///
/// Returns STATUS_SUCCESS or STATUS_INVALID_HANDLE.
pub fn close_handle(h: Handle) -> NTSTATUS {
    let cx = Cx::get();
    if super::process::termination_requested(&cx) {
        super::process::terminate_current(&cx);
    }
    let pid = cx.lock().threads.process_of(cx.me);
    close_in(&cx, pid, h.raw())
}

/// Closes handle `h` of process `pid` on the calling thread.
pub(crate) fn close_in(cx: &Cx, pid: u32, h: crate::ntdef::HANDLE) -> NTSTATUS {
    let (object, kind) = {
        let mut g = cx.lock();
        let Some(entry) = g.remove_handle(pid, h) else {
            return STATUS_INVALID_HANDLE;
        };
        (entry.object, g.object_kind(entry.object))
    };
    if kind == Some(ObjectKind::File) {
        let last_handle = {
            let mut g = cx.lock();
            let info = g.iomgr.files.get_mut(&object).expect("an open file");
            info.handles -= 1;
            info.handles == 0
        };
        if last_handle {
            cleanup(cx, object);
        }
    }
    let mut g = cx.lock();
    let who = g.who(cx.me);
    if g.dereference(object, who) == Some(ObjectKind::File) {
        g.iomgr
            .files
            .get_mut(&object)
            .expect("an open file")
            .closing = true;
        drop(g);
        close_file(cx, object);
    }
    STATUS_SUCCESS
}

fn simple_spec(g: &World, me: ActorId, major: u8, file: usize, flags: u32) -> IrpSpec {
    IrpSpec {
        major,
        dev: g.iomgr.files[&file].device as PDEVICE_OBJECT,
        file,
        flags,
        params: IO_STACK_LOCATION_PARAMETERS::zeroed(),
        mode: if major == IRP_MJ_CLOSE {
            KernelMode
        } else {
            g.requestor_mode(me)
        },
        holds_file_ref: false,
        user_event: 0,
        code: 0,
        buffered: false,
        neither: false,
        input: Vec::new(),
        output_len: 0,
    }
}

/// IRP_MJ_CLEANUP for the last handle of `file`, on the calling thread. A synchronous file
/// object's lock is taken first, as IopCloseFile does.
fn cleanup(cx: &Cx, file: usize) {
    let sync = cx.lock().iomgr.files[&file].sync;
    if sync {
        let _ = super::file::acquire_file_lock(cx, file, false);
    }
    let spec = {
        let g = cx.lock();
        simple_spec(&g, cx.me, IRP_MJ_CLEANUP, file, IRP_SYNCHRONOUS_API)
    };
    call_driver_and_wait(cx, spec);
    let mut g = cx.lock();
    // SAFETY: the file object is live (the handle's reference is still held).
    unsafe { (*g.file_object(file)).Flags |= FO_CLEANUP_COMPLETE };
    if sync {
        super::file::release_file_lock(&mut g, file);
    }
}

/// IRP_MJ_CLOSE for a file object whose last reference went, on the calling thread (at
/// PASSIVE_LEVEL), then the file object's memory and its device reference go.
pub(crate) fn close_file(cx: &Cx, file: usize) {
    let spec = {
        let mut g = cx.lock();
        check_file_irps(&mut g, cx.me, file);
        simple_spec(
            &g,
            cx.me,
            IRP_MJ_CLOSE,
            file,
            IRP_CLOSE_OPERATION | IRP_SYNCHRONOUS_API,
        )
    };
    let dev = spec.dev as usize;
    call_driver_and_wait(cx, spec);
    let info = cx.lock().iomgr.files.remove(&file);
    drop(info);
    drop_device_reference(cx, dev);
}

/// Rule C14: an IRP of `file` still pending when IRP_MJ_CLOSE is due.
fn check_file_irps(g: &mut World, me: ActorId, file: usize) {
    let pending: Vec<usize> = g
        .iomgr
        .requests
        .by_id
        .values()
        .filter(|r| r.file == file && !r.completed && r.major != IRP_MJ_CLOSE)
        .map(|r| r.irp)
        .collect();
    for irp in pending {
        let mut parties = vec![g.who(me)];
        parties.extend(g.irp_history(irp));
        g.report(
            Rule::IrpLeak,
            format!("IRP {irp:#x} of file object {file:#x} still pending at IRP_MJ_CLOSE"),
            parties,
        );
    }
}

/// Rule C14 at process exit: requests of the process's file objects that are still pending
/// after its handles were closed (disassociated after the cancel timeout).
pub(crate) fn check_process_irps(g: &mut World, me: ActorId, pid: u32) {
    let pending: Vec<usize> = g
        .iomgr
        .requests
        .by_id
        .values()
        .filter(|r| !r.completed && g.iomgr.files.get(&r.file).is_some_and(|f| f.process == pid))
        .map(|r| r.irp)
        .collect();
    for irp in pending {
        let mut parties = vec![g.who(me)];
        parties.extend(g.irp_history(irp));
        g.report(
            Rule::IrpLeak,
            format!("IRP {irp:#x} still pending after its process exited"),
            parties,
        );
    }
}

/// Drops a file object's reference to its device: a deleted device may go, and a driver whose
/// unload was deferred (spec D-29) unloads now, on this thread.
pub(crate) fn drop_device_reference(cx: &Cx, dev: usize) {
    let driver = {
        let mut g = cx.lock();
        // SAFETY: the device object lives while it is referenced.
        unsafe { (*(dev as PDEVICE_OBJECT)).ReferenceCount -= 1 };
        let driver = g.driver_of(dev);
        g.reap_device(dev);
        driver
    };
    if let Some(d) = driver {
        super::unload::run_deferred_unload(cx, d);
    }
}
