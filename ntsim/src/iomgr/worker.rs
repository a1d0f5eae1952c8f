//! The I/O manager's worker: a system thread that sends IRP_MJ_CLOSE for file objects whose
//! last reference went at completion time (in a DPC, say), where no driver may be called at
//! PASSIVE_LEVEL. Windows defers such object deletions to a system worker thread too.

use std::collections::VecDeque;

use crate::machine::{Cx, World};
use crate::ntdef::{KEVENT, SynchronizationEvent};
use crate::object::SYSTEM_PROCESS;
use crate::sched::ActorId;

use super::raw::{Raw, new_event};

#[derive(Debug, Default)]
pub(crate) struct Worker {
    actor: Option<ActorId>,
    wake: Option<Raw<KEVENT>>,
    queue: VecDeque<usize>,
}

/// Starts the worker on first use (from a process's creation or an open).
pub(crate) fn ensure_started(cx: &Cx, g: &mut World) {
    if g.iomgr.worker.actor.is_some() {
        return;
    }
    let wake = new_event(SynchronizationEvent, false);
    let wake_addr = wake.addr();
    g.iomgr.worker.wake = Some(wake);
    let (actor, _object) = crate::thread::spawn_thread(
        g,
        &cx.m,
        "io-worker".to_string(),
        SYSTEM_PROCESS,
        Box::new(move || worker_loop(wake_addr)),
    );
    // The I/O manager's own thread belongs to no driver.
    g.iomgr.owner.thread_driver.remove(&actor);
    g.iomgr.worker.actor = Some(actor);
}

fn worker_loop(wake: usize) {
    let cx = Cx::get();
    loop {
        let next = cx.lock().iomgr.worker.queue.pop_front();
        match next {
            Some(file) => super::close::close_file(&cx, file),
            None => {
                crate::wait::wait_objects("io-worker", vec![wake], false, None);
            }
        }
    }
}

/// Queues IRP_MJ_CLOSE for `file` (its last reference went) to the worker.
pub(crate) fn queue_close(g: &mut World, file: usize) {
    if let Some(f) = g.iomgr.files.get_mut(&file) {
        f.closing = true;
    }
    g.iomgr.worker.queue.push_back(file);
    if let Some(w) = &g.iomgr.worker.wake {
        let e = w.addr();
        crate::wait::set_signal_state(e, 1);
        g.signal_object(e);
    }
}

/// File objects whose last reference a driver dropped (ObDereferenceObject) get their
/// IRP_MJ_CLOSE too.
pub(crate) fn reap_orphans(g: &mut World) {
    let orphans: Vec<usize> = g
        .iomgr
        .files
        .iter()
        .filter(|(k, f)| !f.closing && f.handles == 0 && !g.objects.objects.contains_key(k))
        .map(|(&k, _)| k)
        .collect();
    for f in orphans {
        queue_close(g, f);
    }
}
