//! `CancelSafeQueue` on ntsim: every row of spec A.9.7 (who completes a CSQ IRP), the insert of
//! an already-cancelled IRP, remove-by-ticket racing cancellation (spec A.9.5 case 3), cleanup
//! flush by file object, and the FIFO, keyed and refusing policies.

mod support;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use csq::pinned_init::InPlaceInit;
use csq::{
    Bounded, CancelSafeQueue, Fifo, FileObject, Filter, Irp, IrpView, Keyed, NtError, NtStatus,
    Position, QueuePolicy,
};
use ntsim::breakpoint::{Breakpoint, Filter as BpFilter, Point};
use ntsim::ntdef::{IRP_MJ_READ, IRP_MJ_WRITE, STATUS_CANCELLED, STATUS_SUCCESS};
use ntsim::thread::SystemThread;
use support::{RawIrp, machine};

const FILE_A: usize = 0xF11E_A000;
const FILE_B: usize = 0xF11E_B000;

fn fifo() -> Pin<Box<CancelSafeQueue<Fifo>>> {
    Box::pin_init(CancelSafeQueue::new(Fifo)).expect("host memory")
}

/// A policy that counts what its hooks saw.
#[derive(Default)]
struct Counting {
    cancelled: AtomicUsize,
}

impl QueuePolicy for Counting {
    type Arg = ();

    fn admit(&self, _irp: &IrpView, _arg: &(), _queued: usize) -> Result<Position, NtError> {
        Ok(Position::Back)
    }

    fn cancelled(&self, irp: Irp) {
        self.cancelled.fetch_add(1, Ordering::SeqCst);
        irp.complete(NtStatus::CANCELLED, 0);
    }
}

// ---- A.9.7 row 1: insert, then a removal wins the exchange: the remover completes ------------

#[test]
fn remover_owns_and_completes_with_its_own_status() {
    let out = machine().run(|| {
        let q = fifo();
        let raw = RawIrp::new(IRP_MJ_READ, FILE_A);
        let pending = q.insert(raw.take(), ()).expect("FIFO accepts");
        let status = csq::DispatchStatus::from(pending).status();
        assert_eq!(status, NtStatus::PENDING);
        assert!(raw.has_cancel_routine(), "queued IRPs are cancelable");
        assert_eq!(q.len(), 1);

        let irp = q.remove_next().expect("queued");
        assert_eq!(irp.addr(), raw.0);
        assert!(!raw.has_cancel_routine(), "removal took the cancel routine");
        assert!(q.remove_next().is_none());
        let done = irp.complete(NtStatus::SUCCESS, 7);
        // It was marked pending under the queue lock, so a dispatch routine returns PENDING.
        assert_eq!(done.status(), NtStatus::PENDING);
        assert!(raw.completed());
        assert_eq!(raw.status(), STATUS_SUCCESS);
        assert_eq!(raw.information(), 7);
        assert!(raw.pending_returned());
        raw.free();
    });
    out.expect_clean();
}

// ---- A.9.7 row 2: insert, then IoCancelIrp wins: CsqCompleteCanceledIrp completes -------------

#[test]
fn cancelling_a_queued_irp_completes_it_cancelled_through_the_policy_hook() {
    let out = machine().run(|| {
        let q = Box::pin_init(CancelSafeQueue::<Counting>::new(Counting::default())).unwrap();
        let raw = RawIrp::new(IRP_MJ_READ, FILE_A);
        let _pending = q.insert(raw.take(), ()).expect("accepted");
        assert!(raw.cancel(), "the CSQ cancel routine ran");
        assert_eq!(q.policy().cancelled.load(Ordering::SeqCst), 1);
        assert!(raw.completed());
        assert_eq!(raw.status(), STATUS_CANCELLED);
        assert_eq!(raw.information(), 0);
        assert!(q.is_empty());
        assert!(q.remove_next().is_none());
        raw.free();
    });
    out.expect_clean();
}

// ---- A.9.7 row 3: Irp->Cancel already set at insert -------------------------------------------

#[test]
fn inserting_an_already_cancelled_irp_completes_it_inside_insert_and_still_pends() {
    let out = machine().run(|| {
        let q = Box::pin_init(CancelSafeQueue::<Counting>::new(Counting::default())).unwrap();
        let raw = RawIrp::new(IRP_MJ_READ, FILE_A);
        // Cancelled while not cancelable: IoCancelIrp only sets Irp->Cancel.
        assert!(!raw.cancel());
        let pending = q.insert(raw.take(), ()).expect("accepted, then cancelled");
        // Spec A.9.3 step 7: completed after the lock, but the dispatch routine returns PENDING.
        assert_eq!(
            csq::DispatchStatus::from(pending).status(),
            NtStatus::PENDING
        );
        assert_eq!(q.policy().cancelled.load(Ordering::SeqCst), 1);
        assert!(raw.completed());
        assert_eq!(raw.status(), STATUS_CANCELLED);
        assert!(
            raw.pending_returned(),
            "marked pending under the lock before completion"
        );
        assert!(q.is_empty());
        raw.free();
    });
    out.expect_clean();
}

// ---- A.9.7 row 4: Ex insert refused: the caller keeps the IRP ---------------------------------

#[test]
fn a_refused_insert_gives_the_irp_back_unmarked_with_the_policy_error() {
    let out = machine().run(|| {
        let q = Box::pin_init(CancelSafeQueue::<Bounded>::new(Bounded { limit: 1 })).unwrap();
        let first = RawIrp::new(IRP_MJ_READ, FILE_A);
        let second = RawIrp::new(IRP_MJ_READ, FILE_A);
        let _p = q.insert(first.take(), ()).expect("room for one");
        let refused = q.insert(second.take(), ()).expect_err("full");
        assert_eq!(refused.status, NtError::INSUFFICIENT_RESOURCES);
        assert_eq!(refused.irp.addr(), second.0);
        assert!(
            !second.has_cancel_routine(),
            "a refused IRP is not cancelable"
        );
        let done = refused.complete();
        // Not marked pending: the dispatch routine returns the error itself (spec A.9.3).
        assert_eq!(done.status(), NtStatus::INSUFFICIENT_RESOURCES);
        assert!(!second.pending_returned());
        assert_eq!(second.status(), NtStatus::INSUFFICIENT_RESOURCES.0);

        q.remove_next()
            .expect("first")
            .complete(NtStatus::SUCCESS, 0);
        first.free();
        second.free();
    });
    out.expect_clean();
}

/// A user policy that refuses writes with an NT error of its choice.
struct ReadsOnly;

impl QueuePolicy for ReadsOnly {
    type Arg = ();

    fn admit(&self, irp: &IrpView, _arg: &(), _queued: usize) -> Result<Position, NtError> {
        if irp.major_function() == csq::MajorFunction::READ {
            Ok(Position::Back)
        } else {
            Err(NtError::new(NtStatus::INVALID_DEVICE_REQUEST))
        }
    }
}

#[test]
fn a_user_policy_refuses_by_looking_at_the_irp() {
    let out = machine().run(|| {
        let q = Box::pin_init(CancelSafeQueue::<ReadsOnly>::new(ReadsOnly)).unwrap();
        let w = RawIrp::new(IRP_MJ_WRITE, FILE_A);
        let r = RawIrp::new(IRP_MJ_READ, FILE_A);
        let refused = q.insert(w.take(), ()).expect_err("writes refused");
        assert_eq!(refused.status.status(), NtStatus::INVALID_DEVICE_REQUEST);
        refused.complete();
        let _p = q.insert(r.take(), ()).expect("reads accepted");
        assert_eq!(q.len(), 1);
        assert_eq!(q.cancel_all(), 1);
        assert_eq!(r.status(), STATUS_CANCELLED);
        w.free();
        r.free();
    });
    out.expect_clean();
}

// ---- Policies: FIFO and keyed order -----------------------------------------------------------

#[test]
fn fifo_hands_irps_out_in_arrival_order() {
    let out = machine().run(|| {
        let q = fifo();
        let raws: Vec<RawIrp> = (0..4).map(|_| RawIrp::new(IRP_MJ_READ, FILE_A)).collect();
        for r in &raws {
            let _p = q.insert(r.take(), ()).unwrap();
        }
        for r in &raws {
            let irp = q.remove_next().unwrap();
            assert_eq!(irp.addr(), r.0);
            irp.complete(NtStatus::SUCCESS, 0);
        }
        raws.iter().for_each(|r| r.free());
    });
    out.expect_clean();
}

#[test]
fn keyed_orders_by_ascending_key_and_fifo_among_equal_keys() {
    let out = machine().run(|| {
        let q = Box::pin_init(CancelSafeQueue::<Keyed>::new(Keyed)).unwrap();
        let keys = [5u64, 1, 5, 3, 1, 9];
        let raws: Vec<(u64, RawIrp)> = keys
            .iter()
            .map(|&k| (k, RawIrp::new(IRP_MJ_READ, FILE_A)))
            .collect();
        for (k, r) in &raws {
            let _p = q.insert(r.take(), *k).unwrap();
        }
        let mut expected = raws.clone();
        expected.sort_by_key(|(k, _)| *k); // stable: FIFO among equals
        for (_, r) in &expected {
            let irp = q.remove_next().unwrap();
            assert_eq!(irp.addr(), r.0);
            irp.complete(NtStatus::SUCCESS, 0);
        }
        raws.iter().for_each(|(_, r)| r.free());
    });
    out.expect_clean();
}

// ---- Filters and the cleanup flush ------------------------------------------------------------

#[test]
fn flush_file_completes_only_that_file_objects_irps_cancelled() {
    let out = machine().run(|| {
        let q = fifo();
        let a1 = RawIrp::new(IRP_MJ_READ, FILE_A);
        let b1 = RawIrp::new(IRP_MJ_READ, FILE_B);
        let a2 = RawIrp::new(IRP_MJ_WRITE, FILE_A);
        for r in [a1, b1, a2] {
            let _p = q.insert(r.take(), ()).unwrap();
        }
        assert_eq!(q.flush_file(FileObject::from_addr(FILE_A)), 2);
        for r in [a1, a2] {
            assert!(r.completed());
            assert_eq!(r.status(), STATUS_CANCELLED);
        }
        assert!(!b1.completed());
        assert_eq!(q.len(), 1);
        let b = q
            .remove_next_for_file(FileObject::from_addr(FILE_B))
            .unwrap();
        assert_eq!(b.file_object(), Some(FileObject::from_addr(FILE_B)));
        b.complete(NtStatus::SUCCESS, 0);
        [a1, b1, a2].iter().for_each(|r| r.free());
    });
    out.expect_clean();
}

#[test]
fn remove_next_where_takes_the_first_match_of_a_predicate() {
    let out = machine().run(|| {
        let q = fifo();
        let r = RawIrp::new(IRP_MJ_READ, FILE_A);
        let w = RawIrp::new(IRP_MJ_WRITE, FILE_A);
        for x in [r, w] {
            let _p = q.insert(x.take(), ()).unwrap();
        }
        let is_write = |irp: &IrpView| irp.major_function() == csq::MajorFunction::WRITE;
        let got = q.remove_next_where(Filter::Matching(&is_write)).unwrap();
        assert_eq!(got.addr(), w.0);
        got.complete(NtStatus::SUCCESS, 0);
        assert!(q.remove_next_where(Filter::Matching(&is_write)).is_none());
        q.remove_next().unwrap().complete(NtStatus::SUCCESS, 0);
        [r, w].iter().for_each(|x| x.free());
    });
    out.expect_clean();
}

#[test]
fn a_cancelled_irp_never_comes_out_of_remove_next() {
    let out = machine().run(|| {
        let q = fifo();
        let a = RawIrp::new(IRP_MJ_READ, FILE_A);
        let b = RawIrp::new(IRP_MJ_READ, FILE_A);
        for x in [a, b] {
            let _p = q.insert(x.take(), ()).unwrap();
        }
        assert!(a.cancel());
        let got = q.remove_next().unwrap();
        assert_eq!(got.addr(), b.0);
        got.complete(NtStatus::SUCCESS, 0);
        assert_eq!(a.status(), STATUS_CANCELLED);
        [a, b].iter().for_each(|x| x.free());
    });
    out.expect_clean();
}

// ---- Remove by tracked context (IoCsqRemoveIrp), spec A.9.5 ------------------------------------

#[test]
fn remove_tracked_hands_back_the_tracked_irp_once() {
    let out = machine().run(|| {
        let q = Box::pin_init(CancelSafeQueue::<Fifo, 2>::new(Fifo)).unwrap();
        let a = RawIrp::new(IRP_MJ_READ, FILE_A);
        let b = RawIrp::new(IRP_MJ_READ, FILE_A);
        let (_pa, _ta) = {
            let (p, t) = q.insert_tracked(a.take(), ()).unwrap();
            (p, t)
        };
        let (_pb, tb) = q.insert_tracked(b.take(), ()).unwrap();
        // Remove b by identity although a is ahead of it.
        let got = q.remove_tracked(tb).unwrap();
        assert_eq!(got.addr(), b.0);
        got.complete(NtStatus::SUCCESS, 0);
        // a left through remove_next: its ticket then finds nothing.
        let got = q.remove_next().unwrap();
        assert_eq!(got.addr(), a.0);
        got.complete(NtStatus::SUCCESS, 0);
        assert!(q.remove_tracked(_ta).is_none());
        [a, b].iter().for_each(|x| x.free());
    });
    out.expect_clean();
}

#[test]
fn a_tracked_irp_cancelled_before_removal_is_not_returned() {
    let out = machine().run(|| {
        let q = Box::pin_init(CancelSafeQueue::<Fifo, 1>::new(Fifo)).unwrap();
        let a = RawIrp::new(IRP_MJ_READ, FILE_A);
        let (_p, t) = q.insert_tracked(a.take(), ()).unwrap();
        assert!(a.cancel());
        assert_eq!(a.status(), STATUS_CANCELLED);
        assert!(q.remove_tracked(t).is_none());
        // The slot is free again: the kernel is done with it and the ticket is back.
        let b = RawIrp::new(IRP_MJ_READ, FILE_A);
        let (_p, t) = q.insert_tracked(b.take(), ()).expect("slot reusable");
        q.remove_tracked(t).unwrap().complete(NtStatus::SUCCESS, 0);
        [a, b].iter().for_each(|x| x.free());
    });
    out.expect_clean();
}

#[test]
fn remove_tracked_racing_cancellation_keeps_the_context_until_complete_canceled() {
    let out = machine().run(|| {
        let q: Pin<Arc<CancelSafeQueue<Counting, 1>>> =
            Arc::pin_init(CancelSafeQueue::new(Counting::default())).unwrap();
        let a = RawIrp::new(IRP_MJ_READ, FILE_A);
        let (_p, ticket) = q.insert_tracked(a.take(), ()).unwrap();

        // The canceller (on CPU 1) takes the cancel routine by exchange and parks before the
        // CSQ cancel routine runs, i.e. before it takes the queue lock (spec A.9.5 case 3).
        let bp = Breakpoint::set(Point::CancelRoutineEntry, BpFilter::Object(a.0));
        let canceller = SystemThread::spawn_on(1, "canceller", move || {
            a.cancel();
        });
        ntsim::irp::designate_canceller(a.ptr(), canceller.actor());
        bp.wait_hit();

        // The remover loses: IoCsqRemoveIrp finds no cancel routine and returns NULL.
        assert!(q.remove_tracked(ticket).is_none());
        assert!(!a.completed(), "the cancel routine has not run yet");
        // The context is still the kernel's: the only slot cannot be reused yet.
        let b = RawIrp::new(IRP_MJ_READ, FILE_B);
        let refused = q
            .insert_tracked(b.take(), ())
            .expect_err("slot still in use");
        assert_eq!(refused.status, NtError::INSUFFICIENT_RESOURCES);
        let b_irp = refused.irp;

        bp.clear();
        canceller.join();
        assert!(a.completed());
        assert_eq!(a.status(), STATUS_CANCELLED);
        assert_eq!(q.policy().cancelled.load(Ordering::SeqCst), 1);

        // CsqCompleteCanceledIrp released the context: the slot is free now.
        let (_p, t) = q
            .insert_tracked(b_irp, ())
            .expect("slot free after CompleteCanceled");
        q.remove_tracked(t).unwrap().complete(NtStatus::SUCCESS, 0);
        [a, b].iter().for_each(|x| x.free());
    });
    out.expect_clean();
}

#[test]
fn tickets_are_limited_to_the_tracked_slots() {
    let out = machine().run(|| {
        let q = Box::pin_init(CancelSafeQueue::<Fifo, 1>::new(Fifo)).unwrap();
        let a = RawIrp::new(IRP_MJ_READ, FILE_A);
        let b = RawIrp::new(IRP_MJ_READ, FILE_A);
        let (_p, t) = q.insert_tracked(a.take(), ()).unwrap();
        let refused = q.insert_tracked(b.take(), ()).expect_err("one slot");
        // Untracked inserts still work.
        let _p = q.insert(refused.irp, ()).unwrap();
        // Removing a by remove_next leaves the ticket out: the slot stays taken until release.
        q.remove_next().unwrap().complete(NtStatus::SUCCESS, 0);
        q.release_ticket(t);
        q.remove_next().unwrap().complete(NtStatus::SUCCESS, 0);
        [a, b].iter().for_each(|x| x.free());
    });
    out.expect_clean();
}

// ---- Ownership bugs the types cannot prevent are reported -------------------------------------

#[test]
fn dropping_an_irp_is_reported_and_the_irp_is_cancelled() {
    let out = machine().run(|| {
        let raw = RawIrp::new(IRP_MJ_READ, FILE_A);
        drop(raw.take());
        assert_eq!(raw.status(), STATUS_CANCELLED);
        raw.free();
    });
    assert_eq!(out.reports_of(ntsim::Rule::IrpDropped).len(), 1);
}

#[test]
fn dropping_a_ticket_is_reported() {
    let out = machine().run(|| {
        let q = Box::pin_init(CancelSafeQueue::<Fifo, 1>::new(Fifo)).unwrap();
        let a = RawIrp::new(IRP_MJ_READ, FILE_A);
        let (_p, t) = q.insert_tracked(a.take(), ()).unwrap();
        drop(t);
        q.remove_next().unwrap().complete(NtStatus::SUCCESS, 0);
        a.free();
    });
    assert_eq!(out.reports_of(ntsim::Rule::TicketDropped).len(), 1);
}

#[test]
fn dropping_a_queue_cancels_what_it_holds() {
    let out = machine().run(|| {
        let q = fifo();
        let a = RawIrp::new(IRP_MJ_READ, FILE_A);
        let _p = q.insert(a.take(), ()).unwrap();
        drop(q);
        assert_eq!(a.status(), STATUS_CANCELLED);
        a.free();
    });
    out.expect_clean();
}
