//! Breakpoints: the control points of spec A.18.
//!
//! A test arms a [`Breakpoint`] at a [`Point`]; the first emulated thread that reaches a matching
//! point parks there. The test thread waits for the hit, does what the race needs (cancel the
//! IRP, fire the timer, run another thread to a point of its own), and resumes the parked
//! thread. With the deterministic scheduler this reproduces every row of the race tables of
//! spec B exactly.

use crate::machine::{Cx, World};
use crate::sched::{ActorId, Status};

/// A place in a kernel routine where a thread can be stopped.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Point {
    /// Just after IoSetCancelRoutine's exchange (object: the IRP).
    SetCancelRoutineReturn,
    /// Entry to IoCancelIrp (object: the IRP).
    CancelIrpEntry,
    /// Just before a cancel routine is called, cancel lock held (object: the IRP).
    CancelRoutineEntry,
    /// A spin-lock acquire attempt (object: the lock).
    SpinLockAcquire,
    /// A timer's expiry, before its DPC is called (object: the KTIMER).
    TimerExpiry,
    /// A DPC routine about to run (object: the KDPC).
    DpcStart,
    /// A wait has been satisfied and is about to return (object: the first object waited on).
    WaitReturn,
    /// A dispatch routine is about to be called (object: the IRP).
    DispatchEntry,
    /// A dispatch routine has returned (object: the IRP).
    DispatchExit,
    /// Entry to IoCompleteRequest (object: the IRP).
    CompleteRequestEntry,
    /// IoCsqInsertIrpEx between setting its cancel routine and checking Irp->Cancel (spec A.9.3
    /// steps 5 and 6; object: the IRP).
    CsqInsertBeforeCancelCheck,
    /// StartIo about to be called (object: the IRP).
    StartIoEntry,
    /// A named point placed by a test or a driver through [`named_point`].
    Named(&'static str),
}

/// Which hits of a point count.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    /// Any object, any thread.
    Any,
    /// Only this object (an IRP, a lock, a timer… by address).
    Object(usize),
    /// Only this thread.
    Actor(ActorId),
}

/// What a breakpoint caught.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The parked thread.
    pub actor: ActorId,
    /// Its name.
    pub name: String,
    /// The object of the point.
    pub object: usize,
}

#[derive(Debug)]
struct Bp {
    id: u32,
    point: Point,
    filter: Filter,
    armed: bool,
    hit: Option<Hit>,
    waiter: Option<ActorId>,
}

/// Armed breakpoints of a machine.
#[derive(Debug, Default)]
pub(crate) struct Breakpoints {
    list: Vec<Bp>,
    next_id: u32,
}

impl World {
    fn breakpoint_mut(&mut self, id: u32) -> &mut Bp {
        self.breakpoints
            .list
            .iter_mut()
            .find(|b| b.id == id)
            .expect("breakpoint exists until cleared")
    }
}

impl Cx {
    /// Passes `point` with `object`: parks here if an armed breakpoint matches, and is a switch
    /// point in any case.
    pub(crate) fn point(&self, point: Point, object: usize) {
        let mut g = self.lock();
        let me = self.me;
        let found = g.breakpoints.list.iter().position(|b| {
            b.armed
                && b.point == point
                && match b.filter {
                    Filter::Any => true,
                    Filter::Object(o) => o == object,
                    Filter::Actor(a) => a == me,
                }
        });
        let Some(i) = found else {
            drop(self.reschedule(g));
            return;
        };
        let name = g.who(me);
        let bp = &mut g.breakpoints.list[i];
        bp.armed = false;
        bp.hit = Some(Hit {
            actor: me,
            name,
            object,
        });
        let id = bp.id;
        if let Some(w) = bp.waiter.take() {
            g.sched.make_ready(w);
        }
        drop(self.block(g, Status::Parked { breakpoint: id }));
    }
}

/// A breakpoint armed by a test. Dropping it does not resume a parked thread: call
/// [`Breakpoint::resume`].
#[derive(Debug)]
pub struct Breakpoint {
    id: u32,
}

impl Breakpoint {
    /// Arms a breakpoint at `point` for objects matching `filter`; the first matching thread
    /// parks there. Call from an emulated thread.
    pub fn set(point: Point, filter: Filter) -> Breakpoint {
        let cx = Cx::get();
        let mut g = cx.lock();
        g.breakpoints.next_id += 1;
        let id = g.breakpoints.next_id;
        g.breakpoints.list.push(Bp {
            id,
            point,
            filter,
            armed: true,
            hit: None,
            waiter: None,
        });
        Breakpoint { id }
    }

    /// Waits (as an emulated thread) until a thread parks at the breakpoint, and says which.
    pub fn wait_hit(&self) -> Hit {
        let cx = Cx::get();
        loop {
            let mut g = cx.lock();
            if let Some(h) = g.breakpoint_mut(self.id).hit.clone() {
                return h;
            }
            g.breakpoint_mut(self.id).waiter = Some(cx.me);
            drop(cx.block(g, Status::Waiting));
        }
    }

    /// Whether a thread is parked here now.
    pub fn is_hit(&self) -> bool {
        let cx = Cx::get();
        let mut g = cx.lock();
        g.breakpoint_mut(self.id).hit.is_some()
    }

    /// Lets the parked thread go on (it becomes ready; the caller keeps running until its next
    /// switch point). Does nothing if no thread is parked.
    pub fn resume(&self) {
        let cx = Cx::get();
        let mut g = cx.lock();
        if let Some(h) = g.breakpoint_mut(self.id).hit.take() {
            g.sched.make_ready(h.actor);
        }
    }

    /// Resumes the parked thread, if any, and removes the breakpoint.
    pub fn clear(self) {
        self.resume();
        let cx = Cx::get();
        let mut g = cx.lock();
        g.breakpoints.list.retain(|b| b.id != self.id);
    }
}

/// A named control point that a test or a driver fragment places in its own code: a switch
/// point where a [`Breakpoint`] at `Point::Named(name)` parks the thread.
pub fn named_point(name: &'static str) {
    Cx::get().point(Point::Named(name), 0);
}
