//! Time: a virtual clock that jumps to the next deadline when nothing can run, or real time.
//!
//! Units are the kernel's: 100 ns. "Interrupt time" starts at 0 when the machine boots; system
//! time is [`BOOT_SYSTEM_TIME`] plus interrupt time (no clock changes are modelled, so absolute
//! and relative due times differ only in their base).

use std::collections::BTreeMap;
use std::time::Instant;

use crate::sched::ActorId;

/// System time at boot: 2026-01-01T00:00:00Z as 100 ns units since 1601-01-01.
pub const BOOT_SYSTEM_TIME: u64 = 134_116_992_000_000_000;

/// 100 ns units per millisecond.
pub const TICKS_PER_MS: u64 = 10_000;

/// Virtual or real time.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TimeMode {
    /// Time moves only when every emulated thread is blocked and no DPC is queued; it then jumps
    /// to the next deadline. Runs are instant and deterministic.
    Virtual,
    /// Time is the host's monotonic clock; idle periods really sleep. For smoke tests and
    /// benchmarks.
    Real,
}

/// Something that happens at a time.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// A KTIMER's due time; `generation` tells a stale entry from the current setting.
    Timer { timer: usize, generation: u64 },
    /// A wait's timeout or a delay's end; `generation` identifies the wait.
    Timeout { actor: ActorId, generation: u64 },
}

/// Key of a deadline: time, then order of arming (so equal times fire in arming order).
pub(crate) type DeadlineKey = (u64, u64);

/// Order bit of a *settled* deadline ([`Clock::add_settled`]): it sorts after every ordinary
/// deadline of its time and fires only when nothing else can run at that time.
const SETTLED: u64 = 1 << 63;

#[derive(Debug)]
pub(crate) struct Clock {
    mode: TimeMode,
    now: u64,
    started: Instant,
    deadlines: BTreeMap<DeadlineKey, Deadline>,
    seq: u64,
}

impl Clock {
    pub(crate) fn new(mode: TimeMode) -> Self {
        Clock {
            mode,
            now: 0,
            started: Instant::now(),
            deadlines: BTreeMap::new(),
            seq: 0,
        }
    }

    /// Interrupt time now.
    pub(crate) fn now(&self) -> u64 {
        match self.mode {
            TimeMode::Virtual => self.now,
            TimeMode::Real => self.started.elapsed().as_nanos() as u64 / 100,
        }
    }

    /// System time now.
    pub(crate) fn system_time(&self) -> u64 {
        BOOT_SYSTEM_TIME + self.now()
    }

    /// Converts a kernel due time (negative: relative; positive: absolute system time; 0: now)
    /// into an interrupt time.
    pub(crate) fn due_to_interrupt_time(&self, due: i64) -> u64 {
        let now = self.now();
        if due < 0 {
            now.saturating_add(due.unsigned_abs())
        } else {
            (due as u64).saturating_sub(BOOT_SYSTEM_TIME)
        }
    }

    pub(crate) fn add(&mut self, at: u64, d: Deadline) -> DeadlineKey {
        self.seq += 1;
        let key = (at, self.seq);
        self.deadlines.insert(key, d);
        key
    }

    /// Adds a deadline that fires at `at` only once the machine has settled there: after every
    /// ordinary deadline due at `at` has fired and nothing can run any more (a scenario client
    /// acting "at `at` ms" sees every timer of that instant expired and its DPCs and woken
    /// threads run).
    pub(crate) fn add_settled(&mut self, at: u64, d: Deadline) -> DeadlineKey {
        self.seq += 1;
        let key = (at, SETTLED | self.seq);
        self.deadlines.insert(key, d);
        key
    }

    /// Removes and returns the first deadline if it is a settled one that is due.
    fn take_settled_due(&mut self) -> Option<Deadline> {
        let (&key, _) = self.deadlines.iter().next()?;
        if key.0 > self.now() || key.1 & SETTLED == 0 {
            return None;
        }
        self.deadlines.remove(&key)
    }

    pub(crate) fn remove(&mut self, key: DeadlineKey) {
        self.deadlines.remove(&key);
    }

    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.deadlines.keys().next().map(|k| k.0)
    }

    /// Removes and returns every ordinary (not settled) deadline due at or before now.
    pub(crate) fn take_due(&mut self) -> Vec<Deadline> {
        let now = self.now();
        let keys: Vec<DeadlineKey> = self
            .deadlines
            .range(..(now.saturating_add(1), 0))
            .map(|(&k, _)| k)
            .filter(|k| k.1 & SETTLED == 0)
            .collect();
        keys.iter()
            .filter_map(|k| self.deadlines.remove(k))
            .collect()
    }

    /// Moves time to the next deadline (virtual), or sleeps until it (real). False if there is
    /// none.
    pub(crate) fn advance(&mut self) -> bool {
        let Some(next) = self.next_deadline() else {
            return false;
        };
        match self.mode {
            TimeMode::Virtual => self.now = self.now.max(next),
            TimeMode::Real => {
                let now = self.now();
                if next > now {
                    std::thread::sleep(std::time::Duration::from_nanos((next - now) * 100));
                }
            }
        }
        true
    }
}

impl crate::machine::World {
    /// Fires every deadline that is due: timers go to their CPU's expiry queue, timeouts wake
    /// their waiters.
    pub(crate) fn fire_due_deadlines(&mut self) -> usize {
        let due = self.clock.take_due();
        let n = due.len();
        for d in due {
            self.fire_deadline(d);
        }
        n
    }

    fn fire_deadline(&mut self, d: Deadline) {
        match d {
            Deadline::Timer { timer, generation } => self.timer_due(timer, generation),
            Deadline::Timeout { actor, generation } => self.wait_timed_out(actor, generation),
        }
    }

    /// Advances the clock to the next deadline and fires what is due. `early` is exploration's
    /// "expire the next timer although threads could run". False if nothing is scheduled.
    pub(crate) fn advance_to_next_deadline(&mut self, _early: bool) -> bool {
        if !self.clock.advance() {
            return false;
        }
        // A settled deadline fires alone, and only when nothing ordinary was due: whatever the
        // ordinary ones wake runs first, and this is called again once that has settled.
        if self.fire_due_deadlines() == 0 {
            if let Some(d) = self.clock.take_settled_due() {
                self.fire_deadline(d);
            }
        }
        true
    }
}

/// Interrupt time: 100 ns units since the machine booted (virtual or real, per [`TimeMode`]).
///
/// IRQL: any.
#[allow(non_snake_case)]
pub fn KeQueryInterruptTime() -> u64 {
    crate::machine::Cx::get().lock().clock.now()
}

/// System time: 100 ns units since 1601-01-01 (UTC), [`BOOT_SYSTEM_TIME`] at boot.
///
/// IRQL: any.
///
/// # Safety
/// `time` must be valid for a write.
#[allow(non_snake_case)]
pub unsafe fn KeQuerySystemTime(time: *mut crate::ntdef::LARGE_INTEGER) {
    let now = crate::machine::Cx::get().lock().clock.system_time();
    // SAFETY: the caller guarantees `time` is writable.
    unsafe { time.write(now as i64) };
}
