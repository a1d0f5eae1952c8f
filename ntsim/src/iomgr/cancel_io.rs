//! CancelIo / CancelIoEx, and IoCancelThreadIo at thread exit (spec A.4 precondition, A.8,
//! rule C15).
//!
//! IoCancelIrp's caller must keep the IRP from being freed during the call; the I/O manager
//! does so with the thread IRP list. Here a canceller pins the request, and the IRP is freed
//! only once every pin is gone.

use crate::machine::Cx;
use crate::ntdef::{
    APC_LEVEL, NTSTATUS, PASSIVE_LEVEL, PIRP, STATUS_INVALID_HANDLE, STATUS_SUCCESS,
};
use crate::object::ObjectKind;
use crate::verifier::Rule;

use super::Handle;
use super::request::Request;

/// `STATUS_NOT_FOUND`: no request matched (Win32 ERROR_NOT_FOUND).
pub const STATUS_NOT_FOUND: NTSTATUS = 0xC000_0225_u32 as NTSTATUS;

/// Calls IoCancelIrp on each request still pending, pinning it across the call.
fn cancel_requests(cx: &Cx, ids: &[u64]) {
    for &id in ids {
        let irp = {
            let mut g = cx.lock();
            let now = g.clock.now();
            let r = g.iomgr.requests.by_id.get_mut(&id).expect("a request");
            if r.completed {
                continue;
            }
            r.pins += 1;
            r.cancelled_at.get_or_insert(now);
            r.irp
        };
        // SAFETY: the pin keeps the IRP allocated during the call (spec A.4 precondition).
        unsafe { crate::cancel::IoCancelIrp(irp as PIRP) };
        let mut g = cx.lock();
        g.iomgr.requests.by_id.get_mut(&id).expect("a request").pins -= 1;
        g.maybe_free_request_irp(id);
    }
}

/// The pending requests on `h`'s file object issued by threads of the caller's process (all
/// threads, or only the caller), optionally only `which`.
fn matching(h: Handle, which: Option<Request>, only_mine: bool) -> Result<Vec<u64>, NTSTATUS> {
    let cx = Cx::get();
    let g = cx.lock();
    let pid = g.threads.process_of(cx.me);
    let mode = g.requestor_mode(cx.me);
    let entry = g
        .lookup_handle(pid, h.raw(), mode)
        .ok_or(STATUS_INVALID_HANDLE)?;
    if g.object_kind(entry.object) != Some(ObjectKind::File) {
        return Err(STATUS_INVALID_HANDLE);
    }
    Ok(g.iomgr
        .requests
        .by_id
        .iter()
        .filter(|(id, r)| {
            !r.completed
                && r.file == entry.object
                && which.is_none_or(|w| w.id == **id)
                && if only_mine {
                    r.thread == cx.me
                } else {
                    g.iomgr
                        .threads
                        .get(&r.thread)
                        .is_some_and(|t| t.process == pid)
                }
        })
        .map(|(&id, _)| id)
        .collect())
}

/// CancelIoEx: cancels (IoCancelIrp) the pending requests on `h` issued by any thread of the
/// calling process — all of them, or only `which`. Cancellation is a request: the driver
/// completes the IRP (normally with STATUS_CANCELLED); read the outcome from the [`Request`].
///
/// Returns STATUS_SUCCESS, STATUS_NOT_FOUND (nothing pending matched) or STATUS_INVALID_HANDLE.
pub fn cancel_io_ex(h: Handle, which: Option<Request>) -> NTSTATUS {
    let ids = match matching(h, which, false) {
        Ok(ids) => ids,
        Err(s) => return s,
    };
    if ids.is_empty() {
        return STATUS_NOT_FOUND;
    }
    cancel_requests(&Cx::get(), &ids);
    STATUS_SUCCESS
}

/// CancelIo: cancels the calling thread's pending requests on `h`.
///
/// Returns STATUS_SUCCESS (also when nothing was pending) or STATUS_INVALID_HANDLE.
pub fn cancel_io(h: Handle) -> NTSTATUS {
    match matching(h, None, true) {
        Ok(ids) => {
            cancel_requests(&Cx::get(), &ids);
            STATUS_SUCCESS
        }
        Err(s) => s,
    }
}

/// 100 ms, the poll interval of IoCancelThreadIo.
const POLL: i64 = -1_000_000;

/// IoCancelThreadIo for the running thread (spec A.8): at APC_LEVEL, IoCancelIrp on every IRP
/// of the thread's list, then poll every 100 ms until the list is empty. An IRP still there
/// `Config::cancel_timeout` after its cancel is reported (rule C15) and disassociated from the
/// thread, which then exits.
pub(crate) fn io_cancel_thread_io(cx: &Cx) {
    let ids: Vec<u64> = {
        let g = cx.lock();
        let Some(t) = g.iomgr.threads.get(&cx.me) else {
            return;
        };
        t.irps
            .iter()
            .filter_map(|&irp| g.request_of_irp(irp))
            .collect()
    };
    if ids.is_empty() {
        return;
    }
    cx.set_irql(APC_LEVEL);
    cancel_requests(cx, &ids);
    let start = cx.lock().clock.now();
    let timeout = cx.m.config.cancel_timeout;
    loop {
        {
            let mut g = cx.lock();
            let remaining = g.iomgr.threads[&cx.me].irps.clone();
            if remaining.is_empty() {
                break;
            }
            if g.clock.now() - start >= timeout {
                for irp in remaining {
                    let mut parties = vec![g.who(cx.me)];
                    parties.extend(g.irp_history(irp));
                    g.report(
                        Rule::CancelNotHonoured,
                        format!(
                            "IRP {irp:#x} not completed {} ms after IoCancelIrp at thread exit (IO_DRIVER_CANCEL_TIMEOUT); disassociated from the thread",
                            timeout / crate::clock::TICKS_PER_MS
                        ),
                        parties,
                    );
                    g.dequeue_thread_irp(cx.me, irp);
                    if let Some(id) = g.request_of_irp(irp) {
                        g.iomgr
                            .requests
                            .by_id
                            .get_mut(&id)
                            .expect("a request")
                            .disassociated = true;
                    }
                    // SAFETY: the IRP is live (not completed).
                    let r = unsafe { &mut *(irp as PIRP) };
                    // It no longer has a thread.
                    r.Tail.Overlay.Thread = std::ptr::null_mut();
                }
                break;
            }
        }
        crate::wait::wait_objects("IoCancelThreadIo", Vec::new(), false, Some(POLL));
    }
    cx.set_irql(PASSIVE_LEVEL);
}
