//! Whether a loop of like steps runs its kernels with the helper threads or on the calling
//! thread alone, chosen by timing both.
//!
//! Two threads are faster than one only while the two cores really run in parallel. On a
//! shared virtual machine they sometimes do not: for stretches of seconds the two virtual
//! CPUs slow each other down (they share a physical core, or its floating-point units, with
//! each other or with a neighbour), and a step that waits for both threads then takes two to
//! three times as long as on one thread alone, whose partner sits idle. Nothing in the guest
//! reports it (no steal time), so [`ThreadGovernor`] measures it: it times a few steps each way
//! now and then, and runs the steps in between the faster way. The split of the work into
//! parts does not change, only which threads run the parts, so the results are the same bits
//! either way.

use std::time::Instant;

/// Steps timed each way in a probe. The first of each block is not counted: in it the helpers
/// wake up or go to sleep, and the caller's cache fills with the other parts' data.
const PROBE_STEPS: usize = 4;

/// A probe times the way not chosen first. When its first counted step takes this many times
/// as long as the chosen way did in the last probe, the rest of its block is skipped; and
/// when the team beats the calling thread alone by this much, the next run is a
/// [`LONGEST_RUN`] at once (a collapse of the team during it ends it early, see [`DRIFT`]).
const CLEAR_MARGIN: f64 = 1.25;

/// Steps run the chosen way after a probe that changed the choice or found the ways close;
/// each probe that keeps the choice doubles the run, up to [`LONGEST_RUN`].
const FIRST_RUN: usize = 32;

/// The longest run between probes, in steps: with steps of 0.1-3 ms, 50 ms to 1.5 s. The
/// probe's steps the slower way then cost well under 1 % of a run.
const LONGEST_RUN: usize = 512;

/// A run ends early when [`DRIFT_STEPS`] steps in a row took this many times longer (or
/// shorter) than the probe measured for the chosen way: the machine changed.
const DRIFT: f64 = 1.5;

/// See [`DRIFT`].
const DRIFT_STEPS: usize = 4;

/// A probe changes the choice only when the other way was faster by more than this factor
/// (medians of three steps of 0.1-3 ms each vary by a few per cent from timer interrupts and
/// the like; a real collapse of the team makes a factor of two).
const SWITCH_MARGIN: f64 = 1.05;

/// One way to run a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    /// The kernels hand out their parts to the helper threads ([`super::threads`]).
    Team = 0,
    /// The calling thread runs every part itself; the helpers sleep.
    Alone = 1,
}

impl Way {
    fn other(self) -> Way {
        match self {
            Way::Team => Way::Alone,
            Way::Alone => Way::Team,
        }
    }
}

/// Where the governor is in its cycle of probes and runs.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// The first step: run as a team, not timed (it starts the helpers and sizes every
    /// thread's workspaces).
    Warmup,
    /// Step `at` of a probe: the first [`PROBE_STEPS`] the way not chosen, the next the
    /// chosen way.
    Probe { at: usize },
    /// `left` more steps the chosen way.
    Run { left: usize },
}

/// Chooses, step by step, whether the kernels of a loop of like steps (training steps of one
/// batch size) use the helper threads, by timing both ways now and then (see the module
/// documentation). With one thread ([`super::set_threads`]) or without the `threads` feature
/// it does nothing.
///
/// ```
/// use nn_runtime::kernel::ThreadGovernor;
///
/// let mut governor = ThreadGovernor::new();
/// for _ in 0..100 {
///     let step = governor.step(32);
///     // ... one training step on 32 samples: forward, backward, optimizer ...
///     step.finish();
/// }
/// assert_eq!(governor.steps(), 100);
/// ```
#[derive(Debug)]
pub struct ThreadGovernor {
    phase: Phase,
    /// The size of the steps timed (samples per batch); steps of another size run the chosen
    /// way untimed.
    size: Option<usize>,
    /// Seconds per step in the current probe, by [`Way`].
    probe: [[f64; PROBE_STEPS]; 2],
    choice: Way,
    run: usize,
    /// The last probe's median for the chosen way, in seconds (0 before the first).
    reference: f64,
    /// Steps in a row that drifted from `reference`.
    drifted: usize,
    /// The way the previous step ran.
    last: Way,
    steps: u64,
    alone: u64,
}

impl Default for ThreadGovernor {
    fn default() -> Self {
        Self::new()
    }
}

impl ThreadGovernor {
    /// A governor that has timed nothing yet: its first step runs as a team.
    pub fn new() -> Self {
        Self {
            phase: Phase::Warmup,
            size: None,
            probe: [[0.0; PROBE_STEPS]; 2],
            choice: Way::Team,
            run: FIRST_RUN,
            reference: 0.0,
            drifted: 0,
            last: Way::Team,
            steps: 0,
            alone: 0,
        }
    }

    /// Starts a step on `size` samples: until the returned guard is finished or dropped, the
    /// kernels called on this thread run the way the governor chose. Call
    /// [`GovernedStep::finish`] when the step's work is done (a dropped guard is not timed).
    pub fn step(&mut self, size: usize) -> GovernedStep<'_> {
        let governed = super::threads() > 1 && cfg!(feature = "threads");
        let (way, timed) = self.plan(governed, size);
        if way == Way::Alone && self.last != Way::Alone {
            rest();
        }
        self.last = way;
        let previous = set_alone(way == Way::Alone);
        self.steps += 1;
        self.alone += u64::from(way == Way::Alone);
        GovernedStep {
            size: timed.then_some(size),
            previous,
            started: Instant::now(),
            governor: self,
        }
    }

    /// Steps started so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Steps run on the calling thread alone so far.
    pub fn steps_alone(&self) -> u64 {
        self.alone
    }

    /// How the next step on `size` samples runs, and whether it is timed.
    fn plan(&self, governed: bool, size: usize) -> (Way, bool) {
        let timed = governed && self.size.is_none_or(|s| s == size);
        let way = match (timed, self.phase) {
            (false, _) => {
                if governed {
                    self.choice
                } else {
                    Way::Team
                }
            }
            (true, Phase::Warmup) => Way::Team,
            (true, Phase::Probe { at }) if at < PROBE_STEPS => self.choice.other(),
            (true, Phase::Probe { .. } | Phase::Run { .. }) => self.choice,
        };
        (way, timed)
    }

    /// Records a timed step of `size` samples that took `seconds`, and moves on.
    fn record(&mut self, size: usize, seconds: f64) {
        self.size = Some(size);
        self.phase = match self.phase {
            Phase::Warmup => Phase::Probe { at: 0 },
            Phase::Probe { at } if at < PROBE_STEPS => {
                let block = &mut self.probe[self.choice.other() as usize];
                block[at] = seconds;
                if at == 1 && self.reference > 0.0 && seconds > CLEAR_MARGIN * self.reference {
                    // Clearly slower: no need to time the rest of the block.
                    block[at..].fill(seconds);
                    Phase::Probe { at: PROBE_STEPS }
                } else {
                    Phase::Probe { at: at + 1 }
                }
            }
            Phase::Probe { at } => {
                self.probe[self.choice as usize][at - PROBE_STEPS] = seconds;
                if at + 1 < 2 * PROBE_STEPS {
                    Phase::Probe { at: at + 1 }
                } else {
                    self.decide()
                }
            }
            Phase::Run { left } => {
                let drifted = seconds > self.reference * DRIFT || seconds * DRIFT < self.reference;
                self.drifted = if drifted { self.drifted + 1 } else { 0 };
                if self.drifted >= DRIFT_STEPS {
                    self.run = FIRST_RUN;
                    Phase::Probe { at: 0 }
                } else if left > 1 {
                    Phase::Run { left: left - 1 }
                } else {
                    Phase::Probe { at: 0 }
                }
            }
        };
    }

    /// Chooses the faster way by the medians of the probe's counted steps (keeping the current
    /// one unless the other is faster by [`SWITCH_MARGIN`]); starts its run.
    fn decide(&mut self) -> Phase {
        let alone = median_of_counted(&mut self.probe[Way::Alone as usize]);
        let team = median_of_counted(&mut self.probe[Way::Team as usize]);
        let [current, other] = match self.choice {
            Way::Team => [team, alone],
            Way::Alone => [alone, team],
        };
        let choice = if other * SWITCH_MARGIN < current {
            self.choice.other()
        } else {
            self.choice
        };
        self.run = if choice == Way::Team && alone >= CLEAR_MARGIN * team {
            LONGEST_RUN
        } else if choice == self.choice {
            (self.run * 2).min(LONGEST_RUN)
        } else {
            FIRST_RUN
        };
        self.choice = choice;
        self.reference = if choice == Way::Team { team } else { alone };
        self.drifted = 0;
        Phase::Run { left: self.run }
    }
}

/// The median of a probe block's counted steps (all but the first).
fn median_of_counted(block: &mut [f64; PROBE_STEPS]) -> f64 {
    let counted = &mut block[1..];
    counted.sort_by(f64::total_cmp);
    counted[counted.len() / 2]
}

/// One step under a [`ThreadGovernor`]: the kernels called on this thread run the chosen way
/// until it is finished or dropped.
#[derive(Debug)]
#[must_use = "the step runs the chosen way only while its guard lives"]
pub struct GovernedStep<'a> {
    governor: &'a mut ThreadGovernor,
    /// The samples of a timed step.
    size: Option<usize>,
    /// The calling thread's setting before the step.
    previous: bool,
    started: Instant,
}

impl GovernedStep<'_> {
    /// Ends the step and records how long it took.
    pub fn finish(self) {
        let seconds = self.started.elapsed().as_secs_f64();
        if let Some(size) = self.size {
            self.governor.record(size, seconds);
        }
    }
}

impl Drop for GovernedStep<'_> {
    fn drop(&mut self) {
        set_alone(self.previous);
    }
}

#[cfg(feature = "threads")]
use super::packed::pool::{rest, set_alone};

#[cfg(not(feature = "threads"))]
fn set_alone(_: bool) -> bool {
    false
}

#[cfg(not(feature = "threads"))]
fn rest() {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `steps` steps of `size` samples through the governor's plan, each taking
    /// `seconds(way, step)`; returns the ways they ran.
    fn drive(
        g: &mut ThreadGovernor,
        steps: usize,
        size: usize,
        seconds: impl Fn(Way, usize) -> f64,
    ) -> Vec<Way> {
        (0..steps)
            .map(|i| {
                let (way, timed) = g.plan(true, size);
                if timed {
                    g.record(size, seconds(way, i));
                }
                way
            })
            .collect()
    }

    /// Steps that take `team` seconds as a team and `alone` seconds alone.
    fn fixed(team: f64, alone: f64) -> impl Fn(Way, usize) -> f64 {
        move |w, _| match w {
            Way::Team => team,
            Way::Alone => alone,
        }
    }

    fn alone_count(ways: &[Way]) -> usize {
        ways.iter().filter(|&&w| w == Way::Alone).count()
    }

    #[test]
    fn warms_up_as_a_team_then_probes_alone_then_as_a_team() {
        let mut g = ThreadGovernor::new();
        let ways = drive(&mut g, 1 + 2 * PROBE_STEPS, 32, |_, _| 1e-3);
        assert_eq!(ways[0], Way::Team);
        assert!(ways[1..=PROBE_STEPS].iter().all(|&w| w == Way::Alone));
        assert!(ways[1 + PROBE_STEPS..].iter().all(|&w| w == Way::Team));
    }

    #[test]
    fn keeps_a_clearly_faster_team_timing_two_steps_alone_per_longest_run() {
        let mut g = ThreadGovernor::new();
        let ways = drive(&mut g, 10_000, 32, fixed(1.0e-3, 1.4e-3));
        // The first probe times 4 steps alone, the later ones stop after 2: runs of 512.
        assert!(ways[9..9 + LONGEST_RUN].iter().all(|&w| w == Way::Team));
        let probes = (10_000 - 9) / (LONGEST_RUN + 2 + PROBE_STEPS);
        assert_eq!(alone_count(&ways), PROBE_STEPS + 2 * probes);
    }

    #[test]
    fn keeps_a_slightly_faster_team_probing_ever_less_often() {
        let mut g = ThreadGovernor::new();
        let ways = drive(&mut g, 10_000, 32, fixed(1.0e-3, 1.1e-3));
        // Runs of 64, 128, 256, then 512 steps, each after a probe with 4 steps alone.
        assert!(ways[9..9 + 64].iter().all(|&w| w == Way::Team));
        let alone = alone_count(&ways);
        assert!(
            alone <= PROBE_STEPS * (10_000 / LONGEST_RUN + 4),
            "{alone} steps alone"
        );
        assert!(
            alone >= PROBE_STEPS * (10_000 / (LONGEST_RUN + 8)),
            "{alone} steps alone"
        );
    }

    #[test]
    fn goes_alone_while_the_team_is_slower_and_back_when_it_recovers() {
        let mut g = ThreadGovernor::new();
        // Two threads collapse to 2.5 times the time of one for the first 3,000 steps.
        let ways = drive(&mut g, 6_000, 128, |w, i| match (w, i < 3_000) {
            (Way::Team, true) => 2.5e-3,
            (Way::Team, false) => 0.7e-3,
            (Way::Alone, _) => 1.0e-3,
        });
        let during = alone_count(&ways[..3_000]);
        assert!(
            during >= 3_000 - 1 - 4 * (3_000 / 32 + 1),
            "{during} of 3000 alone"
        );
        // Back to the team within one longest run (and its probe) after the recovery.
        let settled = 3_000 + LONGEST_RUN + 2 * PROBE_STEPS;
        let after = alone_count(&ways[settled..]);
        assert!(
            after <= 4 * ((6_000 - settled) / 32 + 1),
            "{after} alone after recovery"
        );
        assert_eq!(ways[5_990..], [Way::Team; 10]);
    }

    #[test]
    fn a_drift_in_the_middle_of_a_run_starts_a_probe() {
        let mut g = ThreadGovernor::new();
        drive(&mut g, 3_000, 64, fixed(1.0e-3, 1.5e-3));
        assert!(matches!(g.phase, Phase::Run { left } if left > DRIFT_STEPS + 1));
        // The team suddenly takes three times as long: within DRIFT_STEPS steps a probe starts.
        drive(&mut g, DRIFT_STEPS, 64, fixed(3.0e-3, 1.5e-3));
        assert!(matches!(g.phase, Phase::Probe { at: 0 }), "{:?}", g.phase);
        let ways = drive(&mut g, 2 * PROBE_STEPS + 1, 64, fixed(3.0e-3, 1.5e-3));
        assert_eq!(*ways.last().unwrap(), Way::Alone);
    }

    #[test]
    fn steps_of_another_size_run_the_chosen_way_untimed() {
        let mut g = ThreadGovernor::new();
        drive(&mut g, 1 + 2 * PROBE_STEPS, 100, fixed(2.0e-3, 1.0e-3));
        assert_eq!(g.choice, Way::Alone);
        let before = g.phase;
        // The last, partial batch of an epoch.
        assert_eq!(g.plan(true, 40), (Way::Alone, false));
        assert!(
            matches!((before, g.phase), (Phase::Run { left: a }, Phase::Run { left: b }) if a == b)
        );
        // Ungoverned (one thread): always the team, untimed.
        assert_eq!(g.plan(false, 100), (Way::Team, false));
    }

    #[test]
    fn a_small_difference_does_not_switch() {
        let mut g = ThreadGovernor::new();
        // Alone 3 % faster: within the margin, the team stays.
        let ways = drive(&mut g, 2_000, 32, fixed(1.0e-3, 0.97e-3));
        assert!(alone_count(&ways[9..]) < 100);
        assert_eq!(g.choice, Way::Team);
        // 10 % faster: it switches.
        drive(&mut g, 2_000, 32, fixed(1.0e-3, 0.9e-3));
        assert_eq!(g.choice, Way::Alone);
    }

    #[test]
    fn an_outlier_in_a_probe_does_not_decide_it() {
        let mut g = ThreadGovernor::new();
        // One team step of the probe is interrupted (10 ms); the median ignores it.
        drive(&mut g, 1 + 2 * PROBE_STEPS, 32, |w, i| match w {
            Way::Team if i == 1 + PROBE_STEPS + 2 => 10e-3,
            Way::Team => 1.0e-3,
            Way::Alone => 1.3e-3,
        });
        assert_eq!(g.choice, Way::Team);
    }
}
