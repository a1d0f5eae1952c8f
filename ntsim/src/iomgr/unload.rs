//! Driver unload (spec D-28, D-29; rules C14, C25) and leak accounting.
//!
//! [`unload_driver`] is deferred while any device of the driver is referenced (an open file
//! object holds its device): DriverUnload then runs when the last reference goes, on the thread
//! that drops it (IopUnloadDevice on ReactOS, IopCompleteUnloadOrDelete on Windows). After
//! DriverUnload returns: rule C25 (fatal) if a timer is still inserted or a DPC queued or
//! running in the driver's memory (its pool blocks and device extensions), or a system thread
//! it created is alive; rule C14 for IRPs still pending on its devices; and a [`LeakReport`] of
//! what it left behind (reported as LEAK).

use crate::machine::{Cx, World};
use crate::ntdef::{
    KEVENT, NTSTATUS, NotificationEvent, PASSIVE_LEVEL, PDEVICE_OBJECT, PDRIVER_OBJECT, PIRP,
    STATUS_INVALID_DEVICE_REQUEST,
};
use crate::object::{ObjectKind, SYSTEM_PROCESS};
use crate::sched::ActorId;
use crate::verifier::Rule;

use super::raw::{Raw, new_event};

/// A pool block a driver left allocated.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PoolLeak {
    /// Its address.
    pub address: usize,
    /// Its size in bytes.
    pub size: usize,
    /// Its pool tag.
    pub tag: u32,
}

/// An object with references nobody accounts for (neither a handle nor the I/O manager).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectLeak {
    /// The object's address.
    pub object: usize,
    /// Its type.
    pub kind: ObjectKind,
    /// How many references are unaccounted for.
    pub references: i64,
    /// Its name, if it has one (a thread's name).
    pub name: Option<String>,
}

/// What a driver left behind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeakReport {
    /// Pool blocks it allocated (or tagged with its tags) that are still live.
    pub pool_blocks: Vec<PoolLeak>,
    /// Device objects it did not delete.
    pub devices: Vec<usize>,
    /// Symbolic links to its devices' names that still exist.
    pub symbolic_links: Vec<String>,
    /// References to user events and to its threads' objects nobody accounts for.
    pub object_references: Vec<ObjectLeak>,
    /// IRPs still pending on its devices.
    pub pending_irps: Vec<usize>,
    /// Timers still inserted in its memory.
    pub timers: Vec<usize>,
    /// DPCs still queued or running in its memory.
    pub dpcs: Vec<usize>,
    /// System threads it created that are still alive.
    pub threads: Vec<String>,
}

impl LeakReport {
    /// How many things were left behind (eventctl's `leaks`).
    pub fn count(&self) -> usize {
        self.pool_blocks.len()
            + self.devices.len()
            + self.symbolic_links.len()
            + self.object_references.len()
            + self.pending_irps.len()
            + self.timers.len()
            + self.dpcs.len()
            + self.threads.len()
    }

    /// Whether nothing was left behind.
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }
}

/// What [`unload_driver`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnloadOutcome {
    /// DriverUnload ran; this is what the driver left behind.
    Unloaded(LeakReport),
    /// A device is still referenced (an open handle, or requests in flight): DriverUnload runs
    /// when the last reference goes; [`wait_for_unload`] waits for it.
    Deferred,
}

/// An unload that was requested.
#[derive(Debug)]
pub(crate) struct UnloadState {
    done: Raw<KEVENT>,
    running: bool,
    report: Option<LeakReport>,
}

impl World {
    fn driver_devices(&self, driver: usize) -> Vec<(usize, usize)> {
        let mut v: Vec<(usize, usize)> = self
            .drivers
            .devices
            .iter()
            .filter(|(_, d)| d.driver == driver)
            .map(|(&dev, d)| (dev, d.storage.size()))
            .collect();
        v.sort();
        v
    }

    fn any_device_referenced(&self, driver: usize) -> bool {
        self.driver_devices(driver).iter().any(|&(dev, _)| {
            // SAFETY: devices of the table are live.
            unsafe { (*(dev as PDEVICE_OBJECT)).ReferenceCount > 0 }
        })
    }

    fn object_name(&self, obj: usize) -> Option<String> {
        self.objects.objects.get(&obj).and_then(|o| o.name.clone())
    }

    fn handle_count(&self, obj: usize) -> i64 {
        let mut pids: Vec<u32> = self.iomgr.processes.keys().copied().collect();
        pids.push(SYSTEM_PROCESS);
        pids.iter()
            .map(|&pid| {
                self.handles_of(pid)
                    .into_iter()
                    .filter(|&h| {
                        self.lookup_handle(pid, h, crate::ntdef::KernelMode)
                            .is_some_and(|e| e.object == obj)
                    })
                    .count() as i64
            })
            .sum()
    }

    /// What `driver` has left behind now.
    /// `known_devices`: devices the driver had before (deleted ones still count for pending
    /// IRPs).
    pub(crate) fn collect_leaks(&self, driver: usize, known_devices: &[usize]) -> LeakReport {
        let devices = self.driver_devices(driver);
        let pool = self.driver_pool(driver);
        let ranges: Vec<(usize, usize)> = devices
            .iter()
            .copied()
            .chain(pool.iter().map(|&(a, s, _)| (a, s)))
            .collect();
        let mut r = LeakReport {
            pool_blocks: pool
                .iter()
                .map(|&(address, size, tag)| PoolLeak { address, size, tag })
                .collect(),
            ..LeakReport::default()
        };
        for &(start, len) in &ranges {
            r.timers.extend(self.timers.inserted_in(start, len));
            r.dpcs.extend(self.active_dpc_in(start, len));
        }
        let alive: Vec<ActorId> = self.threads.actors().map(|(&a, _)| a).collect();
        for (actor, obj) in self.driver_threads(driver) {
            if alive.contains(&actor) {
                r.threads.push(self.who(actor));
            }
            if let Some(refs) = self.object_refs(obj) {
                let expected = self.handle_count(obj) + i64::from(alive.contains(&actor));
                if refs > expected {
                    r.object_references.push(ObjectLeak {
                        object: obj,
                        kind: ObjectKind::Thread,
                        references: refs - expected,
                        name: self.object_name(obj),
                    });
                }
            }
        }
        for obj in self.iomgr.events.objects() {
            let Some(refs) = self.object_refs(obj) else {
                continue;
            };
            let in_flight = self
                .iomgr
                .requests
                .by_id
                .values()
                .filter(|q| q.user_event == obj)
                .count() as i64;
            let expected = self.handle_count(obj) + in_flight;
            if refs > expected {
                r.object_references.push(ObjectLeak {
                    object: obj,
                    kind: self.object_kind(obj).unwrap_or(ObjectKind::Event),
                    references: refs - expected,
                    name: self.object_name(obj),
                });
            }
        }
        let mut dev_set: Vec<usize> = devices.iter().map(|&(d, _)| d).collect();
        dev_set.extend_from_slice(known_devices);
        for (&irp, s) in &self.irps.irps {
            if s.completed || s.freed {
                continue;
            }
            let dev = routed_device(irp as PIRP);
            if dev_set.contains(&dev) {
                r.pending_irps.push(irp);
            }
        }
        r.pending_irps.sort();
        let names: Vec<String> = self
            .drivers
            .devices
            .values()
            .filter(|d| d.driver == driver)
            .filter_map(|d| d.name.as_ref().map(|n| n.to_ascii_lowercase()))
            .collect();
        for (link, target) in &self.drivers.links {
            if names.contains(&target.to_ascii_lowercase()) {
                r.symbolic_links.push(link.clone());
            }
        }
        r.symbolic_links.sort();
        r.devices = self
            .drivers
            .devices
            .iter()
            .filter(|(_, d)| d.driver == driver && !d.deleted)
            .map(|(&dev, _)| dev)
            .collect();
        r.devices.sort();
        r
    }
}

/// The device of a live IRP's current stack location (0 if it has none).
fn routed_device(p: PIRP) -> usize {
    // SAFETY: a live IRP of the IRP table.
    let r = unsafe { &*p };
    if r.CurrentLocation < 1 || r.CurrentLocation > r.StackCount {
        return 0;
    }
    // SAFETY: CurrentLocation is within the stack: the current location exists.
    let sl = unsafe { crate::irp::IoGetCurrentIrpStackLocation(p) };
    // SAFETY: as above.
    unsafe { (*sl).DeviceObject as usize }
}

/// What `driver` has left behind now (without unloading it): pool blocks, devices, links,
/// unaccounted object references, pending IRPs, timers, DPCs and threads.
pub fn driver_leaks(driver: PDRIVER_OBJECT) -> LeakReport {
    Cx::get().lock().collect_leaks(driver as usize, &[])
}

/// Unloads `driver` (NtUnloadDriver). New opens of its devices fail with
/// STATUS_NO_SUCH_DEVICE from now on. If a device is referenced, DriverUnload is deferred until
/// the last reference goes (spec D-29) and `Deferred` is returned; otherwise it runs now at
/// PASSIVE_LEVEL and the checks of rules C25 (fatal), C14 and LEAK follow.
///
/// IRQL: PASSIVE_LEVEL. Returns STATUS_INVALID_DEVICE_REQUEST for an unknown or unloaded
/// driver, or one without a DriverUnload routine.
// The pointer is checked against the driver table before it is dereferenced.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn unload_driver(driver: PDRIVER_OBJECT) -> Result<UnloadOutcome, NTSTATUS> {
    let cx = Cx::get();
    cx.check_irql_at_most("unload_driver", PASSIVE_LEVEL);
    let d = driver as usize;
    {
        let mut g = cx.lock();
        if g.drivers.drivers.get(&d).is_none_or(|i| i.unloaded) {
            return Err(STATUS_INVALID_DEVICE_REQUEST);
        }
        if g.iomgr.unloads.contains_key(&d) {
            return Ok(UnloadOutcome::Deferred);
        }
        // SAFETY: a loaded driver object.
        if unsafe { (*driver).DriverUnload }.is_none() {
            return Err(STATUS_INVALID_DEVICE_REQUEST);
        }
        g.iomgr.unloads.insert(
            d,
            UnloadState {
                done: new_event(NotificationEvent, false),
                running: false,
                report: None,
            },
        );
        if g.any_device_referenced(d) {
            return Ok(UnloadOutcome::Deferred);
        }
    }
    Ok(UnloadOutcome::Unloaded(run_unload(&cx, d)))
}

/// Runs a deferred unload if it is due (the last device reference went).
pub(crate) fn run_deferred_unload(cx: &Cx, driver: usize) {
    {
        let g = cx.lock();
        let Some(s) = g.iomgr.unloads.get(&driver) else {
            return;
        };
        if s.running || s.report.is_some() || g.any_device_referenced(driver) {
            return;
        }
    }
    run_unload(cx, driver);
}

/// Waits until `driver`'s unload has run and returns its leak report; `None` if no unload was
/// requested.
pub fn wait_for_unload(driver: PDRIVER_OBJECT) -> Option<LeakReport> {
    let cx = Cx::get();
    let done = {
        let g = cx.lock();
        let s = g.iomgr.unloads.get(&(driver as usize))?;
        if let Some(r) = &s.report {
            return Some(r.clone());
        }
        s.done.addr()
    };
    crate::wait::wait_objects("wait_for_unload", vec![done], false, None);
    cx.lock().iomgr.unloads[&(driver as usize)].report.clone()
}

/// DriverUnload and the checks after it.
fn run_unload(cx: &Cx, d: usize) -> LeakReport {
    let driver = d as PDRIVER_OBJECT;
    let devices: Vec<usize> = {
        let mut g = cx.lock();
        g.iomgr.unloads.get_mut(&d).expect("requested").running = true;
        g.driver_devices(d).iter().map(|&(dev, _)| dev).collect()
    };
    // SAFETY: a loaded driver object.
    let routine = unsafe { (*driver).DriverUnload }.expect("checked at request");
    // SAFETY: DriverUnload's contract: its driver object, at PASSIVE_LEVEL, once.
    crate::driver::call_driver_routine(cx, d, "DriverUnload", PASSIVE_LEVEL, || unsafe {
        crate::abi::call_unload_fn(routine, driver)
    });
    let mut g = cx.lock();
    let report = g.collect_leaks(d, &devices);
    let name = g.drivers.drivers[&d].name.clone();
    let who = g.who(cx.me);
    if !report.timers.is_empty() || !report.dpcs.is_empty() || !report.threads.is_empty() {
        let mut what = Vec::new();
        what.extend(
            report
                .timers
                .iter()
                .map(|t| format!("timer {t:#x} inserted")),
        );
        what.extend(
            report
                .dpcs
                .iter()
                .map(|d| format!("DPC {d:#x} queued or running")),
        );
        what.extend(
            report
                .threads
                .iter()
                .map(|t| format!("system thread '{t}' alive")),
        );
        g.report(
            Rule::UnloadPending,
            format!(
                "{name} unloaded with pending operations: {}",
                what.join(", ")
            ),
            vec![who],
        );
        drop(cx.reschedule(g));
        return report;
    }
    for &irp in &report.pending_irps {
        let mut parties = vec![who.clone()];
        parties.extend(g.irp_history(irp));
        g.report(
            Rule::IrpLeak,
            format!("IRP {irp:#x} still pending on a device of {name} after DriverUnload"),
            parties,
        );
    }
    let mut left = Vec::new();
    left.extend(report.pool_blocks.iter().map(|p| {
        format!(
            "pool block {:#x} ({} bytes, tag {})",
            p.address,
            p.size,
            tag_name(p.tag)
        )
    }));
    left.extend(
        report
            .devices
            .iter()
            .map(|d| format!("device object {d:#x} not deleted")),
    );
    left.extend(
        report
            .symbolic_links
            .iter()
            .map(|l| format!("symbolic link {l}")),
    );
    left.extend(report.object_references.iter().map(|o| {
        format!(
            "{} reference(s) to {:?} object {:#x}",
            o.references, o.kind, o.object
        )
    }));
    if !left.is_empty() {
        g.report(
            Rule::Leak,
            format!("{name} left behind at unload: {}", left.join(", ")),
            vec![who],
        );
    }
    if let Some(i) = g.drivers.drivers.get_mut(&d) {
        i.unloaded = true;
    }
    let s = g.iomgr.unloads.get_mut(&d).expect("requested");
    s.report = Some(report.clone());
    s.running = false;
    let done = s.done.addr();
    crate::wait::set_signal_state(done, 1);
    g.signal_object(done);
    report
}

fn tag_name(tag: u32) -> String {
    let b = tag.to_le_bytes();
    if b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
        format!("'{}'", String::from_utf8_lossy(&b))
    } else {
        format!("{tag:#x}")
    }
}
