//! Whether a thread about to wait should spin first, and for how long.
//!
//! Parking a thread (a futex wait) and waking it cost a few microseconds on
//! each side: more than a whole round trip when a caller sends its next
//! request right after a reply. Spinning saves that, but only pays when
//!
//! 1. what we wait for comes soon: each waiting thread keeps a
//!    [`SpinBudget`], the recent gaps between starting to wait and the
//!    arrival of work (whether it was found spinning or after parking), and
//!    spins for about twice the typical gap, at most [`MAX_SPIN`], or not at
//!    all when recent gaps were longer;
//! 2. the thread that will produce it has a core of its own: otherwise the
//!    spinner delays the very thread it waits on and burns a core the
//!    machine needs. [`cores_free`] samples the kernel's CPU pressure (the
//!    time runnable threads waited for a core) every few milliseconds;
//!    after a sample with pressure, nobody spins for [`QUIET_FOR`] (our own
//!    spinning can cause the pressure it then sees: spinning again at the
//!    first quiet sample would only bring it back).
//!
//! The caller's side follows the same decision: [`replies_soon`] tells the
//! Elixir side whether the workers spin, i.e. whether a reply is likely to
//! come within microseconds on a core of its own; only then does a caller
//! yield a few times before it waits in `receive` (a scheduler that falls
//! asleep and is woken again costs more than such a round trip).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Longest spin: past this, parking costs less than the CPU spinning burns.
pub(super) const MAX_SPIN: Duration = Duration::from_micros(50);

/// Recent gaps between starting to wait and work arriving, and the spin
/// they justify. One per waiting place (a worker's idle wait, its callback
/// wait): the gaps differ.
#[derive(Debug)]
pub(super) struct SpinBudget {
    /// Exponentially weighted mean of recent gaps, in nanoseconds.
    typical_gap_ns: u64,
}

impl Default for SpinBudget {
    /// Starts willing to spin: the first requests show whether it pays.
    fn default() -> Self {
        SpinBudget {
            typical_gap_ns: 5_000,
        }
    }
}

/// What a waiting thread does before parking, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Spin {
    /// Spin this long.
    For(Duration),
    /// Not at all: recent arrivals came later than spinning pays for.
    SlowArrivals,
    /// Not at all: no core is free (see [`cores_free`]).
    NoFreeCore,
}

impl Spin {
    pub(super) fn duration(self) -> Duration {
        match self {
            Spin::For(spin) => spin,
            Spin::SlowArrivals | Spin::NoFreeCore => Duration::ZERO,
        }
    }
}

impl SpinBudget {
    /// How long to spin before parking now: twice the typical gap (so most
    /// arrivals near it are caught), nothing when that exceeds [`MAX_SPIN`]
    /// or when no core is free.
    pub(super) fn spin_for(&self) -> Duration {
        self.decide().duration()
    }

    /// [`Self::spin_for`] with the reason when it is zero.
    pub(super) fn decide(&self) -> Spin {
        let wanted = Duration::from_nanos(2 * self.typical_gap_ns + 1_000);
        if wanted > MAX_SPIN {
            Spin::SlowArrivals
        } else if !cores_free() {
            Spin::NoFreeCore
        } else {
            Spin::For(wanted)
        }
    }

    /// [`Self::decide`], also published as [`replies_soon`]: for a
    /// worker's wait for requests.
    pub(super) fn decide_and_publish(&self) -> Spin {
        let spin = self.decide();
        REPLIES_SOON.store(matches!(spin, Spin::For(_)), Ordering::Relaxed);
        spin
    }

    /// Records how long after the wait began the awaited thing arrived.
    /// Gaps are capped so one long idle spell weighs like a few misses and
    /// a short run of quick arrivals brings spinning back.
    pub(super) fn record(&mut self, gap: Duration) {
        let gap = (gap.as_nanos() as u64).min(4 * MAX_SPIN.as_nanos() as u64);
        // Weight 1/4: adapts within a handful of requests.
        self.typical_gap_ns = self.typical_gap_ns - self.typical_gap_ns / 4 + gap / 4;
    }
}

/// Whether the last worker to wait for a request decided to spin.
static REPLIES_SOON: AtomicBool = AtomicBool::new(false);

/// Whether a caller may expect its reply within microseconds, on a core of
/// its own: the workers spin (requests come quickly, no CPU pressure).
pub(crate) fn replies_soon() -> bool {
    REPLIES_SOON.load(Ordering::Relaxed)
}

/// How often the CPU pressure is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// Share of the sample window in which some runnable thread waited for a
/// core, above which the machine counts as busy.
///
/// Not near zero: the kernel also counts the moment between waking a parked
/// thread and its running as waiting for a core. One caller pinging a
/// parked worker on an idle 2-core machine showed 2.2-3.5% (so a 1%
/// threshold kept every wait parked, the slow case, forever), while two
/// other processes keeping both cores busy showed 80%, and three 50%
/// without us.
const BUSY_SHARE: f64 = 0.15;

/// How long after a busy sample the machine must stay quiet before
/// spinning resumes.
const QUIET_FOR: Duration = Duration::from_millis(250);

struct Sampler {
    epoch: Instant,
    /// Nanoseconds since `epoch` of the last sample (0: none yet).
    sampled_at: AtomicU64,
    /// The kernel's cumulative CPU stall time at that sample, microseconds.
    stall_us: AtomicU64,
    /// Nanoseconds since `epoch` until which nobody spins (0: never busy).
    busy_until: AtomicU64,
    /// The kernel reports CPU pressure (Linux with PSI).
    available: bool,
}

fn sampler() -> &'static Sampler {
    static SAMPLER: OnceLock<Sampler> = OnceLock::new();
    SAMPLER.get_or_init(|| {
        let stall = read_cpu_stall_us();
        Sampler {
            epoch: Instant::now(),
            sampled_at: AtomicU64::new(0),
            stall_us: AtomicU64::new(stall.unwrap_or(0)),
            busy_until: AtomicU64::new(0),
            available: stall.is_some(),
        }
    })
}

/// Whether runnable threads leave a core free, as of the last sample (taken
/// by whichever caller finds it older than [`SAMPLE_EVERY`]). Without a
/// pressure figure from the kernel, only the number of cores decides: one
/// core is never free for a spinner.
pub(super) fn cores_free() -> bool {
    let sampler = sampler();
    if !sampler.available {
        return available_cores() > 1;
    }
    let now = sampler.epoch.elapsed().as_nanos() as u64;
    let last = sampler.sampled_at.load(Ordering::Relaxed);
    let window = now.saturating_sub(last);
    if window >= SAMPLE_EVERY.as_nanos() as u64
        && sampler
            .sampled_at
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    {
        if let Some(stall) = read_cpu_stall_us() {
            let before = sampler.stall_us.swap(stall, Ordering::Relaxed);
            let stalled_ns = stall.saturating_sub(before) * 1_000;
            let busy =
                available_cores() <= 1 || stalled_ns as f64 > BUSY_SHARE * window.max(1) as f64;
            if busy {
                let until = now + QUIET_FOR.as_nanos() as u64;
                sampler.busy_until.store(until, Ordering::Relaxed);
            }
        }
    }
    now >= sampler.busy_until.load(Ordering::Relaxed)
}

/// Cores this process may run on (its affinity mask, so `taskset -c 0`
/// counts as one).
fn available_cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The "some" total of `/proc/pressure/cpu`: microseconds in which at least
/// one runnable thread waited for a core, since boot.
fn read_cpu_stall_us() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/pressure/cpu").ok()?;
    parse_stall_us(&text)
}

fn parse_stall_us(text: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with("some "))?;
    let total = line
        .split_whitespace()
        .find_map(|f| f.strip_prefix("total="))?;
    total.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_arrivals_keep_spinning_short_and_slow_ones_stop_it() {
        let mut budget = SpinBudget::default();
        for _ in 0..20 {
            budget.record(Duration::from_micros(3));
        }
        let quick = Duration::from_nanos(2 * budget.typical_gap_ns + 1_000);
        assert!(quick <= Duration::from_micros(10), "{quick:?}");

        for _ in 0..5 {
            budget.record(Duration::from_millis(5));
        }
        assert_eq!(budget.spin_for(), Duration::ZERO);
        assert_eq!(budget.decide(), Spin::SlowArrivals);

        // A few quick arrivals again bring spinning back.
        for _ in 0..12 {
            budget.record(Duration::from_micros(2));
        }
        assert!(2 * budget.typical_gap_ns + 1_000 < MAX_SPIN.as_nanos() as u64);
    }

    #[test]
    fn reads_the_kernels_pressure_line() {
        let text = "some avg10=1.00 avg60=2.00 avg300=3.00 total=123456\n\
                    full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        assert_eq!(parse_stall_us(text), Some(123_456));
        assert_eq!(parse_stall_us("nonsense"), None);
    }
}
