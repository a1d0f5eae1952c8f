//! Which driver owns what: the driver whose code an actor is running, the system threads a
//! driver created, and the pool blocks it allocated. Unload (rule C25) and leak accounting ask
//! "is this timer, DPC, thread or block the driver's?"; this file answers.
//!
//! Attribution: an actor runs driver D's code while it is inside a call into D (DriverEntry,
//! a dispatch routine, DriverUnload: [`crate::driver`] pushes D around the call) or when it is a
//! system thread that D created. Pool blocks allocated in D's context are D's; so is any block
//! with a tag D used (DPCs and cancel routines allocate with the driver's tags too).

use std::collections::{HashMap, HashSet};

use crate::machine::World;
use crate::sched::ActorId;

#[derive(Debug, Default)]
pub(crate) struct OwnerTable {
    /// Drivers whose code each actor is running, innermost last.
    stacks: HashMap<ActorId, Vec<usize>>,
    /// System threads created by a driver, with their thread objects.
    pub(crate) thread_driver: HashMap<ActorId, (usize, usize)>,
    /// Pool block → the driver that allocated it.
    pool_owner: HashMap<usize, usize>,
    /// Tags each driver allocated with.
    driver_tags: HashMap<usize, HashSet<u32>>,
}

impl World {
    /// The driver whose code `actor` runs now, if any.
    pub(crate) fn current_driver(&self, actor: ActorId) -> Option<usize> {
        let o = &self.iomgr.owner;
        o.stacks
            .get(&actor)
            .and_then(|s| s.last().copied())
            .or_else(|| o.thread_driver.get(&actor).map(|&(d, _)| d))
    }

    /// `actor` enters code of `driver`.
    pub(crate) fn push_driver(&mut self, actor: ActorId, driver: usize) {
        self.iomgr
            .owner
            .stacks
            .entry(actor)
            .or_default()
            .push(driver);
    }

    /// `actor` leaves the innermost driver call.
    pub(crate) fn pop_driver(&mut self, actor: ActorId) {
        if let Some(s) = self.iomgr.owner.stacks.get_mut(&actor) {
            s.pop();
        }
    }

    /// Live pool blocks of `driver`: (address, size, tag).
    pub(crate) fn driver_pool(&self, driver: usize) -> Vec<(usize, usize, u32)> {
        let o = &self.iomgr.owner;
        let tags = o.driver_tags.get(&driver);
        self.pool
            .live
            .iter()
            .filter(|(addr, a)| match o.pool_owner.get(addr) {
                Some(&d) => d == driver,
                None => tags.is_some_and(|t| t.contains(&a.tag)),
            })
            .map(|(&addr, a)| (addr, a.size, a.tag))
            .collect()
    }

    /// System threads of `driver`: (actor, thread object).
    pub(crate) fn driver_threads(&self, driver: usize) -> Vec<(ActorId, usize)> {
        let mut v: Vec<(ActorId, usize)> = self
            .iomgr
            .owner
            .thread_driver
            .iter()
            .filter(|(_, (d, _))| *d == driver)
            .map(|(&a, &(_, obj))| (a, obj))
            .collect();
        v.sort();
        v
    }
}

/// Hook of `thread::spawn_thread`: a thread created by the running actor. It belongs to the
/// driver whose code the creator runs.
pub(crate) fn thread_created(g: &mut World, actor: ActorId, object: usize) {
    let Some(creator) = g.sched.running else {
        return;
    };
    if let Some(d) = g.current_driver(creator) {
        g.iomgr.owner.thread_driver.insert(actor, (d, object));
    }
}

/// Hook of the pool allocator: a block allocated by the running actor. (Memory reused by a new
/// block also forgets the remove locks that lived there.)
pub(crate) fn pool_allocated(g: &mut World, addr: usize, size: usize, tag: u32) {
    g.iomgr.remlocks.forget_range(addr, size);
    let driver = g.sched.running.and_then(|a| g.current_driver(a));
    match driver {
        Some(d) => {
            g.iomgr.owner.pool_owner.insert(addr, d);
            g.iomgr.owner.driver_tags.entry(d).or_default().insert(tag);
        }
        None => {
            g.iomgr.owner.pool_owner.remove(&addr);
        }
    }
}
