//! Emulated CPUs: each has a DPC queue and a list of expired timers, run by its interrupt actor.

use std::collections::VecDeque;

use crate::machine::{Cx, Machine, World};
use crate::sched::Status;
use crate::sync::Arc;

/// Per-CPU state.
#[derive(Debug, Default)]
pub(crate) struct Cpu {
    /// Queued KDPCs (addresses), in the order they run.
    pub(crate) dpc_queue: VecDeque<usize>,
    /// Expired KTIMERs (addresses) whose expiry processing has not run yet.
    pub(crate) expired_timers: VecDeque<usize>,
}

impl World {
    /// Whether `cpu` has DPCs or timer expiries waiting for its interrupt actor.
    pub(crate) fn cpu_has_interrupt_work(&self, cpu: usize) -> bool {
        let c = &self.cpus[cpu];
        !c.dpc_queue.is_empty() || !c.expired_timers.is_empty()
    }

    /// Requests a DISPATCH_LEVEL software interrupt on `cpu`: its interrupt actor becomes ready.
    pub(crate) fn request_dispatch_interrupt(&mut self, cpu: usize) {
        let id = self.sched.interrupt_actor(cpu);
        if self.sched.actor(id).status == Status::Idle {
            self.sched.make_ready(id);
        }
    }
}

/// Work the interrupt actor takes, one item per turn so that other CPUs interleave with it.
enum Work {
    Timer(usize),
    Dpc(usize),
}

/// The body of a CPU's interrupt actor: expire timers, then drain the DPC queue, then idle.
pub(crate) fn interrupt_loop(_m: Arc<Machine>, cpu: usize) {
    let cx = Cx::get();
    loop {
        let work = {
            let mut g = cx.lock();
            let c = &mut g.cpus[cpu];
            if let Some(t) = c.expired_timers.pop_front() {
                Some(Work::Timer(t))
            } else {
                c.dpc_queue.pop_front().map(Work::Dpc)
            }
        };
        match work {
            Some(Work::Timer(t)) => crate::timer::expire(&cx, t),
            Some(Work::Dpc(d)) => crate::dpc::run_queued(&cx, d),
            None => {
                let g = cx.lock();
                if cx.idle(g).is_none() {
                    return; // the run is over: this OS thread ends
                }
                continue;
            }
        }
        cx.switch_point();
    }
}
