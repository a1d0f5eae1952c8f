//! Insertion policies of a [`CancelSafeQueue`](crate::CancelSafeQueue): where an IRP goes, whether
//! it is accepted at all, and what happens to an IRP cancelled while queued.

use crate::irp::{Irp, IrpView};
use crate::status::{NtError, NtStatus};

/// Where an accepted IRP is linked.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Position {
    /// At the tail: first in, first out.
    Back,
    /// In ascending key order, after every queued IRP with a key less than or equal to this one
    /// (so FIFO among equal keys). IRPs queued with [`Position::Back`] count as having the
    /// largest key.
    Key(u64),
}

/// A queue's insertion policy.
///
/// [`admit`](QueuePolicy::admit) runs inside `IoCsqInsertIrpEx`'s insert callback, **with the
/// queue's spin lock held at DISPATCH_LEVEL**: it must be short, must not wait, must not touch the
/// queue, and must not complete IRPs. Refusing returns an NT *error* status ([`NtError`]), which
/// `IoCsqInsertIrpEx` returns without queueing; the IRP goes back to the caller (spec A.9.3
/// "Ex status convention").
///
/// [`cancelled`](QueuePolicy::cancelled) is the queue's `CsqCompleteCanceledIrp`: it receives
/// every IRP cancelled while queued (including one already cancelled when it was inserted), after
/// the queue lock was released, at <= DISPATCH_LEVEL (spec A.9.6). The default completes it with
/// `STATUS_CANCELLED` and no information (spec B.5 E5); override it to learn about cancellations
/// (e.g. to wake a worker), then complete or hand off the [`Irp`].
///
/// A policy is shared by every CPU that uses the queue, hence [`Sync`]; keep mutable state in
/// atomics or in kernel objects of its own (it is pinned with the queue, so it may embed them).
pub trait QueuePolicy: Sync + Send {
    /// What [`insert`](crate::CancelSafeQueue::insert) takes besides the IRP (`()` for FIFO, the
    /// key for [`Keyed`]).
    type Arg;

    /// Accepts the IRP at a [`Position`], or refuses it with an NT error. `queued` is the number
    /// of IRPs in the queue now (a cancelled IRP counts until its cancel routine unlinks it).
    ///
    /// IRQL: DISPATCH_LEVEL, queue lock held.
    ///
    /// # Errors
    /// The status the insert fails with; the caller gets the IRP back.
    fn admit(&self, irp: &IrpView, arg: &Self::Arg, queued: usize) -> Result<Position, NtError>;

    /// Receives an IRP that was cancelled while queued; must complete it (or hand it off).
    ///
    /// IRQL: <= DISPATCH_LEVEL, no queue lock held.
    fn cancelled(&self, irp: Irp) {
        irp.complete(NtStatus::CANCELLED, 0);
    }
}

/// First in, first out; never refuses.
#[derive(Clone, Copy, Default, Debug)]
pub struct Fifo;

impl QueuePolicy for Fifo {
    type Arg = ();

    fn admit(&self, _irp: &IrpView, _arg: &(), _queued: usize) -> Result<Position, NtError> {
        Ok(Position::Back)
    }
}

/// Ascending key order, first in, first out among equal keys (the order of
/// `IoStartPacket(.., Key, ..)` with a sorted device queue); never refuses.
#[derive(Clone, Copy, Default, Debug)]
pub struct Keyed;

impl QueuePolicy for Keyed {
    type Arg = u64;

    fn admit(&self, _irp: &IrpView, key: &u64, _queued: usize) -> Result<Position, NtError> {
        Ok(Position::Key(*key))
    }
}

/// FIFO with at most `limit` queued IRPs; refuses more with `STATUS_INSUFFICIENT_RESOURCES`.
/// An example of a refusing policy.
#[derive(Clone, Copy, Debug)]
pub struct Bounded {
    /// The most IRPs the queue holds.
    pub limit: usize,
}

impl QueuePolicy for Bounded {
    type Arg = ();

    fn admit(&self, _irp: &IrpView, _arg: &(), queued: usize) -> Result<Position, NtError> {
        if queued < self.limit {
            Ok(Position::Back)
        } else {
            Err(NtError::INSUFFICIENT_RESOURCES)
        }
    }
}
