//! Whether other work wants the cores: the free-core signal behind every
//! spin and poll ([`cores_free`]), read per thread.
//!
//! The kernel keeps, for each thread, the time it ran, the time it was
//! runnable but waited for a core (its run delay), and how many times it
//! got one (`/proc/thread-self/schedstat`). Every wake-up of a parked
//! thread waits a little for its core, longer on a virtual machine whose
//! idle vCPU must itself be woken; but a thread that other work keeps off
//! its core waits a time slice, a millisecond or more. So a sample counts
//! as "other work" when the thread waited, beyond [`WAKE_ALLOWANCE`] per
//! time it got a core, more than [`MIN_LOST`] and more than
//! [`LOST_SHARE_PERCENT`] of the time it wanted a core, and was preempted
//! at least once ([`other_work`]). Our own ping-pong (a caller waking a
//! parked worker, many times a millisecond) stays under the allowance; a
//! spinner that shares its core with a busy process is preempted and
//! loses whole slices.
//!
//! Why preemption is required too: a thread that only parks and is woken
//! is never preempted, and the time it waits is its wake-ups'. Those can
//! exceed the allowance with no other work at all (an idle vCPU's wake-up
//! on a host with work of its own): an isolated worker process, parked on
//! every request, reported "no core" for 0.44 of the calls of a quiet
//! benchmark run, which kept callers from polling, which kept the worker
//! parked: a loop of false verdicts. Other work that takes a core from a
//! thread preempts it (its involuntary context switches, `getrusage`).
//!
//! Why idle cores overrule a verdict: where waking an idle vCPU takes
//! 40-70 us (a virtual machine whose host halts idle vCPUs), every
//! wake-up of a parked thread waits that long, several times the
//! allowance, and the VM's scheduler threads are preempted at nearly every
//! slice (by our own worker and aux threads sharing the two vCPUs: 1,804
//! preemptions in 1,797 slices of a sequential run), so on an idle machine
//! samples read "other work". An isolated caller whose replies had come
//! slowly then never polled again: after 30 slow calls, 0-274 of the next
//! 2,000 quick calls polled in 13 runs. So a sample that shows other work
//! is overruled when the cores this process may run on sat idle for at
//! least [`IDLE_SHARE_PERCENT`] of one core's time meanwhile (cpuidle's
//! residency, [`machine_idle`]) and the thread's waits were wake-up sized
//! (under [`WAKE_MAX`] a slice on average): a core was free, so the waits
//! were wake-ups. Two spinners taking turns on a busy machine, or a thread
//! preempted by a busy loop, leave no core idle; a container throttled by
//! its CPU quota, on a host whose cores idle, waits whole periods
//! (milliseconds), far above [`WAKE_MAX`]. On a machine with more than
//! [`MAX_IDLE_CPUS`] allowed cores only the first ones are read: their
//! idle time is a part of the whole, so a quarter of a core idle among
//! them is one idle in all, and idle cores beyond them are only not seen
//! (the verdict stands, as without the reading). Without cpuidle
//! statistics nothing is overruled.
//!
//! Why a verdict takes [`CONFIRMING_SAMPLES`] among the last
//! [`CONFIRMING_WINDOW`]: other work that matters persists (a busy process
//! keeps its core), while the VM's own threads take a core now and then. On
//! the idle development VM, a sequential caller polling and the worker
//! spinning fill both vCPUs, and nothing is left idle to overrule a sample;
//! the VM's aux thread, a scheduler woken for a moment, a kernel thread, or
//! a vCPU's own stall then cost the worker 10-40% of one 10 ms window, 3-10
//! times in 9 s of calls (traced, one thread's samples: nothing but the
//! caller's scheduler, the aux thread and the worker ran in those windows).
//! Each such sample held spinning for 200 ms, and the sequential calls of
//! those 200 ms took turns parking: up to 230 parks per 1,000 calls in a
//! run of `bench/sequential.exs` (medians 44-88 in three sets of 15-20
//! runs; 0 with this rule). Such samples are 2-3% of all on that machine,
//! and rarely near each other: of the gaps between one and the next, 3 of
//! 50 were within 4 samples (traced, 15 runs of 300,000 calls). On a
//! machine whose cores busy processes keep, a spinning worker loses 18% or
//! more of a window (mostly 28-60%), but not in every window: after such a
//! loss its spins miss and back off, and the windows where it parks look
//! clean. There, 45 of the 70 gaps between samples showing other work were
//! within 4 samples (Debian 12 and 13, `BENCH_MODE=busy`), the others up to
//! 54; two in a row, the rule first tried, let the worker spin on a busy
//! machine up to half a second longer than one sample did.
//!
//! A parked thread may see no other work on a busy machine (a woken thread
//! often gets its core at once, ahead of a running busy loop), start
//! spinning, and then lose slices: each confirmed verdict stops spinning
//! on the thread for a [`Hold`], which doubles while holds keep ending in
//! other work, so such probing costs a shrinking share of a core.
//!
//! Sampling is one `pread` of a file kept open, at most every
//! [`SAMPLE_EVERY`] per thread (about a microsecond each, measured on the
//! development VM). Without the file (a kernel without scheduler
//! statistics) there is no signal: spinning is then bounded only by
//! whether it catches what it waits for, and by the number of cores.

use std::cell::RefCell;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::available_cores;

/// One reading of a thread's scheduler statistics, cumulative since it
/// started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Reading {
    /// Nanoseconds on a core.
    pub(crate) ran_ns: u64,
    /// Nanoseconds runnable, waiting for a core.
    pub(crate) waited_ns: u64,
    /// Times it got a core (after a wake-up or a preemption).
    pub(crate) slices: u64,
    /// Times it was preempted (involuntary context switches).
    pub(crate) preempted: u64,
}

/// The three numbers of `/proc/<tid>/schedstat`.
pub(crate) fn parse(text: &str) -> Option<Reading> {
    let mut fields = text.split_ascii_whitespace().map(|f| f.parse::<u64>());
    Some(Reading {
        ran_ns: fields.next()?.ok()?,
        waited_ns: fields.next()?.ok()?,
        slices: fields.next()?.ok()?,
        preempted: 0,
    })
}

/// The calling thread's involuntary context switches so far (0 when the
/// kernel does not say).
fn preemptions() -> u64 {
    // SAFETY: getrusage fills the zeroed rusage of our own; RUSAGE_THREAD
    // asks about the calling thread only.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_THREAD, &mut usage) == 0 {
            usage.ru_nivcsw as u64
        } else {
            0
        }
    }
}

/// How long a wake-up may wait for its core without counting as other
/// work. Measured on the development VM (2 vCPUs, Linux 6.18), two threads
/// pinging each other through a futex: 0.3-2 us per wake-up alone, 1.6-8
/// us with a busy loop on each core. A thread that other work keeps off
/// its core waits far longer: a time slice (0.7-3 ms) after a preemption,
/// or, when the two threads spin on a busy machine, the other's whole spin
/// (about 50 us each time).
pub(crate) const WAKE_ALLOWANCE: Duration = Duration::from_micros(10);

/// Waiting beyond the allowance, per sample, below which it is noise (a
/// kernel thread taking the core for a moment).
pub(crate) const MIN_LOST: Duration = Duration::from_micros(200);

/// Share of the time the thread wanted a core (ran or waited) that it lost
/// beyond the allowance, from which other work counts as present.
pub(crate) const LOST_SHARE_PERCENT: u64 = 10;

/// Whether, between two readings of one thread, other work kept it off a
/// core: it waited longer than its wake-ups explain, and was preempted
/// (see the module doc).
pub(crate) fn other_work(before: Reading, after: Reading) -> bool {
    if after.preempted <= before.preempted {
        return false;
    }
    let ran = after.ran_ns.saturating_sub(before.ran_ns);
    let waited = after.waited_ns.saturating_sub(before.waited_ns);
    let slices = after.slices.saturating_sub(before.slices);
    let allowed = slices.saturating_mul(WAKE_ALLOWANCE.as_nanos() as u64);
    let lost = waited.saturating_sub(allowed);
    lost >= MIN_LOST.as_nanos() as u64
        && u128::from(lost) * 100 >= u128::from(ran + waited) * u128::from(LOST_SHARE_PERCENT)
}

/// Idle time of the allowed cores, from [`IDLE_SHARE_PERCENT`] of one
/// core's time, makes a sample's waits wake-ups rather than other work
/// (see the module doc).
pub(crate) const IDLE_SHARE_PERCENT: u64 = 25;

/// Waits per slice longer than this on average are never explained by
/// idle cores: a wake-up, however slow, is shorter; a quota's throttling
/// or a lost time slice is longer.
pub(crate) const WAKE_MAX: Duration = Duration::from_micros(500);

/// Most cores whose idle statistics are read (a few files each; the
/// first of the allowed ones): more would cost more than the verdicts
/// they correct, and a part of the cores' idle time is never more than
/// the whole's.
pub(crate) const MAX_IDLE_CPUS: usize = 16;

/// How often the idle statistics are read, at most, for the whole process.
pub(crate) const IDLE_REFRESH: Duration = Duration::from_millis(5);

/// Whether idle cores explain a sample's waits: over `window_ns`, the
/// allowed cores sat idle `idle_ns` in all, at least
/// [`IDLE_SHARE_PERCENT`] of one core's time, and the thread waited less
/// than [`WAKE_MAX`] a slice on average.
pub(crate) fn idle_explains(before: Reading, after: Reading, idle_ns: u64, window_ns: u64) -> bool {
    let waited = after.waited_ns.saturating_sub(before.waited_ns);
    let slices = after.slices.saturating_sub(before.slices).max(1);
    window_ns > 0
        && u128::from(idle_ns) * 100 >= u128::from(window_ns) * u128::from(IDLE_SHARE_PERCENT)
        && waited / slices < WAKE_MAX.as_nanos() as u64
}

/// The allowed cores' cumulative idle time, as [`machine_idle`] read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdleReading {
    /// Nanoseconds idle, summed over the cores.
    pub(crate) idle_ns: u64,
    /// When it was read (by [`now_ns`]).
    pub(crate) at_ns: u64,
    /// Which set of cores it sums: two readings compare only within one
    /// (the affinity mask may change, `taskset` on a running VM).
    pub(crate) cores: u64,
}

/// The cumulative idle time of the cores this process may run on now (of
/// the first [`MAX_IDLE_CPUS`] of them); None without cpuidle statistics.
/// Read from sysfs at most every [`IDLE_REFRESH`] for the whole
/// process, the affinity mask with it, by the thread that asks first:
/// usually a worker deciding whether to spin, while a caller's request may
/// be on its way, so the files stay open where the process may open many
/// ([`KEEP_OPEN_FROM`]).
pub(crate) fn machine_idle(now: u64) -> Option<IdleReading> {
    static FILES: std::sync::Mutex<IdleFiles> = std::sync::Mutex::new(IdleFiles {
        cpus: Vec::new(),
        paths: Vec::new(),
        open: Vec::new(),
        cores: 0,
    });
    static IDLE_NS: AtomicU64 = AtomicU64::new(0);
    static READ_AT: AtomicU64 = AtomicU64::new(0);
    static CORES: AtomicU64 = AtomicU64::new(0);
    // Whether the last refresh could read every file (else None until the
    // next one: a machine without cpuidle is asked again only as often).
    static AVAILABLE: AtomicBool = AtomicBool::new(false);
    let read_at = READ_AT.load(Ordering::Acquire);
    if read_at == 0 || now.saturating_sub(read_at) >= IDLE_REFRESH.as_nanos() as u64 {
        // One refresher at a time; the others take the last reading.
        if let Ok(mut files) = FILES.try_lock() {
            let idle_us = files.read();
            if let Some(idle_us) = idle_us {
                IDLE_NS.store(idle_us.saturating_mul(1_000), Ordering::Relaxed);
                CORES.store(files.cores, Ordering::Relaxed);
            }
            AVAILABLE.store(idle_us.is_some(), Ordering::Relaxed);
            READ_AT.store(now.max(1), Ordering::Release);
        }
    }
    let at_ns = READ_AT.load(Ordering::Acquire);
    (at_ns != 0 && AVAILABLE.load(Ordering::Relaxed)).then(|| IdleReading {
        idle_ns: IDLE_NS.load(Ordering::Relaxed),
        at_ns,
        cores: CORES.load(Ordering::Relaxed),
    })
}

/// The cpuidle residency files (`.../cpuN/cpuidle/stateK/time`, in
/// microseconds) of the cores in the affinity mask they were listed for.
struct IdleFiles {
    cpus: Vec<usize>,
    paths: Vec<std::path::PathBuf>,
    /// The same files kept open, read again from their start (sysfs makes
    /// a fresh value for each read at offset 0); empty when they are read
    /// by path ([`KEEP_OPEN_FROM`]).
    open: Vec<File>,
    /// Bumped whenever the mask changes.
    cores: u64,
}

/// The soft limit on open files from which the idle files stay open.
/// Opening, reading and closing the two states' files of two cores took
/// 44-50 us on the development VM, reading them open 4-5 us. A worker
/// deciding whether to spin refreshes them about every 10 ms, and a
/// request that comes meanwhile waits for the decision: traced over 6 s
/// of sequential calls, such requests waited 75-239 us on average with
/// the files read by path, 26-39 us with them open. An isolated worker
/// whose `open_files` is set low reads them by path instead: its
/// descriptors are its Python code's.
pub(crate) const KEEP_OPEN_FROM: u64 = 1_024;

/// Whether this process may keep the idle files open: its soft limit on
/// open files is at least [`KEEP_OPEN_FROM`].
fn may_keep_files_open() -> bool {
    // SAFETY: getrlimit fills the zeroed rlimit of our own.
    let soft = unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return false;
        }
        limit.rlim_cur
    };
    soft >= KEEP_OPEN_FROM
}

/// The number a sysfs file holds, read from its start (its first 32 bytes:
/// a u64 in decimal needs 20 and a newline), whether the file is kept open
/// or was just opened.
fn read_number(file: &File) -> Option<u64> {
    let mut buffer = [0u8; 32];
    let n = file.read_at(&mut buffer, 0).ok()?;
    std::str::from_utf8(&buffer[..n]).ok()?.trim().parse().ok()
}

impl IdleFiles {
    /// The allowed cores' idle microseconds, listing their files again
    /// when the mask changed (once per mask, also when a core has none);
    /// None when they are not all readable. Records how many cores are
    /// allowed ([`several_cores_allowed`]).
    fn read(&mut self) -> Option<u64> {
        let allowed = allowed_cpus()?;
        ALLOWED_CORES.store(allowed.len(), Ordering::Relaxed);
        let cpus = idle_cpus_read(allowed)?;
        if cpus != self.cpus {
            self.paths = idle_paths(&cpus).unwrap_or_default();
            self.open = if may_keep_files_open() {
                self.paths
                    .iter()
                    .map(File::open)
                    .collect::<Result<_, _>>()
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            self.cpus = cpus;
            self.cores += 1;
        }
        if self.paths.is_empty() {
            return None;
        }
        if !self.open.is_empty() {
            return self
                .open
                .iter()
                .try_fold(0u64, |sum, file| Some(sum + read_number(file)?));
        }
        self.paths.iter().try_fold(0u64, |sum, path| {
            Some(sum + read_number(&File::open(path).ok()?)?)
        })
    }
}

/// How many cores the affinity mask allowed at the last idle reading (0
/// before the first).
static ALLOWED_CORES: AtomicUsize = AtomicUsize::new(0);

/// Whether this process may run on more than one core now, as the affinity
/// mask read with the idle statistics says (at most [`IDLE_REFRESH`] old;
/// before the first reading, the cores it had when first asked: a cached
/// figure, since `available_parallelism` also reads cgroup files). A VM
/// pinned to one core with `taskset` after start answers false.
pub(crate) fn several_cores_allowed() -> bool {
    match ALLOWED_CORES.load(Ordering::Relaxed) {
        0 => available_cores() > 1,
        cores => cores > 1,
    }
}

/// The cores in this thread's affinity mask; None when the kernel does not
/// say.
fn allowed_cpus() -> Option<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity
    // writes at most size_of::<cpu_set_t>() bytes into ours, and CPU_ISSET
    // reads it within CPU_SETSIZE.
    let cpus: Vec<usize> = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    };
    Some(cpus)
}

/// Which of the allowed cores' idle time is read: the first
/// [`MAX_IDLE_CPUS`]; None for an empty mask.
fn idle_cpus_read(mut allowed: Vec<usize>) -> Option<Vec<usize>> {
    allowed.truncate(MAX_IDLE_CPUS);
    (!allowed.is_empty()).then_some(allowed)
}

/// The residency files of every idle state of `cpus`; None when a core has
/// none.
fn idle_paths(cpus: &[usize]) -> Option<Vec<std::path::PathBuf>> {
    let mut paths = Vec::new();
    for cpu in cpus {
        let before = paths.len();
        let dir = format!("/sys/devices/system/cpu/cpu{cpu}/cpuidle");
        for state in std::fs::read_dir(dir).ok()?.flatten() {
            if state.file_name().to_string_lossy().starts_with("state") {
                paths.push(state.path().join("time"));
            }
        }
        if paths.len() == before {
            return None;
        }
    }
    Some(paths)
}

/// How often a thread samples its statistics (when it is about to wait).
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// Samples that must show other work, among the last
/// [`CONFIRMING_WINDOW`], before a thread holds its spinning (see the
/// module doc): a busy machine costs a probing spinner a few samples more
/// (10 ms each, per hold of 200 ms to 5 s); a passing thread of the VM no
/// longer stops spinning for 200 ms.
pub(crate) const CONFIRMING_SAMPLES: u32 = 2;

/// The samples, the last one included, among which
/// [`CONFIRMING_SAMPLES`] must show other work (at most 8: a thread keeps
/// them as the bits of a byte).
pub(crate) const CONFIRMING_WINDOW: u32 = 4;
const _: () = assert!(CONFIRMING_SAMPLES <= CONFIRMING_WINDOW && CONFIRMING_WINDOW <= 8);

/// The shortest and longest time nobody on a thread spins after a verdict
/// of other work.
pub(crate) const HOLD_MIN: Duration = Duration::from_millis(200);
pub(crate) const HOLD_MAX: Duration = Duration::from_secs(5);

/// A thread's pause in spinning, in nanoseconds of a process-wide clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hold {
    /// No spinning before this.
    pub(crate) until_ns: u64,
    /// The next pause's length.
    pub(crate) next_ns: u64,
}

impl Default for Hold {
    fn default() -> Self {
        Hold {
            until_ns: 0,
            next_ns: HOLD_MIN.as_nanos() as u64,
        }
    }
}

impl Hold {
    /// Whether the thread may spin at `now_ns`.
    pub(crate) fn allows(&self, now_ns: u64) -> bool {
        now_ns >= self.until_ns
    }

    /// The hold after a sample at `now_ns`: other work starts a pause (each
    /// one twice the last, up to [`HOLD_MAX`]); a machine free for as long
    /// as the next pause would last, after the last one ended, brings the
    /// length back to [`HOLD_MIN`]. A sample taken during a pause changes
    /// nothing: the thread did not spin meanwhile, and one busy spell must
    /// not double the pause at every sample (five samples, 50 ms, made it
    /// the 5 s maximum).
    pub(crate) fn after_sample(self, other_work: bool, now_ns: u64) -> Hold {
        if !self.allows(now_ns) {
            self
        } else if other_work {
            Hold {
                until_ns: now_ns + self.next_ns,
                next_ns: (2 * self.next_ns).min(HOLD_MAX.as_nanos() as u64),
            }
        } else if now_ns >= self.until_ns + self.next_ns {
            Hold {
                until_ns: self.until_ns,
                next_ns: HOLD_MIN.as_nanos() as u64,
            }
        } else {
            self
        }
    }
}

/// One thread's signal: its statistics file, kept open, and its last
/// reading.
struct ThreadSignal {
    file: Option<File>,
    last: Option<Reading>,
    /// The allowed cores' idle time at the last sample ([`machine_idle`]).
    idle_at_last: Option<IdleReading>,
    sampled_at_ns: u64,
    /// Which of the last samples showed other work: bit 0 the last one.
    recent_other_work: u8,
    hold: Hold,
}

impl ThreadSignal {
    fn open() -> Self {
        Self::with_file(File::open("/proc/thread-self/schedstat").ok())
    }

    /// A signal that reads `file` (None: no statistics, nothing sampled),
    /// with nothing sampled yet.
    fn with_file(file: Option<File>) -> Self {
        ThreadSignal {
            file,
            last: None,
            idle_at_last: None,
            sampled_at_ns: 0,
            recent_other_work: 0,
            hold: Hold::default(),
        }
    }

    fn read(&self) -> Option<Reading> {
        let mut buffer = [0u8; 96];
        let n = self.file.as_ref()?.read_at(&mut buffer, 0).ok()?;
        let reading = parse(std::str::from_utf8(&buffer[..n]).ok()?)?;
        Some(Reading {
            preempted: preemptions(),
            ..reading
        })
    }

    /// The hold after a sample at `now_ns` that showed other work (`busy`)
    /// or not: a verdict when it did and, with it, [`CONFIRMING_SAMPLES`]
    /// of the last [`CONFIRMING_WINDOW`] did.
    fn judge(&mut self, busy: bool, now_ns: u64) {
        let window = (1u16 << CONFIRMING_WINDOW) - 1;
        self.recent_other_work =
            ((u16::from(self.recent_other_work) << 1 | u16::from(busy)) & window) as u8;
        let confirmed = busy && self.recent_other_work.count_ones() >= CONFIRMING_SAMPLES;
        self.hold = self.hold.after_sample(confirmed, now_ns);
    }

    fn free(&mut self, now_ns: u64) -> bool {
        if self.file.is_some()
            && (self.last.is_none()
                || now_ns.saturating_sub(self.sampled_at_ns) >= SAMPLE_EVERY.as_nanos() as u64)
        {
            self.sampled_at_ns = now_ns;
            if let Some(reading) = self.read() {
                let idle = machine_idle(now_ns);
                if let Some(before) = self.last {
                    let busy = other_work(before, reading)
                        && !match (self.idle_at_last, idle) {
                            (Some(then), Some(now)) if then.cores == now.cores => idle_explains(
                                before,
                                reading,
                                now.idle_ns.saturating_sub(then.idle_ns),
                                now.at_ns.saturating_sub(then.at_ns),
                            ),
                            _ => false,
                        };
                    SAMPLES.fetch_add(1, Ordering::Relaxed);
                    if busy {
                        SAMPLES_OTHER_WORK.fetch_add(1, Ordering::Relaxed);
                    }
                    self.judge(busy, now_ns);
                }
                self.last = Some(reading);
                self.idle_at_last = idle;
            }
        }
        self.hold.allows(now_ns)
    }
}

thread_local! {
    static SIGNAL: RefCell<Option<ThreadSignal>> = const { RefCell::new(None) };
}

/// Samples taken in this process, and those that showed other work (for
/// the benchmarks' counters).
static SAMPLES: AtomicU64 = AtomicU64::new(0);
static SAMPLES_OTHER_WORK: AtomicU64 = AtomicU64::new(0);

/// `(samples, samples showing other work)` so far, in this OS process.
pub(crate) fn sample_counts() -> (u64, u64) {
    (
        SAMPLES.load(Ordering::Relaxed),
        SAMPLES_OTHER_WORK.load(Ordering::Relaxed),
    )
}

fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Whether the calling thread may spin now: this process may run on more
/// than one core, and the thread's recent samples showed no other work
/// keeping it off a core (see the module doc).
pub(crate) fn cores_free() -> bool {
    if available_cores() <= 1 {
        return false;
    }
    let now = now_ns();
    SIGNAL.with_borrow_mut(|signal| signal.get_or_insert_with(ThreadSignal::open).free(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const US: u64 = 1_000;

    fn reading(ran_ns: u64, waited_ns: u64, slices: u64, preempted: u64) -> Reading {
        Reading {
            ran_ns,
            waited_ns,
            slices,
            preempted,
        }
    }

    #[test]
    fn reads_the_kernels_schedstat_line() {
        assert_eq!(
            parse("111912 2445239 2\n"),
            Some(reading(111_912, 2_445_239, 2, 0))
        );
        assert_eq!(parse("111912 2445239"), None);
        assert_eq!(parse("nonsense"), None);
    }

    #[test]
    fn our_own_wake_ups_are_not_other_work() {
        let start = reading(0, 0, 0, 0);
        // A parked worker pinged 1,500 times in 10 ms, each wake-up waiting
        // 2 us (an idle machine), or 8 us (a busy loop on each core): 3 ms
        // and 12 ms of run delay, but no slice lost.
        assert!(!other_work(start, reading(4 * MS, 3 * MS, 1_500, 0)));
        assert!(!other_work(start, reading(4 * MS, 12 * MS, 1_500, 0)));
        // A vCPU slow to wake: 9 us a wake-up.
        assert!(!other_work(start, reading(MS, 9 * US * 200, 200, 0)));
        // A thread that spun for the whole window and got its core once.
        assert!(!other_work(start, reading(10 * MS, 0, 1, 0)));
    }

    #[test]
    fn a_spinner_losing_slices_to_other_work_is_other_work() {
        let start = reading(0, 0, 0, 0);
        // A spinner sharing its core with a busy loop: 5 ms run, 5 ms
        // waited in 4 preemptions.
        assert!(other_work(start, reading(5 * MS, 5 * MS, 4, 4)));
        // ... even with 40 quick wake-ups mixed in.
        assert!(other_work(start, reading(5 * MS, 5 * MS, 44, 4)));
        // Two threads spinning by turns on a busy machine, each waking
        // behind the other's 50 us spin: 100 times in 10 ms, preempted by
        // the busy work 10 times.
        assert!(other_work(start, reading(5 * MS, 5 * MS, 100, 10)));
        // One preemption of 1.5 ms in an otherwise parked thread.
        assert!(other_work(start, reading(100 * US, 1_500 * US, 2, 1)));
        // Cumulative counters: only the difference counts.
        let later = reading(50 * MS, 30 * MS, 9_000, 100);
        let after = reading(
            later.ran_ns + 5 * MS,
            later.waited_ns + 5 * MS,
            later.slices + 4,
            later.preempted + 4,
        );
        assert!(other_work(later, after));
        assert!(!other_work(after, after));
    }

    #[test]
    fn slow_wake_ups_of_a_thread_never_preempted_are_not_other_work() {
        let start = reading(0, 0, 0, 0);
        // A parked worker woken 200 times in 10 ms, each wake-up waiting
        // 30 us for its vCPU: 6 ms of run delay, none of it to other work.
        assert!(!other_work(start, reading(MS, 30 * US * 200, 200, 0)));
        // The same delays with preemptions among them: other work.
        assert!(other_work(start, reading(MS, 30 * US * 200, 200, 3)));
    }

    #[test]
    fn small_losses_are_noise() {
        let start = reading(0, 0, 0, 0);
        // 190 us lost beyond the allowance: under MIN_LOST.
        assert!(!other_work(start, reading(100 * US, 200 * US, 1, 1)));
        // 1 ms lost, but of 20 ms wanted (5%): under the share.
        assert!(!other_work(start, reading(19 * MS, MS + 50 * US, 1, 1)));
    }

    #[test]
    fn holds_grow_while_other_work_persists_and_reset_after_a_free_spell() {
        let min = HOLD_MIN.as_nanos() as u64;
        let mut hold = Hold::default();
        assert!(hold.allows(0));
        // Other work at t = 1 s: no spinning for HOLD_MIN.
        let mut now = 1_000 * MS;
        hold = hold.after_sample(true, now);
        assert!(!hold.allows(now + min - 1));
        assert!(hold.allows(now + min));
        // Each hold that ends in other work again is twice as long, up to
        // HOLD_MAX.
        let mut lengths = Vec::new();
        for _ in 0..10 {
            now = hold.until_ns + 10 * MS;
            let before = now;
            hold = hold.after_sample(true, now);
            lengths.push(hold.until_ns - before);
        }
        assert_eq!(lengths[0], 2 * min);
        assert_eq!(lengths[1], 4 * min);
        assert_eq!(*lengths.last().unwrap(), HOLD_MAX.as_nanos() as u64);
        // Free samples shortly after the hold: the length stays.
        now = hold.until_ns + 10 * MS;
        hold = hold.after_sample(false, now);
        assert_eq!(hold.next_ns, HOLD_MAX.as_nanos() as u64);
        // Free for as long as the next hold: back to the minimum.
        now = hold.until_ns + HOLD_MAX.as_nanos() as u64;
        hold = hold.after_sample(false, now);
        assert_eq!(hold.next_ns, min);
        assert!(hold.allows(now));
    }

    #[test]
    fn samples_during_a_hold_neither_extend_nor_double_it() {
        let min = HOLD_MIN.as_nanos() as u64;
        let started = Hold::default().after_sample(true, 1_000 * MS);
        // Busy samples every 10 ms while the hold lasts.
        let mut hold = started;
        for i in 1..(min / (10 * MS)) {
            hold = hold.after_sample(true, 1_000 * MS + i * 10 * MS);
        }
        assert_eq!(hold, started);
        assert!(hold.allows(1_000 * MS + min));
    }

    #[test]
    fn a_single_sample_of_other_work_holds_nothing_two_close_together_do() {
        let sample = 10 * MS;
        let min = HOLD_MIN.as_nanos() as u64;
        let unsampled = || ThreadSignal::with_file(None);
        // An idle machine whose VM threads cost a window now and then: one
        // sample in five shows other work, never two within four.
        let mut idle = unsampled();
        for i in 1..=500u64 {
            idle.judge(i % 5 == 0, i * sample);
            assert!(idle.hold.allows(i * sample), "held at sample {i}");
        }
        // A busy machine, whose spinner parks after a lost window (its
        // spins missed), so that clean samples come between: the second
        // sample showing other work within four holds spinning.
        let mut busy = unsampled();
        let start = 1_000 * MS;
        for (i, shows) in [true, false, false].into_iter().enumerate() {
            busy.judge(shows, start + i as u64 * sample);
            assert!(busy.hold.allows(start + i as u64 * sample));
        }
        let confirmed = start + 3 * sample;
        busy.judge(true, confirmed);
        assert!(!busy.hold.allows(confirmed));
        assert!(busy.hold.allows(confirmed + min));
        // Still busy when the hold ends: the next hold, twice as long,
        // comes at the first sample showing it (with one during the hold).
        let ended = busy.hold.until_ns;
        busy.judge(true, ended - sample);
        busy.judge(true, ended);
        assert_eq!(busy.hold.until_ns, ended + 2 * min);
        // Two such samples further apart than the window hold nothing.
        let mut now = busy.hold.until_ns;
        for shows in [false; CONFIRMING_WINDOW as usize] {
            busy.judge(shows, now);
            now += sample;
        }
        busy.judge(true, now);
        for _ in 1..CONFIRMING_WINDOW {
            now += sample;
            busy.judge(false, now);
        }
        now += sample;
        busy.judge(true, now);
        assert!(busy.hold.allows(now));
    }

    #[test]
    fn waits_while_a_core_sat_idle_are_wake_ups_not_other_work() {
        let start = reading(0, 0, 0, 0);
        // A VM's scheduler thread over 10 ms: 150 wake-ups of 60 us each
        // (a halted vCPU woken), preempted at every slice by our own
        // threads: other work by the counters alone ...
        let vm = reading(MS, 9 * MS, 150, 150);
        assert!(other_work(start, vm));
        // ... but the other core idled 6 ms meanwhile: wake-ups.
        assert!(idle_explains(start, vm, 6 * MS, 10 * MS));
        // Idle a quarter of one core's time is enough; less is not.
        assert!(idle_explains(start, vm, 2_500 * US, 10 * MS));
        assert!(!idle_explains(start, vm, 2_000 * US, 10 * MS));

        // Two spinners taking turns on a busy machine: no core idle.
        let turns = reading(5 * MS, 5 * MS, 100, 10);
        assert!(other_work(start, turns));
        assert!(!idle_explains(start, turns, 0, 10 * MS));

        // A container throttled by its quota while the host idles: waits of
        // whole periods, never wake-ups.
        let throttled = reading(2 * MS, 80 * MS, 4, 4);
        assert!(other_work(start, throttled));
        assert!(!idle_explains(start, throttled, 150 * MS, 100 * MS));

        // No window (the idle reading did not move): nothing explained.
        assert!(!idle_explains(start, vm, 6 * MS, 0));
    }

    /// The residency files of the cores read here, or None where the
    /// kernel keeps no cpuidle statistics for them: a kernel without
    /// cpuidle, or whose cpuidle driver is `none` (the Firecracker VMs of
    /// November 2026 run so; the earlier ones had `haltpoll`).
    fn residency_files_here() -> Option<Vec<std::path::PathBuf>> {
        idle_paths(&idle_cpus_read(allowed_cpus().unwrap()).unwrap())
    }

    #[test]
    fn the_idle_statistics_are_read_where_the_kernel_keeps_them() {
        assert!(several_cores_allowed(), "these machines have two cores");
        assert_eq!(idle_paths(&[]), Some(Vec::new()));
        assert_eq!(idle_paths(&[usize::MAX]), None);
        match residency_files_here() {
            // Read, growing, and fresh from files kept open.
            Some(paths) => {
                let first = machine_idle(now_ns()).expect("cpuidle residency files");
                std::thread::sleep(IDLE_REFRESH * 4);
                let later = machine_idle(now_ns()).unwrap();
                assert!(later.at_ns > first.at_ns);
                assert_eq!(later.cores, first.cores);
                assert!(later.idle_ns >= first.idle_ns, "{first:?} then {later:?}");
                files_kept_open_give_fresh_readings(&paths);
            }
            // None: a reading made of nothing would overrule every
            // verdict, or none, by chance. Asked again after a refresh too.
            None => {
                assert_eq!(machine_idle(now_ns()), None);
                std::thread::sleep(IDLE_REFRESH * 2);
                assert_eq!(machine_idle(now_ns()), None);
            }
        }
    }

    /// A file kept open is read again from its start: its value must be
    /// the kernel's current one, as opening it anew gives, not the one of
    /// the first read.
    fn files_kept_open_give_fresh_readings(paths: &[std::path::PathBuf]) {
        let open: Vec<File> = paths.iter().map(|p| File::open(p).unwrap()).collect();
        let kept = || open.iter().map(|f| read_number(f).unwrap()).sum::<u64>();
        let by_path = || -> u64 {
            let number = |p: &std::path::PathBuf| {
                let text = std::fs::read_to_string(p).unwrap();
                text.trim().parse::<u64>().unwrap()
            };
            paths.iter().map(number).sum()
        };
        let first = kept();
        let began = Instant::now();
        let moved = loop {
            std::thread::sleep(Duration::from_millis(20));
            let now = by_path();
            if now > first {
                break now;
            }
            assert!(began.elapsed() < Duration::from_secs(5), "no core idled");
        };
        assert!(kept() >= moved, "first {first}, by path {moved}");
    }

    #[test]
    fn a_large_machine_reads_the_first_of_its_allowed_cores() {
        // 64 allowed cores: the first 16 are read, a lower bound of the
        // whole's idle time (until this change: none, and nothing was
        // overruled on machines of more than 16 cores).
        let many: Vec<usize> = (0..128).step_by(2).collect();
        let read = idle_cpus_read(many.clone()).unwrap();
        assert_eq!(read, many[..MAX_IDLE_CPUS]);
        assert_eq!(idle_cpus_read(vec![3, 5]), Some(vec![3, 5]));
        assert_eq!(idle_cpus_read(Vec::new()), None);
    }

    #[test]
    fn this_threads_statistics_are_readable_here() {
        // The development kernels have them (Linux 6.1 and 6.18); without
        // them nothing would ever be held for other work.
        let signal = ThreadSignal::open();
        let first = signal.read().expect("/proc/thread-self/schedstat");
        assert!(first.slices >= 1, "{first:?}");
        std::thread::sleep(Duration::from_millis(2));
        let second = signal.read().unwrap();
        assert!(second.slices > first.slices, "{first:?} {second:?}");
    }
}
