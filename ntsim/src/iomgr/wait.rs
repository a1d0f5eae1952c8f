//! User-mode waits: WaitForSingleObject and the waits inside system calls that a thread's
//! termination interrupts (a user-mode wait in Windows is left when the thread is terminated).

use crate::machine::Cx;
use crate::ntdef::{
    NTSTATUS, STATUS_ACCESS_DENIED, STATUS_INVALID_HANDLE, STATUS_OBJECT_TYPE_MISMATCH,
    STATUS_SUCCESS, STATUS_TIMEOUT, STATUS_WAIT_0, SYNCHRONIZE, UserMode,
};
use crate::object::ObjectKind;

use super::Handle;

/// The thread was asked to terminate while it waited.
#[derive(Debug)]
pub(crate) struct Terminated;

/// Waits for any of `objects` (or only the timeout when empty) as a user-mode wait: a user
/// thread's termination request ends it with `Err(Terminated)`. System threads wait plainly.
/// Returns STATUS_WAIT_0 + index, STATUS_TIMEOUT, or STATUS_SUCCESS after a pure delay.
pub(crate) fn user_wait(
    cx: &Cx,
    objects: Vec<usize>,
    timeout: Option<i64>,
) -> Result<NTSTATUS, Terminated> {
    user_wait_ex(cx, objects, timeout, false)
}

/// [`user_wait`]; with `settled`, the timeout fires only once the machine has settled at its
/// time.
pub(crate) fn user_wait_ex(
    cx: &Cx,
    objects: Vec<usize>,
    timeout: Option<i64>,
    settled: bool,
) -> Result<NTSTATUS, Terminated> {
    let term = {
        let g = cx.lock();
        match g.iomgr.threads.get(&cx.me) {
            Some(t) if t.user => {
                if t.terminating {
                    return Err(Terminated);
                }
                Some(t.terminate.addr())
            }
            _ => None,
        }
    };
    let delay = objects.is_empty();
    let Some(term) = term else {
        return Ok(crate::wait::wait_objects_ex(
            "user-mode wait",
            objects,
            false,
            timeout,
            settled,
        ));
    };
    let n = objects.len();
    let mut all = objects;
    all.push(term);
    let status = crate::wait::wait_objects_ex("user-mode wait", all, false, timeout, settled);
    if status == STATUS_WAIT_0 + n as NTSTATUS {
        return Err(Terminated);
    }
    if delay && status == STATUS_TIMEOUT {
        return Ok(STATUS_SUCCESS);
    }
    Ok(status)
}

/// WaitForSingleObject on a handle of the calling thread's process (an event, semaphore,
/// thread or process), with an optional timeout in milliseconds (`Some(0)` polls).
///
/// Returns `Ok(STATUS_SUCCESS)` (signalled; a synchronization object is consumed) or
/// `Ok(STATUS_TIMEOUT)`; `Err(STATUS_INVALID_HANDLE)`, `Err(STATUS_OBJECT_TYPE_MISMATCH)` (not a
/// waitable object) or `Err(STATUS_ACCESS_DENIED)` (no SYNCHRONIZE access). A user thread that
/// is terminated while it waits does not return.
pub fn wait_for_single_object(h: Handle, timeout_ms: Option<u64>) -> Result<NTSTATUS, NTSTATUS> {
    let cx = Cx::get();
    if super::process::termination_requested(&cx) {
        super::process::terminate_current(&cx);
    }
    let obj = {
        let mut g = cx.lock();
        let pid = g.threads.process_of(cx.me);
        let mode = g.requestor_mode(cx.me);
        let Some(entry) = g.lookup_handle(pid, h.raw(), mode) else {
            return Err(STATUS_INVALID_HANDLE);
        };
        match g.object_kind(entry.object) {
            Some(
                ObjectKind::Event
                | ObjectKind::Semaphore
                | ObjectKind::Thread
                | ObjectKind::Process
                | ObjectKind::Timer,
            ) => {}
            _ => return Err(STATUS_OBJECT_TYPE_MISMATCH),
        }
        if mode == UserMode && entry.access & SYNCHRONIZE == 0 {
            return Err(STATUS_ACCESS_DENIED);
        }
        g.reference(entry.object);
        entry.object
    };
    let timeout = timeout_ms.map(|ms| -((ms * crate::clock::TICKS_PER_MS) as i64));
    let r = user_wait(&cx, vec![obj], timeout);
    {
        let mut g = cx.lock();
        let who = g.who(cx.me);
        g.dereference(obj, who);
    }
    match r {
        Ok(s) => Ok(if s == STATUS_WAIT_0 {
            STATUS_SUCCESS
        } else {
            s
        }),
        Err(Terminated) => super::process::terminate_current(&cx),
    }
}
