//! Whether a thread about to wait should spin first, and for how long.
//!
//! Parking a thread (a futex wait) and waking it cost a few microseconds on
//! each side: more than a whole round trip when a caller sends its next
//! request right after a reply. Spinning saves that, but only pays when
//!
//! 1. what we wait for comes soon: each waiting thread keeps a
//!    [`SpinBudget`], the recent gaps between starting to wait and the
//!    arrival of work (whether it was found spinning or after parking), and
//!    spins while twice the typical gap is at most [`MAX_SPIN`], that long
//!    but at least [`PAUSE_SPIN`] (the other side's core pauses now and
//!    then), or not at all when recent gaps were longer (a spin that misses
//!    counts as a long gap: spinning goes on only while it catches what it
//!    waits for);
//! 2. no other work wants the core: otherwise the spinner takes a core the
//!    machine needs, and may delay the very thread it waits on.
//!    [`cores_free`] asks the kernel how long *this thread* waited for a
//!    core when it wanted one ([`core_signal`]), and after two of its last
//!    four samples showed other work, nobody on this thread spins for a
//!    while that grows while the machine stays busy.
//!
//! The signal is per thread on purpose. The machine-wide CPU pressure
//! (`/proc/pressure/cpu`), used before, counts the moment between waking a
//! parked thread and its running as waiting for a core; on a virtual
//! machine that moment is long (the vCPU itself must be woken), so a
//! caller pinging a parked thread kept the pressure above any sensible
//! threshold on an idle machine and nothing ever spun. A thread's own run
//! delay tells the two apart: a wake-up waits microseconds, a thread that
//! other work keeps off its core waits a time slice (milliseconds).
//!
//! A wait that parks can make the next arrival late by itself, so gaps
//! seen while parked can say "slow" of arrivals that would come quickly if
//! both sides spun. On a virtual machine whose idle vCPU takes 40-70 us to
//! wake, a sequential caller shows it: while the worker parks, callers do
//! not poll ([`replies_soon`] is false) and wait in `receive`, their
//! scheduler falls asleep, and the next request comes only after that
//! scheduler's wake-up, so every gap is 60 us or more and the worker never
//! spins again (2.7 us a call while both spin, 145 us once they park). A
//! budget made [`SpinBudget::with_probes`] therefore spins now and then
//! although recent gaps were long (a probe, see [`MIN_PROBE_SHIFT`]): a
//! probe that catches its arrival lets the next waits spin as long as a
//! spin may (they show how soon arrivals come while both sides spin), and
//! probes come ever more rarely until a spin catches, so slow arrivals
//! cost a bounded trickle of spinning. The same bias hits the one spin
//! that ends a backoff (after misses): the request it waits for was sent
//! by a caller that did not poll. So the wait before a probe or before a
//! backoff's end tells callers to poll ([`SpinBudget::announces`]), and
//! the spin after it sees how soon a polling caller sends (under load,
//! 20,000 sequential pings: p99 24-157 us with it, 23-318 us without).
//!
//! The caller's side follows the same decision: [`replies_soon`] tells the
//! Elixir side whether the workers spin, i.e. whether a reply is likely to
//! come within microseconds on a core of its own; only then does a caller
//! yield a few times before it waits in `receive` (a scheduler that falls
//! asleep and is woken again costs more than such a round trip).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub(crate) use core_signal::cores_free;

/// Spinning pays while twice the typical gap is within this: for arrivals
/// later than that, parking costs less than the CPU spinning burns. (A
/// spin, once it pays, lasts at least [`PAUSE_SPIN`].)
pub(crate) const MAX_SPIN: Duration = Duration::from_micros(50);

/// Shortest spin, once recent arrivals justify spinning at all: it outlasts
/// most pauses of the other side's core. Cores pause now and then on a
/// virtual machine: a BEAM process that only reads the clock in a loop saw
/// about 430 pauses a second longer than 20 us on the development VM
/// (median 56 us, 90th percentile 107-116 us), and a sequential caller's
/// next request came that much later. A spin of twice the typical gap (3-4
/// us) missed every one of them and parked; the caller, no longer answered
/// within its polls, waited in `receive` and fell asleep, and its later
/// requests found the worker parked too, a chain of wake-ups (traced: 3-6
/// parks, 80-250 us in all on average) for each pause. A longer spin costs
/// no more when the arrival comes, since a spin ends then, and at most
/// this much more when it does not (the end of a run of calls).
///
/// Runs of 300,000 sequential calls on the development VM, this floor
/// switched off and on in one build (a throwaway switch): 4.89 us a call
/// off, 4.09 on (medians of 11 alternated runs); another hour,
/// `bench/sequential.exs`, 6.9 off and 6.5 on (12 runs each). The worker
/// then parked after a spin or for slow arrivals hardly at all, but parked
/// more often for want of a free core: spinning longer, it is preempted
/// more by the VM's own threads when caller and worker fill both cores,
/// and its samples read that as other work (the free-core signal cannot
/// tell the VM's threads from other processes'). Since a verdict takes two
/// of four samples ([`core_signal::CONFIRMING_SAMPLES`]), such passing
/// samples stop nothing.
///
/// Every budget's spin has this floor: a worker's wait for a callback's
/// answer and the isolated rings' readers too (a polling caller caps its
/// own, [`SpinBudget::spins_for`]). Only the wait for requests was
/// measured.
pub(crate) const PAUSE_SPIN: Duration = Duration::from_micros(100);

/// Recent gaps between starting to wait and work arriving, and the spin
/// they justify. One per waiting place (a worker's idle wait, its callback
/// wait): the gaps differ.
#[derive(Debug)]
pub(crate) struct SpinBudget {
    /// Exponentially weighted mean of recent gaps, in nanoseconds.
    typical_gap_ns: u64,
    /// The spin the last decision allowed, in nanoseconds (0: none).
    spun_ns: u64,
    /// Spins in a row that ended without what they waited for.
    misses: u32,
    /// Waits left that do not spin, after those misses.
    skip: u32,
    /// Probes while arrivals are slow ([`Self::with_probes`]): the next one
    /// comes after `2^probe_shift` slow waits; None for a budget that
    /// never probes.
    probe_shift: Option<u32>,
    /// Waits that did not spin for slow arrivals since the last probe.
    slow_waits: u32,
    /// The last decision was a probe.
    probing: bool,
    /// The last decision did not spin, but the next one will (see
    /// [`Self::announces`]).
    announced: bool,
}

/// The typical gap a new budget assumes: willing to spin.
const START_GAP_NS: u64 = 5_000;

impl Default for SpinBudget {
    /// Starts willing to spin: the first requests show whether it pays.
    /// Never probes once arrivals came slowly (see [`Self::with_probes`]).
    fn default() -> Self {
        SpinBudget {
            typical_gap_ns: START_GAP_NS,
            spun_ns: 0,
            misses: 0,
            skip: 0,
            probe_shift: None,
            slow_waits: 0,
            probing: false,
            announced: false,
        }
    }
}

/// The typical gap after a probe that caught: the one that allows a spin
/// of [`MAX_SPIN`].
const AFTER_PROBE_GAP_NS: u64 = (MAX_SPIN.as_nanos() as u64 - 1_000) / 2;

/// A budget made [`SpinBudget::with_probes`] probes first after
/// `2^MIN_PROBE_SHIFT` waits that did not spin for slow arrivals; each
/// probe doubles the interval to the next, up to `2^MAX_PROBE_SHIFT`
/// waits, and a spin that catches (not a probe) brings it back to the
/// shortest. So a sequential caller whose worker parked after a hiccup is
/// fast again within a few calls, while arrivals that really are slow pay
/// one probe (at most [`MAX_PROBE`]) per 1,024 waits.
pub(crate) const MIN_PROBE_SHIFT: u32 = 2;
pub(crate) const MAX_PROBE_SHIFT: u32 = 10;

/// Longest probe: twice the typical gap, up to the longest gap a budget
/// records. It must outlast the other side's wake-up (40-70 us, at times
/// more, on a virtual machine whose idle vCPU must be woken), since the
/// arrival a probe waits for comes after one.
pub(crate) const MAX_PROBE: Duration = Duration::from_micros(4 * MAX_SPIN.as_micros() as u64);

/// After `n` spins in a row that missed, the next `2^n - 1` waits do not
/// spin (at most `2^MAX_BACKOFF_SHIFT - 1`): a spin can delay the very
/// thread it waits for (it holds the core that thread would run on, on a
/// busy machine), and then that thread's answers come quickly again as
/// soon as nobody spins, which alone would bring spinning straight back.
const MAX_BACKOFF_SHIFT: u32 = 8;

/// Longest spin with no free core, for arrivals that come within a few
/// microseconds anyway (requests from many callers at once): parking then
/// costs the thread that submits next a wake-up (a futex wake, measured at
/// about 8 us of its CPU on a 2-vCPU VM whose other vCPU idles), more than
/// such a spin burns.
pub(crate) const BRIEF_SPIN: Duration = Duration::from_micros(8);

/// What a waiting thread does before parking, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spin {
    /// Spin this long.
    For(Duration),
    /// Not at all: recent arrivals came later than spinning pays for, or
    /// recent spins missed them.
    SlowArrivals,
    /// Not at all: no core is free (see [`cores_free`]).
    NoFreeCore,
}

impl Spin {
    pub(crate) fn duration(self) -> Duration {
        match self {
            Spin::For(spin) => spin,
            Spin::SlowArrivals | Spin::NoFreeCore => Duration::ZERO,
        }
    }
}

impl SpinBudget {
    /// A budget that, when recent arrivals came too slowly for spinning,
    /// still spins now and then (a probe, see [`MIN_PROBE_SHIFT`]): for a
    /// wait whose own parking slows what it waits for (the other side then
    /// stops polling and its thread falls asleep), which would otherwise
    /// never spin again. A probe, too, spins only when a core is free.
    pub(crate) fn with_probes() -> Self {
        SpinBudget {
            probe_shift: Some(MIN_PROBE_SHIFT),
            ..SpinBudget::default()
        }
    }

    /// How long to spin before parking now: twice the typical gap (so most
    /// arrivals near it are caught), at least [`PAUSE_SPIN`]; nothing when
    /// twice the typical gap exceeds [`MAX_SPIN`] (but for a probe), while
    /// recent spins missed, or when no core is free.
    pub(crate) fn spin_for(&mut self) -> Duration {
        self.decide().duration()
    }

    /// [`Self::spin_for`] with the reason when it is zero.
    pub(crate) fn decide(&mut self) -> Spin {
        self.decide_with(cores_free)
    }

    /// [`Self::decide`] with the free-core signal given (asked only when
    /// nothing else rules spinning out).
    pub(crate) fn decide_with(&mut self, cores_free: impl FnOnce() -> bool) -> Spin {
        self.spun_ns = 0;
        self.probing = false;
        self.announced = false;
        let wanted = self.wanted_spin();
        if wanted > MAX_SPIN {
            if !self.probe_due() {
                if self.probe_next() {
                    self.announced = cores_free();
                }
                Spin::SlowArrivals
            } else if !cores_free() {
                // Still due: the first wait with a free core probes.
                Spin::NoFreeCore
            } else {
                let probe = wanted.min(MAX_PROBE);
                self.slow_waits = 0;
                self.probe_shift = self.probe_shift.map(|s| (s + 1).min(MAX_PROBE_SHIFT));
                self.probing = true;
                self.spun_ns = probe.as_nanos() as u64;
                Spin::For(probe)
            }
        } else if self.skip > 0 {
            self.skip -= 1;
            if self.skip == 0 && self.probe_shift.is_some() {
                self.announced = cores_free();
            }
            Spin::SlowArrivals
        } else if !cores_free() {
            Spin::NoFreeCore
        } else {
            let spin = wanted.max(PAUSE_SPIN);
            self.spun_ns = spin.as_nanos() as u64;
            Spin::For(spin)
        }
    }

    /// The spin the typical gap asks for: twice it (so most arrivals near
    /// it are caught), plus a microsecond.
    fn wanted_spin(&self) -> Duration {
        Duration::from_nanos(2 * self.typical_gap_ns + 1_000)
    }

    /// The spin still worth it when no core is free ([`Spin::NoFreeCore`]):
    /// twice the typical gap when that is within [`BRIEF_SPIN`], else none.
    pub(crate) fn brief_spin(&self) -> Duration {
        let wanted = self.wanted_spin();
        if wanted <= BRIEF_SPIN && self.skip == 0 {
            wanted
        } else {
            Duration::ZERO
        }
    }

    /// Whether the next wait probes (after this one, which did not).
    fn probe_next(&self) -> bool {
        self.probe_shift
            .is_some_and(|shift| self.slow_waits.saturating_add(1) >= 1 << shift)
    }

    /// Whether callers should poll for the reply to the request this wait
    /// receives, although it does not spin: the next wait will (a probe,
    /// or the end of a backoff), and it should see how soon a caller that
    /// polled sends its next request. A caller that waited in `receive`
    /// instead sends it only after its scheduler woke, which alone made
    /// such spins miss. Only budgets made [`Self::with_probes`], and only
    /// with a free core.
    pub(crate) fn announces(&self) -> bool {
        self.announced
    }

    /// Counts a wait that arrivals were too slow to spin for: whether a
    /// probe is due now.
    fn probe_due(&mut self) -> bool {
        let Some(shift) = self.probe_shift else {
            return false;
        };
        self.slow_waits = self.slow_waits.saturating_add(1);
        self.slow_waits >= 1 << shift
    }

    /// Whether the last decision was a probe: a [`Spin::For`] although
    /// recent arrivals came too slowly (see [`Self::with_probes`]).
    pub(crate) fn probing(&self) -> bool {
        self.probing
    }

    /// After a [`Spin::For`] decision, the waiter spins `spin` instead (a
    /// caller that polls up to its own cap): a later arrival counts as a
    /// miss only past what it really spun.
    pub(crate) fn spins_for(&mut self, spin: Duration) {
        if self.spun_ns != 0 {
            self.spun_ns = spin.as_nanos() as u64;
        }
    }

    /// [`Self::decide`], also published as [`replies_soon`]: for a
    /// worker's wait for requests.
    pub(crate) fn decide_and_publish(&mut self) -> Spin {
        let spin = self.decide();
        let polls = callers_poll(spin, self.announces(), core_signal::several_cores_allowed);
        REPLIES_SOON.store(polls, Ordering::Relaxed);
        spin
    }

    /// Records how long after the wait began the awaited thing arrived
    /// (after the last decision), judging a spin caught when the gap was
    /// within it. Gaps are capped so one long idle spell weighs like a few
    /// misses and a short run of quick arrivals brings spinning back.
    pub(crate) fn record(&mut self, gap: Duration) {
        let caught = gap.as_nanos() as u64 <= self.spun_ns;
        self.record_wait(gap, caught);
    }

    /// [`Self::record`] for a waiter that knows whether its spin caught
    /// the arrival (it did not park): a worker waiting for requests. The
    /// gap alone misjudges a spin that caught its request a little past
    /// the time it was allowed (the clock is read only every 64 polls,
    /// [`spin_until`]); counted as a miss, such a catch made the next wait
    /// park while its caller polled, a wake-up that could set off several
    /// more parks. Traced on the development VM: 0.4-1 sequential calls in
    /// 1,000, each a spin of about 4 us that caught at 4.5-6.5 us.
    pub(crate) fn record_wait(&mut self, gap: Duration, caught: bool) {
        let gap = gap.as_nanos() as u64;
        if self.spun_ns != 0 {
            // Before the cap: a probe spins as long as the longest gap.
            let probed = std::mem::take(&mut self.probing);
            self.spun_ns = 0;
            match (probed, caught) {
                (true, true) => {
                    // The long gaps came from parking, not from the other
                    // side: the next waits spin as long as a spin may, and
                    // show how soon arrivals come while both sides do (the
                    // typical gap then falls to theirs; a spin that ends
                    // on an arrival costs no more for having been allowed
                    // longer).
                    self.typical_gap_ns = AFTER_PROBE_GAP_NS;
                    self.misses = 0;
                    self.skip = 0;
                    return;
                }
                // A missed probe is one more slow gap; probes back off by
                // themselves.
                (true, false) => {}
                (false, true) => {
                    self.misses = 0;
                    // Probes come often again only after an arrival quick
                    // enough to spin for: a spin lasts at least
                    // [`PAUSE_SPIN`], and one that caught a caller who
                    // thinks longer (after a probe) shows nothing new.
                    if gap <= MAX_SPIN.as_nanos() as u64 / 2 {
                        self.probe_shift = self.probe_shift.map(|_| MIN_PROBE_SHIFT);
                    }
                }
                (false, false) => {
                    self.misses = (self.misses + 1).min(MAX_BACKOFF_SHIFT);
                    self.skip = (1 << self.misses) - 1;
                }
            }
        }
        let gap = gap.min(4 * MAX_SPIN.as_nanos() as u64);
        // Weight 1/4: adapts within a handful of requests.
        self.typical_gap_ns = self.typical_gap_ns - self.typical_gap_ns / 4 + gap / 4;
    }
}

/// Whether callers should poll, as the last worker to wait for a request
/// decided ([`callers_poll`]).
static REPLIES_SOON: AtomicBool = AtomicBool::new(false);

/// Whether callers should poll for the replies to the requests a worker's
/// wait, decided `spin`, receives:
///
/// - it spins (requests come quickly and a core is free), or announces a
///   spin ([`SpinBudget::announces`]);
/// - or no core is free and the process may run on several: the cores are
///   busy with other work, so the worker's wake-up is quick (its vCPU is
///   running, not halted), and a caller that polls keeps its own core
///   while the worker preempts other work on another. A caller that waits
///   in `receive` instead lets its scheduler fall asleep, and the reply
///   must then wake it too, through the same busy cores. On a 2-vCPU VM
///   with both cores kept busy by other processes, sequential calls took
///   10-25 us in 24 of 24 runs of 30,000 with callers forced to poll,
///   against 12-119 us when they polled only while the worker spun (see
///   the threading guide). On one core a poll would hold the core the
///   worker needs: no polling there.
///
/// `several_cores` is asked only for that case (every worker wait comes
/// here). A caller polls a bounded number of times, and only when no other
/// process waits to run on its scheduler (`ErlangPython.Runtime.request/2`).
pub(crate) fn callers_poll(
    spin: Spin,
    announces: bool,
    several_cores: impl FnOnce() -> bool,
) -> bool {
    match spin {
        Spin::For(_) => true,
        Spin::NoFreeCore => several_cores(),
        Spin::SlowArrivals => announces,
    }
}

/// Whether a caller may expect its reply within microseconds, on a core of
/// its own ([`callers_poll`], for the last wait of a worker).
pub(crate) fn replies_soon() -> bool {
    REPLIES_SOON.load(Ordering::Relaxed)
}

/// Polls `ready` until it gives a value, or until `limit` has passed since
/// `began` (None; a zero `limit` polls once). Every spin of the crate goes through here: the clock is
/// read every 64 polls only (reading it costs more than a poll), and the
/// core is told it spins (`spin_loop`), so a sibling hyperthread runs on.
pub(crate) fn spin_until<T>(
    began: Instant,
    limit: Duration,
    ready: impl FnMut() -> Option<T>,
) -> Option<T> {
    spin_until_or(began, limit, ready, |_| false)
}

/// [`spin_until`], also giving up as soon as `give_up(elapsed)` says so,
/// asked whenever the clock is read (every 64 polls): for a spin with
/// limits of its own besides `limit`, which then costs no clock reads of
/// its own.
pub(crate) fn spin_until_or<T>(
    began: Instant,
    limit: Duration,
    mut ready: impl FnMut() -> Option<T>,
    mut give_up: impl FnMut(Duration) -> bool,
) -> Option<T> {
    let mut polls: u32 = 0;
    loop {
        if let Some(value) = ready() {
            return Some(value);
        }
        if limit.is_zero() {
            return None;
        }
        polls = polls.wrapping_add(1);
        if polls.is_multiple_of(64) {
            let elapsed = began.elapsed();
            if elapsed >= limit || give_up(elapsed) {
                return None;
            }
        }
        std::hint::spin_loop();
    }
}

/// Cores this process may run on (its affinity mask, so `taskset -c 0`
/// counts as one).
fn available_cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

#[path = "core_signal.rs"]
pub(crate) mod core_signal;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_poll_while_the_worker_spins_or_the_cores_are_busy_but_not_on_one_core() {
        // The cores are asked about only when no core is free.
        let unasked = || -> bool { panic!("several_cores asked") };
        let spin = Spin::For(Duration::from_micros(5));
        assert!(callers_poll(spin, false, unasked));
        // Other work on every core: the caller keeps its own while the
        // worker takes another, but one core is the worker's to take.
        assert!(callers_poll(Spin::NoFreeCore, false, || true));
        assert!(!callers_poll(Spin::NoFreeCore, false, || false));
        // Slow arrivals: only before a probe or a backoff's end.
        assert!(!callers_poll(Spin::SlowArrivals, false, unasked));
        assert!(callers_poll(Spin::SlowArrivals, true, unasked));
    }

    #[test]
    fn quick_arrivals_keep_spinning_short_and_slow_ones_stop_it() {
        let mut budget = SpinBudget::default();
        for _ in 0..20 {
            budget.record(Duration::from_micros(3));
        }
        let quick = budget.wanted_spin();
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
        assert!(budget.wanted_spin() < MAX_SPIN);
    }

    /// Decides with a free core and records `gap`: whether it spun.
    fn wait(budget: &mut SpinBudget, gap: Duration) -> bool {
        let spun = matches!(budget.decide_with(|| true), Spin::For(_));
        budget.record(gap);
        spun
    }

    #[test]
    fn spins_that_miss_back_off_exponentially_and_a_catch_ends_it() {
        let mut budget = SpinBudget::default();
        // Quick arrivals: every wait spins.
        for _ in 0..10 {
            assert!(wait(&mut budget, Duration::from_micros(3)));
        }
        // On a busy machine a spin holds the core its producer needs: it
        // misses (the request comes after the spin, 120 us), and the waits
        // that park get quick answers (3 us) again. Without a backoff every
        // few waits would spin.
        let miss = PAUSE_SPIN + Duration::from_micros(20);
        let mut spun = Vec::new();
        for _ in 0..600 {
            let spins = matches!(budget.decide_with(|| true), Spin::For(_));
            budget.record(if spins {
                miss
            } else {
                Duration::from_micros(3)
            });
            spun.push(spins);
        }
        let spins: Vec<usize> = (0..600).filter(|&i| spun[i]).collect();
        let gaps: Vec<usize> = spins.windows(2).map(|w| w[1] - w[0]).collect();
        // Each backoff doubles; a missed gap's weight also keeps the next
        // two or three waits from spinning.
        for (i, &gap) in gaps.iter().take(6).enumerate() {
            let backoff = 1usize << (i + 1);
            assert!((backoff..=backoff + 3).contains(&gap), "{gaps:?}");
        }
        assert!(gaps.iter().all(|&gap| gap <= (1 << MAX_BACKOFF_SHIFT) + 3));
        assert!(spins.len() <= 12, "{} of 600 waits spun", spins.len());
        // A spin that catches resets the backoff.
        let mut budget = SpinBudget::default();
        for _ in 0..3 {
            let _ = budget.decide_with(|| true);
            budget.record(miss);
            for _ in 0..7 {
                let _ = budget.decide_with(|| true);
                budget.record(Duration::from_micros(3));
            }
        }
        while !wait(&mut budget, Duration::from_micros(3)) {}
        assert!(wait(&mut budget, Duration::from_micros(3)));
        assert!(wait(&mut budget, Duration::from_micros(3)));
    }

    /// A budget whose waits spun and caught quick arrivals, and the spin
    /// its next wait decides.
    fn spinning_budget() -> (SpinBudget, Duration) {
        let mut budget = SpinBudget::with_probes();
        for _ in 0..20 {
            assert!(wait(&mut budget, Duration::from_micros(1)));
        }
        match budget.decide_with(|| true) {
            Spin::For(spin) => (budget, spin),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_pause_of_the_other_side_is_spun_through() {
        // A sequential caller whose core the host takes away now and then
        // (60 us, about every 500 calls): every wait spins, and catches.
        let (mut budget, spin) = spinning_budget();
        assert_eq!(spin, PAUSE_SPIN);
        budget.record_wait(Duration::from_micros(1), true);
        for call in 1..5_000 {
            let gap = Duration::from_micros(if call % 500 == 0 { 60 } else { 1 });
            let Spin::For(spin) = budget.decide_with(|| true) else {
                panic!("wait {call} did not spin");
            };
            budget.record_wait(gap, gap <= spin);
        }
    }

    #[test]
    fn a_spin_that_caught_its_arrival_past_its_limit_is_no_miss() {
        // Caught 2 us after the spin's limit: the clock is read every 64
        // polls. Judged by the gap alone, a miss: a backoff on top of the
        // late gap's weight.
        let late = Duration::from_micros(2);
        let quick = Duration::from_micros(1);
        let (mut judged, spin) = spinning_budget();
        judged.record(spin + late);
        let spun: Vec<bool> = (0..3).map(|_| wait(&mut judged, quick)).collect();
        assert_eq!(spun, [false, false, true]);

        // Told it caught, only the late gap's weight: spinning comes back
        // a wait earlier, and no backoff is left to grow.
        let (mut told, spin) = spinning_budget();
        told.record_wait(spin + late, true);
        let spun: Vec<bool> = (0..2).map(|_| wait(&mut told, quick)).collect();
        assert_eq!(spun, [false, true]);
        assert_eq!((told.misses, told.skip), (0, 0));
        // A spin that missed, told so, still backs off.
        let _ = told.decide_with(|| true);
        told.record_wait(spin + late, false);
        assert_eq!((told.misses, told.skip), (1, 1));
    }

    #[test]
    fn no_free_core_means_no_spin_and_the_signal_is_asked_last() {
        let mut budget = SpinBudget::default();
        assert_eq!(budget.decide_with(|| false), Spin::NoFreeCore);
        for _ in 0..5 {
            budget.record(Duration::from_millis(5));
        }
        let asked = std::cell::Cell::new(false);
        let decision = budget.decide_with(|| {
            asked.set(true);
            true
        });
        assert_eq!(decision, Spin::SlowArrivals);
        assert!(!asked.get(), "slow arrivals need no sample of the kernel");
    }

    #[test]
    fn with_no_free_core_only_arrivals_within_microseconds_get_a_brief_spin() {
        let mut budget = SpinBudget::default();
        // A new budget's typical gap (5 us) is too long for a brief spin.
        assert_eq!(budget.decide_with(|| false), Spin::NoFreeCore);
        assert_eq!(budget.brief_spin(), Duration::ZERO);
        // Many callers: each request comes 2 us after the worker waits.
        for _ in 0..8 {
            assert_eq!(budget.decide_with(|| false), Spin::NoFreeCore);
            budget.record(Duration::from_micros(2));
        }
        let brief = budget.brief_spin();
        assert!(brief > Duration::from_micros(2), "{brief:?}");
        assert!(brief <= BRIEF_SPIN, "{brief:?}");
        // One arrival that a brief spin would have missed ends them.
        budget.record(Duration::from_micros(30));
        assert_eq!(budget.brief_spin(), Duration::ZERO);
        // Slow arrivals never get one, however long they last.
        for _ in 0..50 {
            budget.record(Duration::from_millis(1));
        }
        assert_eq!(budget.brief_spin(), Duration::ZERO);
    }

    /// A sequential caller on a machine whose idle cores take long to
    /// wake: it polls for its reply only when the worker spun as its
    /// request came (`replies_soon`), and then sends the next one 2 us
    /// after the reply; otherwise it waited in `receive`, its scheduler
    /// fell asleep, and the next request comes 65 us after the reply.
    /// Returns whether each of `waits` waits spun.
    fn sequential_caller(budget: &mut SpinBudget, waits: usize, polled: bool) -> Vec<bool> {
        ping_pong(budget, waits, polled, 2, 65)
    }

    /// Arrivals `awake` us after the wait began when the previous wait
    /// spun (the other side stayed awake), `asleep` us otherwise.
    fn ping_pong(
        budget: &mut SpinBudget,
        waits: usize,
        polled: bool,
        awake: u64,
        asleep: u64,
    ) -> Vec<bool> {
        let mut polled = polled;
        (0..waits)
            .map(|_| {
                let spins = matches!(budget.decide_with(|| true), Spin::For(_));
                budget.record(Duration::from_micros(if polled { awake } else { asleep }));
                polled = spins;
                spins
            })
            .collect()
    }

    #[test]
    fn gaps_lengthened_by_parking_do_not_stop_spinning_for_good() {
        // The lock-in, without probes: once the worker parked (a hiccup of
        // 5 ms), the caller stops polling, its gaps include its wake-up,
        // and nothing spins again.
        let mut locked = SpinBudget::default();
        assert!(sequential_caller(&mut locked, 20, true).iter().all(|&s| s));
        locked.record(Duration::from_millis(5));
        locked.record(Duration::from_millis(5));
        let spun = sequential_caller(&mut locked, 500, false);
        assert!(spun.iter().all(|&s| !s), "{spun:?}");

        // With probes: a probe outlasts the caller's wake-up, catches, and
        // both sides spin again within a few requests, for good.
        let mut budget = SpinBudget::with_probes();
        assert!(sequential_caller(&mut budget, 20, true).iter().all(|&s| s));
        budget.record(Duration::from_millis(5));
        budget.record(Duration::from_millis(5));
        let spun = sequential_caller(&mut budget, 500, false);
        let back = spun.iter().position(|&s| s).expect("a probe");
        assert!(back < (1 << MIN_PROBE_SHIFT), "{spun:?}");
        assert!(spun[back + 1..].iter().all(|&s| s), "{spun:?}");
    }

    #[test]
    fn after_a_caught_probe_spinning_holds_for_answers_slower_than_a_new_budget_expects() {
        // Arrivals 15 us after the wait began while the waiter spins (the
        // other side's thread stays awake), 90 us after it parked (that
        // thread fell asleep). A new budget's first spin (11 us) would
        // miss them; the spin after a caught probe is the longest.
        let mut budget = SpinBudget::with_probes();
        for _ in 0..5 {
            budget.record(Duration::from_micros(90));
        }
        let spun = ping_pong(&mut budget, 500, false, 15, 90);
        let back = spun.iter().position(|&s| s).expect("a probe");
        assert!(spun[back + 1..].iter().all(|&s| s), "{spun:?}");
        // Spins outlast a pause of the other side, longer than twice the
        // typical gap here.
        assert_eq!(budget.decide_with(|| true), Spin::For(PAUSE_SPIN));
    }

    #[test]
    fn slow_arrivals_still_stop_spinning_and_probes_grow_rarer() {
        // Requests 1 ms apart whatever the worker does: probes miss, and
        // come at most once per 2^MAX_PROBE_SHIFT waits once they backed off.
        let mut budget = SpinBudget::with_probes();
        let mut spins = Vec::new();
        for i in 0..8_192 {
            if let Spin::For(spin) = budget.decide_with(|| true) {
                spins.push((i, spin));
            }
            budget.record(Duration::from_millis(1));
        }
        // The first wait spins (a new budget); then one probe per shift
        // up to the longest interval, then one per 1,024 waits.
        let shifts = (MAX_PROBE_SHIFT - MIN_PROBE_SHIFT + 1) as usize;
        assert!(spins.len() <= 1 + shifts + 8_192 / 1_024, "{spins:?}");
        assert!(spins.iter().all(|&(_, spin)| spin <= MAX_PROBE));
        let gaps: Vec<usize> = spins.windows(2).map(|w| w[1].0 - w[0].0).collect();
        assert!(gaps.windows(2).all(|g| g[1] >= g[0]), "{gaps:?}");
        assert_eq!(gaps.last(), Some(&(1 << MAX_PROBE_SHIFT)), "{gaps:?}");
        // The spinning it cost: under 0.1% of the time waited.
        let spun: Duration = spins.iter().map(|&(_, spin)| spin).sum();
        assert!(spun < Duration::from_millis(8), "{spun:?}");
    }

    #[test]
    fn a_probe_caught_by_a_caller_that_then_lags_does_not_bring_spinning_back() {
        // A caller that thinks 100 us between calls: a probe catches its
        // request, but the short spin after it misses; probes grow rarer.
        let mut budget = SpinBudget::with_probes();
        let mut spun = 0;
        for _ in 0..8_192 {
            if let Spin::For(_) = budget.decide_with(|| true) {
                spun += 1;
            }
            budget.record(Duration::from_micros(100));
        }
        // Each probe, and the spin after it, as above.
        let shifts = (MAX_PROBE_SHIFT - MIN_PROBE_SHIFT + 1) as usize;
        let most = 2 * (1 + shifts + 8_192 / 1_024);
        assert!(spun <= most, "{spun} of 8,192 waits spun");
    }

    #[test]
    fn a_probe_spins_only_with_a_free_core() {
        let mut budget = SpinBudget::with_probes();
        for _ in 0..5 {
            budget.record(Duration::from_millis(5));
        }
        for _ in 2..1 << MIN_PROBE_SHIFT {
            assert_eq!(
                budget.decide_with(|| panic!("not asked")),
                Spin::SlowArrivals
            );
        }
        // The wait before the probe asks, to announce it (see
        // the_wait_before_a_probe_or_a_backoffs_end_asks_callers_to_poll).
        assert_eq!(budget.decide_with(|| false), Spin::SlowArrivals);
        // Due, but no core: it stays due until one is free.
        assert_eq!(budget.decide_with(|| false), Spin::NoFreeCore);
        assert_eq!(budget.decide_with(|| false), Spin::NoFreeCore);
        assert!(matches!(budget.decide_with(|| true), Spin::For(_)));
        assert!(budget.probing());
        // Caught: the next spin is an ordinary one.
        budget.record(Duration::from_micros(60));
        assert_eq!(budget.decide_with(|| true), Spin::For(PAUSE_SPIN));
        assert!(!budget.probing());
    }

    #[test]
    fn the_wait_before_a_probe_or_a_backoffs_end_asks_callers_to_poll() {
        // Slow arrivals: of the waits before the first probe, only the
        // last announces, and only with a free core.
        let mut budget = SpinBudget::with_probes();
        for _ in 0..5 {
            budget.record(Duration::from_millis(5));
        }
        let mut announced = Vec::new();
        for _ in 1..1 << MIN_PROBE_SHIFT {
            assert_eq!(budget.decide_with(|| true), Spin::SlowArrivals);
            announced.push(budget.announces());
        }
        assert_eq!(announced.iter().filter(|&&a| a).count(), 1, "{announced:?}");
        assert_eq!(announced.last(), Some(&true));
        assert!(budget.decide_with(|| true) != Spin::SlowArrivals && !budget.announces());

        // A spin that missed: the one wait it skips announces the next spin.
        let mut budget = SpinBudget::with_probes();
        let _ = budget.decide_with(|| true);
        budget.record_wait(Duration::from_micros(40), false);
        assert_eq!(budget.decide_with(|| true), Spin::SlowArrivals);
        assert!(budget.announces());
        assert!(matches!(budget.decide_with(|| true), Spin::For(_)));
        budget.record_wait(Duration::from_micros(40), false);
        assert_eq!(budget.decide_with(|| false), Spin::SlowArrivals);
        assert!(!budget.announces(), "no core, no announcement");

        // A budget without probes never announces.
        let mut plain = SpinBudget::default();
        let _ = plain.decide_with(|| true);
        plain.record_wait(Duration::from_micros(40), false);
        assert_eq!(
            plain.decide_with(|| panic!("not asked")),
            Spin::SlowArrivals
        );
        assert!(!plain.announces());
    }

    #[test]
    fn spin_until_stops_at_the_value_or_the_limit() {
        let mut polls = 0;
        let found = spin_until(Instant::now(), MAX_SPIN, || {
            polls += 1;
            (polls == 100).then_some("ready")
        });
        assert_eq!((found, polls), (Some("ready"), 100));

        let began = Instant::now();
        let never: Option<()> = spin_until(began, Duration::from_micros(200), || None);
        assert_eq!(never, None);
        assert!(began.elapsed() >= Duration::from_micros(200));

        let mut polls = 0;
        let once: Option<()> = spin_until(Instant::now(), Duration::ZERO, || {
            polls += 1;
            None
        });
        assert_eq!((once, polls), (None, 1));
    }

    #[test]
    fn spin_until_or_also_stops_when_told_and_asks_only_with_the_clock() {
        let (mut polls, mut asked) = (0u32, 0u32);
        let given_up: Option<()> = spin_until_or(
            Instant::now(),
            Duration::from_secs(10),
            || {
                polls += 1;
                None
            },
            |_elapsed| {
                asked += 1;
                asked == 3
            },
        );
        assert_eq!(given_up, None);
        assert_eq!((polls, asked), (3 * 64, 3));
    }
}
