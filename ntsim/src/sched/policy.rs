//! Which ready actor runs next.

use super::actor::ActorId;

/// What the chooser needs to know about an eligible actor.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Candidate {
    pub(crate) id: ActorId,
    pub(crate) interrupt: bool,
    pub(crate) ready_seq: u64,
}

/// How the scheduler picks the next actor at a switch point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Deterministic and natural: pending interrupt work first, then the running actor keeps
    /// running until it blocks, then the actor that has been ready longest. Scripted runs use
    /// it, so that their output is reproducible.
    Fifo,
    /// At every switch point, any eligible actor, uniformly at random from `seed`. Used to
    /// explore interleavings; a failing seed replays exactly.
    Random {
        /// The seed of the run.
        seed: u64,
    },
    /// Probabilistic concurrency testing (Burckhardt et al.): random priorities, the highest
    /// eligible runs, and `depth - 1` randomly placed priority drops per run.
    Pct {
        /// The seed of the run.
        seed: u64,
        /// Bug depth the run is tuned for (at least 1).
        depth: u32,
    },
}

/// The mutable part of a policy: its random stream and PCT priorities.
#[derive(Debug)]
pub(crate) struct Chooser {
    policy: Policy,
    rng: fastrand::Rng,
    /// PCT: priority per actor (higher runs first), and the switch points where one drops.
    priorities: Vec<u64>,
    change_points: Vec<u64>,
    steps: u64,
}

/// How many switch points a PCT run is expected to have, for placing its priority drops.
const PCT_EXPECTED_STEPS: u64 = 2_000;

impl Chooser {
    pub(crate) fn new(policy: Policy) -> Self {
        let seed = match policy {
            Policy::Fifo => 0,
            Policy::Random { seed } | Policy::Pct { seed, .. } => seed,
        };
        let mut rng = fastrand::Rng::with_seed(seed);
        let change_points = match policy {
            Policy::Pct { depth, .. } => (1..depth.max(1))
                .map(|_| rng.u64(1..PCT_EXPECTED_STEPS))
                .collect(),
            _ => Vec::new(),
        };
        Chooser {
            policy,
            rng,
            priorities: Vec::new(),
            change_points,
            steps: 0,
        }
    }

    /// A new actor joins: PCT gives it a random priority above the drop range.
    pub(crate) fn on_spawn(&mut self, id: ActorId) {
        let i = id.0 as usize;
        if self.priorities.len() <= i {
            self.priorities.resize(i + 1, 0);
        }
        self.priorities[i] = 1_000 + self.rng.u64(0..1_000_000);
    }

    /// Picks among `eligible` (never empty). `current` is the actor at the switch point, if it
    /// is itself eligible.
    pub(crate) fn choose(&mut self, eligible: &[Candidate], current: Option<ActorId>) -> ActorId {
        self.steps += 1;
        match self.policy {
            Policy::Fifo => {
                if let Some(a) = eligible.iter().find(|a| a.interrupt) {
                    return a.id;
                }
                if let Some(c) = current {
                    return c;
                }
                eligible
                    .iter()
                    .min_by_key(|a| (a.ready_seq, a.id))
                    .map(|a| a.id)
                    .expect("eligible set is never empty")
            }
            Policy::Random { .. } => eligible[self.rng.usize(0..eligible.len())].id,
            Policy::Pct { .. } => {
                let best = eligible
                    .iter()
                    .max_by_key(|a| self.priorities.get(a.id.0 as usize).copied().unwrap_or(0))
                    .map(|a| a.id)
                    .expect("eligible set is never empty");
                if let Some(pos) = self.change_points.iter().position(|&p| p == self.steps) {
                    // A priority change point: the running choice drops below every other.
                    self.priorities[best.0 as usize] = pos as u64;
                }
                best
            }
        }
    }

    /// For exploration: whether to fire the next timer now although threads could still run
    /// (timer expiry is then one more actor that may run at any point after arming).
    pub(crate) fn fire_timer_early(&mut self) -> bool {
        match self.policy {
            Policy::Fifo => false,
            Policy::Random { .. } | Policy::Pct { .. } => self.rng.u32(0..8) == 0,
        }
    }
}
