//! Byte rings in shared memory between the VM and an isolated worker, with
//! futex doorbells: the transport of isolated contexts (the port's pipes
//! stay for the worker's lifecycle, and as the fallback when no shared
//! memory can be made).
//!
//! One file in `/dev/shm`, created by the VM, mapped by both processes and
//! unlinked by the worker once mapped. It holds two rings, one per
//! direction ([`TO_WORKER`], [`TO_VM`]), each a stream of frames (a 4-byte
//! little-endian length, then that many bytes). A frame larger than a ring
//! streams through it in pieces, as through a pipe.
//!
//! The worker is untrusted: each side keeps its own counter privately and
//! only reads the other's from shared memory, and every value read there is
//! checked ([`Error::Corrupt`]) before it is used as a length or an offset.
//! Waits are futex waits on the shared sequence words, bounded by a timeout,
//! so a peer that dies mid-frame can wedge nothing: the VM closes the
//! mapping when the port reports the exit, which wakes every waiter.
//!
//! Shared by the NIF (`isolated_channel`) and the worker (`#[path]`).

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

// The runtime's spin-or-park decision (recent arrival gaps, free cores): the
// NIF mounts `runtime/wait_strategy.rs` at its root, and so does the worker.
use crate::wait_strategy::{cores_free, spin_until, Spin, SpinBudget};

/// The ring the VM writes and the worker reads.
pub const TO_WORKER: usize = 0;
/// The ring the worker writes and the VM reads.
pub const TO_VM: usize = 1;

/// Bytes per ring: large enough that a typical frame crosses in one piece,
/// small enough that an idle context holds little memory.
pub const CAPACITY: usize = 8 << 20;

const MAGIC: u64 = u64::from_le_bytes(*b"EPYRING3");
const HEADER: usize = 4096;

#[repr(C)]
struct RingHeader {
    /// Bytes written since the start, by the ring's writer.
    write: AtomicU64,
    _pad0: [u8; 56],
    /// Bytes read since the start, by the ring's reader.
    read: AtomicU64,
    _pad1: [u8; 56],
    /// Bumped by the writer after `write` moves: the reader's doorbell.
    data_seq: AtomicU32,
    /// Non-zero while the reader sleeps (or is about to) on `data_seq`: the
    /// writer skips the wake-up system call when nobody sleeps.
    data_sleepers: AtomicU32,
    /// Non-zero while a VM caller polls this ring for its own reply (see
    /// [`Mapping::begin_poll`]): the writer does not ring the doorbell then,
    /// the poller finds the frame without it.
    data_polled: AtomicU32,
    /// Non-zero when the reader's thread last found other work keeping it
    /// off a core (`wait_strategy::cores_free`), as of its last wait: the
    /// VM's callers poll for a reply only while the worker has a core. The
    /// worker may lie here; it can only make callers poll (briefly) or not.
    reader_lacks_core: AtomicU32,
    /// When the writer last published ([`now_ns`], `CLOCK_MONOTONIC`,
    /// one clock for both processes): a waiter that parked measures the
    /// gap to its frame's arrival from here, not from its own wake-up,
    /// which on a virtual machine can cost more than the gap itself (see
    /// [`Mapping::wait_beyond`]). The writer may lie here; it can only
    /// make the reader spin (briefly) or not.
    published_ns: AtomicU64,
    _pad2: [u8; 40],
    /// Bumped by the reader after `read` moves: the writer's doorbell.
    space_seq: AtomicU32,
    /// Non-zero while the writer sleeps (or is about to) on `space_seq`.
    space_sleepers: AtomicU32,
    _pad3: [u8; 56],
}

/// What happened on one ring, counted by its two ends in shared memory (so
/// the VM reads the worker's side too): figures for `stats`, never used to
/// decide anything (the worker may write what it likes here).
#[repr(C)]
struct RingCounters {
    /// Frames read.
    frames: AtomicU64,
    /// Waits for a frame that ended while spinning.
    caught_spinning: AtomicU64,
    /// Waits that slept on the doorbell (a futex wait).
    parked: AtomicU64,
    /// Of those, waits that did not spin at all: recent arrivals were slow.
    no_spin_slow: AtomicU64,
    /// ... or no core was free.
    no_spin_busy: AtomicU64,
    /// Nanoseconds spent waiting for frames.
    wait_ns: AtomicU64,
    /// Doorbell wake-ups (futex wake system calls) by the writer.
    data_wakes: AtomicU64,
    /// Wake-ups of the writer, waiting for room, by the reader.
    space_wakes: AtomicU64,
    /// Nanoseconds from the start of waits to the writer's publishing what
    /// ended them (its stamp): `wait_ns` less this is what waking took.
    arrival_ns: AtomicU64,
}

/// [`RingCounters`] read at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct RingStats {
    pub frames: u64,
    pub caught_spinning: u64,
    pub parked: u64,
    pub no_spin_slow: u64,
    pub no_spin_busy: u64,
    pub wait_ns: u64,
    pub data_wakes: u64,
    pub space_wakes: u64,
    pub arrival_ns: u64,
}

fn count(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

#[repr(C)]
struct Header {
    magic: AtomicU64,
    capacity: AtomicU64,
    closed: AtomicU32,
    _pad: [u8; 44],
    rings: [RingHeader; 2],
    counters: [RingCounters; 2],
}

const _: () = assert!(std::mem::size_of::<Header>() <= HEADER);

/// Why a transfer stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// Either side closed the mapping (the worker exited, the VM stopped it).
    Closed,
    /// A value read from shared memory is impossible: the peer is broken or
    /// hostile; the caller closes the channel.
    Corrupt(&'static str),
    /// No memory for a frame of this many bytes.
    NoMemory(usize),
}

/// The shared mapping.
pub struct Mapping {
    base: NonNull<u8>,
    len: usize,
    capacity: usize,
}

// SAFETY: the mapping is plain shared memory; every access to its header
// goes through atomics, and the data areas are only touched by the single
// reader or single writer of each ring (callers serialize their side).
unsafe impl Send for Mapping {}
// SAFETY: as for Send.
unsafe impl Sync for Mapping {}

fn c_path(path: &str) -> std::io::Result<CString> {
    CString::new(path).map_err(|_| std::io::Error::other("a path with a NUL byte"))
}

impl Mapping {
    /// Creates the file at `path` (which must not exist) and maps it: the VM's side.
    pub fn create(path: &str, capacity: usize) -> std::io::Result<Mapping> {
        let c = c_path(path)?;
        let len = HEADER + 2 * capacity;
        // SAFETY: open with a valid C string; the descriptor is closed below.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
                0o600,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: ftruncate on the descriptor just opened.
        let mapped = if unsafe { libc::ftruncate(fd, len as libc::off_t) } < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            map(fd, len)
        };
        // SAFETY: closing our descriptor; the mapping stays valid without it.
        unsafe { libc::close(fd) };
        let base = match mapped {
            Ok(base) => base,
            Err(err) => {
                // SAFETY: unlink with a valid C string.
                unsafe { libc::unlink(c.as_ptr()) };
                return Err(err);
            }
        };
        let mapping = Mapping {
            base,
            len,
            capacity,
        };
        // A fresh file reads as zeros: counters and sequences start at 0.
        mapping
            .header()
            .capacity
            .store(capacity as u64, Ordering::Relaxed);
        mapping.header().magic.store(MAGIC, Ordering::Release);
        Ok(mapping)
    }

    /// Maps the file the VM created at `path` and unlinks it: the worker's
    /// side (the NIF uses it in its tests only).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn open(path: &str) -> std::io::Result<Mapping> {
        let c = c_path(path)?;
        // SAFETY: open with a valid C string; closed below.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fstat into a zeroed stat of our own.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let len = if unsafe { libc::fstat(fd, &mut stat) } < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(stat.st_size as usize)
        };
        let mapped = len.and_then(|len| {
            if len < HEADER {
                return Err(std::io::Error::other("shared memory file too small"));
            }
            map(fd, len).map(|base| (base, len))
        });
        // SAFETY: closing our descriptor; the mapping stays valid without it,
        // and the file, once unlinked, lives as long as the two mappings.
        unsafe {
            libc::close(fd);
            libc::unlink(c.as_ptr());
        }
        let (base, len) = mapped?;
        let mut mapping = Mapping {
            base,
            len,
            capacity: 0,
        };
        let capacity = mapping.header().capacity.load(Ordering::Relaxed) as usize;
        if mapping.header().magic.load(Ordering::Acquire) != MAGIC
            || capacity == 0
            || HEADER.checked_add(capacity.saturating_mul(2)) != Some(len)
        {
            return Err(std::io::Error::other("not an erlang_python ring file"));
        }
        mapping.capacity = capacity;
        Ok(mapping)
    }

    fn header(&self) -> &Header {
        // SAFETY: the mapping is at least HEADER bytes, page-aligned, and
        // Header (atomics and padding only) fits in HEADER bytes.
        unsafe { &*(self.base.as_ptr() as *const Header) }
    }

    fn ring(&self, which: usize) -> &RingHeader {
        &self.header().rings[which]
    }

    fn counters(&self, which: usize) -> &RingCounters {
        &self.header().counters[which]
    }

    /// What ring `which` counted so far (as the worker reports its side).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn stats(&self, which: usize) -> RingStats {
        let c = self.counters(which);
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        RingStats {
            frames: get(&c.frames),
            caught_spinning: get(&c.caught_spinning),
            parked: get(&c.parked),
            no_spin_slow: get(&c.no_spin_slow),
            no_spin_busy: get(&c.no_spin_busy),
            wait_ns: get(&c.wait_ns),
            data_wakes: get(&c.data_wakes),
            space_wakes: get(&c.space_wakes),
            arrival_ns: get(&c.arrival_ns),
        }
    }

    fn data(&self, which: usize) -> *mut u8 {
        // SAFETY: ring `which` (0 or 1) spans capacity bytes after the
        // header and after ring 0: inside the mapping of HEADER + 2 * capacity.
        unsafe { self.base.as_ptr().add(HEADER + which * self.capacity) }
    }

    /// Marks the channel closed and wakes every waiter on both sides.
    pub fn close(&self) {
        self.header().closed.store(1, Ordering::Release);
        for ring in &self.header().rings {
            ring.data_seq.fetch_add(1, Ordering::Release);
            ring.space_seq.fetch_add(1, Ordering::Release);
            wake(&ring.data_seq);
            wake(&ring.space_seq);
        }
    }

    pub fn is_closed(&self) -> bool {
        self.header().closed.load(Ordering::Acquire) != 0
    }

    /// Waits until ring `which` holds bytes past `position()` (read again
    /// on every look: another reader of the VM may consume meanwhile, so a
    /// wake-up may find nothing; the caller looks again). Spins first while
    /// frames have been coming quickly, a core is free and no caller polls
    /// the ring itself (a futex sleep and wake-up cost more than a whole
    /// round trip), then sleeps on the doorbell.
    ///
    /// The gap `budget` learns from is the time to the frame's arrival as
    /// the writer stamped it (`published_ns`), not to this thread's
    /// wake-up: waking a parked thread on an idle virtual CPU costs 40-70
    /// us, more than the spin limit, so gaps that counted it kept a waiter
    /// that once parked parking for good, however quickly frames came.
    pub fn wait_beyond(
        &self,
        which: usize,
        position: impl Fn() -> u64,
        budget: &mut SpinBudget,
    ) -> Result<(), Error> {
        let ring = self.ring(which);
        let counters = self.counters(which);
        let ready = || -> Result<bool, Error> {
            let written = ring.write.load(Ordering::Acquire);
            let available = written.wrapping_sub(position());
            if available > self.capacity as u64 {
                return Err(Error::Corrupt("write counter beyond the ring"));
            }
            Ok(available > 0)
        };
        let began = Instant::now();
        let began_ns = now_ns();
        let polled = || ring.data_polled.load(Ordering::Relaxed) != 0;
        let has_core = cores_free();
        // Stored only on a change: the writer reads this line on every frame.
        if (ring.reader_lacks_core.load(Ordering::Relaxed) == 0) != has_core {
            ring.reader_lacks_core
                .store(u32::from(!has_core), Ordering::Relaxed);
        }
        let decision = if polled() {
            Spin::SlowArrivals
        } else {
            budget.decide()
        };
        match decision {
            Spin::SlowArrivals => count(&counters.no_spin_slow, 1),
            Spin::NoFreeCore => count(&counters.no_spin_busy, 1),
            Spin::For(_) => {}
        }
        /// How a spin ended before its time ran out.
        enum Spun {
            Ready,
            Failed(Error),
            /// A caller started polling the ring: it takes the frame.
            Polled,
        }
        let spin = decision.duration();
        let spun = (!spin.is_zero())
            .then(|| {
                spin_until(began, spin, || match ready() {
                    Ok(true) => Some(Spun::Ready),
                    Err(error) => Some(Spun::Failed(error)),
                    Ok(false) if self.is_closed() => Some(Spun::Failed(Error::Closed)),
                    Ok(false) if polled() => Some(Spun::Polled),
                    Ok(false) => None,
                })
            })
            .flatten();
        match spun {
            Some(Spun::Ready) => {
                let gap = began.elapsed();
                budget.record(gap);
                count(&counters.caught_spinning, 1);
                count(&counters.wait_ns, gap.as_nanos() as u64);
                count(&counters.arrival_ns, gap.as_nanos() as u64);
                return Ok(());
            }
            Some(Spun::Failed(error)) => return Err(error),
            Some(Spun::Polled) | None => {}
        }
        count(&counters.parked, 1);
        let result = loop {
            let seen = ring.data_seq.load(Ordering::SeqCst);
            ring.data_sleepers.fetch_add(1, Ordering::SeqCst);
            let now = ready();
            if matches!(now, Ok(false)) && !self.is_closed() {
                wait(&ring.data_seq, seen);
            }
            ring.data_sleepers.fetch_sub(1, Ordering::SeqCst);
            match now {
                Err(error) => break Err(error),
                Ok(true) => break Ok(()),
                Ok(false) if self.is_closed() => break Err(Error::Closed),
                Ok(false) => match ready() {
                    Ok(true) => break Ok(()),
                    Ok(false) if self.is_closed() => break Err(Error::Closed),
                    Ok(false) => {}
                    Err(error) => break Err(error),
                },
            }
        };
        let waited = began.elapsed();
        count(&counters.wait_ns, waited.as_nanos() as u64);
        if result.is_ok() {
            // `ready()` saw the writer's `write` (Acquire), stored after
            // its stamp: this stamp is that frame's or a later one.
            let stamp = ring.published_ns.load(Ordering::Relaxed);
            let arrival = arrival_gap(began_ns, stamp, waited);
            count(&counters.arrival_ns, arrival.as_nanos() as u64);
            budget.record(arrival);
        }
        result
    }

    /// Whether ring `which`'s reader last found other work keeping its
    /// thread off a core (it says so as it starts each wait).
    pub fn reader_lacks_core(&self, which: usize) -> bool {
        self.ring(which).reader_lacks_core.load(Ordering::Relaxed) != 0
    }

    /// Whether ring `which`'s reader has read past `position` (a writer's
    /// [`Writer::position`]): it took the frame that ends there. As the
    /// reader claims; for timing a poll only.
    pub fn read_past(&self, which: usize, position: u64) -> bool {
        let read = self.ring(which).read.load(Ordering::Acquire);
        read.wrapping_sub(position) < 1 << 63
    }

    /// A caller of the VM is about to poll ring `which` for its reply (it
    /// calls this before sending its request): the writer stops ringing
    /// the doorbell, whose wake-up would be a system call on its side and
    /// a thread woken for nothing on ours.
    pub fn begin_poll(&self, which: usize) {
        self.ring(which).data_polled.fetch_add(1, Ordering::SeqCst);
    }

    /// The poll is over; the reader stands at `position`. Wakes the sleeping
    /// reader when bytes wait past it: a frame published while the poll
    /// held the doorbell back.
    pub fn end_poll(&self, which: usize, position: u64) {
        let ring = self.ring(which);
        ring.data_polled.fetch_sub(1, Ordering::SeqCst);
        // Either the writer's SeqCst load of `data_polled` saw the poll end
        // (it rings itself), or this SeqCst load sees its bump of
        // `data_seq` and, through it, its `write`.
        let _ = ring.data_seq.load(Ordering::SeqCst);
        let written = ring.write.load(Ordering::Acquire);
        if written != position && ring.data_sleepers.load(Ordering::SeqCst) != 0 {
            count(&self.counters(which).data_wakes, 1);
            wake(&ring.data_seq);
        }
    }

    /// A writer for ring `which`, from the counter in shared memory (0 for a
    /// fresh file; the worker may be replaced, never the rings' roles).
    pub fn writer(&self, which: usize) -> Writer {
        Writer {
            which,
            local: self.ring(which).write.load(Ordering::Acquire),
            published: self.ring(which).write.load(Ordering::Acquire),
        }
    }

    pub fn reader(&self, which: usize) -> Reader {
        Reader {
            which,
            local: self.ring(which).read.load(Ordering::Acquire),
            budget: SpinBudget::default(),
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what map() returned; nothing borrows it
        // past the Mapping's life.
        unsafe { libc::munmap(self.base.as_ptr() as *mut libc::c_void, self.len) };
    }
}

fn map(fd: libc::c_int, len: usize) -> std::io::Result<NonNull<u8>> {
    // SAFETY: a fresh shared mapping of an open descriptor; the result is
    // checked before use.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    NonNull::new(ptr as *mut u8).ok_or_else(|| std::io::Error::other("mmap returned NULL"))
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock both processes stamp with
/// (`Instant` has no value another process could compare).
pub fn now_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own; CLOCK_MONOTONIC
    // always exists on Linux (a vDSO call, no system call).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    (now.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(now.tv_nsec as u64)
}

/// When, after a wait that began at `began_ns` and lasted `waited`, the
/// frame that ended it arrived, by the writer's `stamp`: between the two,
/// whatever the writer claims (a stamp from before the wait, as when a
/// frame came while the reader was deciding, is an arrival at once).
fn arrival_gap(began_ns: u64, stamp: u64, waited: Duration) -> Duration {
    Duration::from_nanos(stamp.saturating_sub(began_ns)).min(waited)
}

/// How long one futex wait lasts before the closed flag is looked at again:
/// a safety net only, every close wakes waiters at once.
const WAIT_NS: i64 = 200_000_000;

fn wait(word: &AtomicU32, seen: u32) {
    let timeout = libc::timespec {
        tv_sec: 0,
        tv_nsec: WAIT_NS,
    };
    // SAFETY: FUTEX_WAIT (shared, not private: the other process wakes it)
    // on an aligned u32 inside our mapping, with a valid timeout; it only
    // reads the word.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            seen,
            &timeout as *const libc::timespec,
            std::ptr::null::<u32>(),
            0,
        )
    };
}

fn wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on an aligned u32 inside our mapping.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0,
        )
    };
}

/// One side's writing end of a ring. One thread at a time uses it.
pub struct Writer {
    which: usize,
    local: u64,
    published: u64,
}

impl Writer {
    /// Where this writer is: bytes published since the start.
    pub fn position(&self) -> u64 {
        self.published
    }

    /// Free bytes now, checked against what the reader claims to have read.
    fn free(&self, m: &Mapping) -> Result<usize, Error> {
        let read = m.ring(self.which).read.load(Ordering::Acquire);
        let used = self.local.wrapping_sub(read);
        if used > m.capacity as u64 || read > self.published {
            return Err(Error::Corrupt("read counter ahead of the writer"));
        }
        Ok(m.capacity - used as usize)
    }

    /// Copies as much of `bytes` as fits now; returns how much. Not visible
    /// to the reader until [`publish`](Self::publish).
    pub fn offer(&mut self, m: &Mapping, bytes: &[u8]) -> Result<usize, Error> {
        if m.is_closed() {
            return Err(Error::Closed);
        }
        let n = bytes.len().min(self.free(m)?);
        let at = (self.local % m.capacity as u64) as usize;
        let first = n.min(m.capacity - at);
        // SAFETY: `at + first <= capacity` and `n - first < capacity`: both
        // copies stay inside this ring's data area, in bytes the reader has
        // released (free() checked), so nothing reads them meanwhile.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), m.data(self.which).add(at), first);
            std::ptr::copy_nonoverlapping(bytes.as_ptr().add(first), m.data(self.which), n - first);
        }
        self.local += n as u64;
        Ok(n)
    }

    /// Makes what was offered visible, and rings the reader's doorbell.
    pub fn publish(&mut self, m: &Mapping) {
        if self.local == self.published {
            return;
        }
        let ring = m.ring(self.which);
        // Before `write` (Release): a reader that sees the bytes sees this
        // stamp or a later one.
        ring.published_ns.store(now_ns(), Ordering::Relaxed);
        ring.write.store(self.local, Ordering::Release);
        self.published = self.local;
        // SeqCst against the reader's SeqCst increment of `data_sleepers`:
        // either it sees this bump (its futex wait returns at once) or this
        // load sees it asleep. A peer that lies about sleeping only delays
        // its own frames (waits are bounded by WAIT_NS).
        ring.data_seq.fetch_add(1, Ordering::SeqCst);
        if ring.data_sleepers.load(Ordering::SeqCst) != 0
            && ring.data_polled.load(Ordering::SeqCst) == 0
        {
            count(&m.counters(self.which).data_wakes, 1);
            wake(&ring.data_seq);
        }
    }

    /// Waits until the reader frees some space (or the channel closes).
    pub fn wait_for_space(&self, m: &Mapping) -> Result<(), Error> {
        let ring = m.ring(self.which);
        loop {
            let seen = ring.space_seq.load(Ordering::Acquire);
            if m.is_closed() {
                return Err(Error::Closed);
            }
            if self.free(m)? > 0 {
                return Ok(());
            }
            // As for `data_sleepers`: the reader wakes us only when we say
            // we sleep (SeqCst against its bump of `space_seq`).
            ring.space_sleepers.fetch_add(1, Ordering::SeqCst);
            if self.free(m)? == 0 && !m.is_closed() {
                wait(&ring.space_seq, seen);
            }
            ring.space_sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Whether a frame of `len` payload bytes fits whole right now.
    pub fn fits(&self, m: &Mapping, len: usize) -> Result<bool, Error> {
        Ok(self.free(m)? >= len + 4)
    }

    /// Writes one frame made of `parts`, waiting for room as needed.
    pub fn send(&mut self, m: &Mapping, parts: &[&[u8]]) -> Result<(), Error> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let len = u32::try_from(len).map_err(|_| Error::NoMemory(len))?;
        let header = len.to_le_bytes();
        for part in std::iter::once(&header[..]).chain(parts.iter().copied()) {
            let mut rest = part;
            while !rest.is_empty() {
                let n = self.offer(m, rest)?;
                rest = &rest[n..];
                if !rest.is_empty() {
                    self.publish(m);
                    self.wait_for_space(m)?;
                }
            }
        }
        self.publish(m);
        Ok(())
    }
}

/// What [`Reader::take_if`] found.
pub enum Taken<B> {
    /// The wanted frame, consumed.
    Frame(B),
    /// No whole frame yet.
    Nothing,
    /// A whole frame that is not the wanted one, left in the ring.
    Other,
}

/// One side's reading end of a ring. One thread at a time uses it.
pub struct Reader {
    which: usize,
    local: u64,
    /// How long to spin for the next frame before sleeping on the futex.
    budget: SpinBudget,
}

impl Reader {
    /// Bytes readable now, checked against the capacity.
    fn available(&self, m: &Mapping) -> Result<usize, Error> {
        let written = m.ring(self.which).write.load(Ordering::Acquire);
        let available = written.wrapping_sub(self.local);
        if available > m.capacity as u64 {
            return Err(Error::Corrupt("write counter beyond the ring"));
        }
        Ok(available as usize)
    }

    /// Waits for bytes to read (see [`Mapping::wait_beyond`]).
    fn wait_for_data(&mut self, m: &Mapping) -> Result<usize, Error> {
        let local = self.local;
        m.wait_beyond(self.which, || local, &mut self.budget)?;
        self.available(m)
    }

    /// Where this reader is: bytes read since the start.
    pub fn position(&self) -> u64 {
        self.local
    }

    /// Bytes readable now.
    pub fn readable(&self, m: &Mapping) -> Result<usize, Error> {
        self.available(m)
    }

    /// Copies `out.len()` bytes starting `skip` bytes past the read position,
    /// which must be readable; nothing is consumed.
    fn peek(&self, m: &Mapping, skip: usize, out: &mut [u8]) {
        let at = ((self.local + skip as u64) % m.capacity as u64) as usize;
        let first = out.len().min(m.capacity - at);
        // SAFETY: the caller checked that `skip + out.len()` bytes are
        // readable (published by the writer, so not written meanwhile), and
        // `out.len() <= capacity`: both copies stay in the data area.
        unsafe {
            std::ptr::copy_nonoverlapping(m.data(self.which).add(at), out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(
                m.data(self.which),
                out.as_mut_ptr().add(first),
                out.len() - first,
            );
        }
    }

    /// The next frame, when it is whole in the ring now and `wanted` accepts
    /// its first `head` bytes (fewer for a shorter frame): for a caller
    /// polling for its own reply, which must never wait here nor take a
    /// frame that is someone else's.
    pub fn take_if<B: std::ops::DerefMut<Target = [u8]>>(
        &mut self,
        m: &Mapping,
        max: usize,
        head: usize,
        wanted: impl FnOnce(&[u8]) -> bool,
        alloc: impl FnOnce(usize) -> Option<B>,
    ) -> Result<Taken<B>, Error> {
        let available = self.available(m)?;
        if available < 4 {
            return Ok(Taken::Nothing);
        }
        let mut header = [0u8; 4];
        self.peek(m, 0, &mut header);
        let len = u32::from_le_bytes(header) as usize;
        if len > max {
            return Err(Error::Corrupt("frame longer than allowed"));
        }
        if available < 4 + len {
            return Ok(Taken::Nothing);
        }
        let mut first = vec![0u8; head.min(len)];
        self.peek(m, 4, &mut first);
        if !wanted(&first) {
            return Ok(Taken::Other);
        }
        let mut frame = alloc(len).ok_or(Error::NoMemory(len))?;
        if frame.len() != len {
            return Err(Error::NoMemory(len));
        }
        self.peek(m, 4, &mut frame);
        self.local += 4 + len as u64;
        self.release(m);
        count(&m.counters(self.which).frames, 1);
        Ok(Taken::Frame(frame))
    }

    fn release(&mut self, m: &Mapping) {
        let ring = m.ring(self.which);
        if ring.read.load(Ordering::Relaxed) == self.local {
            return;
        }
        ring.read.store(self.local, Ordering::Release);
        // A wake-up is a system call (a costly one under some kernels): only
        // for a writer that sleeps waiting for room, almost never.
        ring.space_seq.fetch_add(1, Ordering::SeqCst);
        if ring.space_sleepers.load(Ordering::SeqCst) != 0 {
            count(&m.counters(self.which).space_wakes, 1);
            wake(&ring.space_seq);
        }
    }

    /// Copies exactly `out.len()` bytes, waiting for them as needed.
    fn fill(&mut self, m: &Mapping, out: &mut [u8]) -> Result<(), Error> {
        let mut done = 0;
        while done < out.len() {
            let available = match self.available(m)? {
                0 => {
                    // Let the writer reuse what was read before sleeping.
                    self.release(m);
                    self.wait_for_data(m)?
                }
                n => n,
            };
            let n = available.min(out.len() - done);
            let at = (self.local % m.capacity as u64) as usize;
            let first = n.min(m.capacity - at);
            // SAFETY: `at + first <= capacity`, `n - first < capacity`: the
            // copies stay inside this ring's data area, in bytes the writer
            // has published (available() checked), into `out[done..done+n]`.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    m.data(self.which).add(at),
                    out.as_mut_ptr().add(done),
                    first,
                );
                std::ptr::copy_nonoverlapping(
                    m.data(self.which),
                    out.as_mut_ptr().add(done + first),
                    n - first,
                );
            }
            self.local += n as u64;
            done += n;
        }
        Ok(())
    }

    /// Reads the next frame into the buffer `alloc` makes for its length
    /// (at most `max` bytes; larger is [`Error::Corrupt`]).
    pub fn recv<B: std::ops::DerefMut<Target = [u8]>>(
        &mut self,
        m: &Mapping,
        max: usize,
        alloc: impl FnOnce(usize) -> Option<B>,
    ) -> Result<B, Error> {
        let mut header = [0u8; 4];
        self.fill(m, &mut header)?;
        let len = u32::from_le_bytes(header) as usize;
        if len > max {
            return Err(Error::Corrupt("frame longer than allowed"));
        }
        let mut frame = alloc(len).ok_or(Error::NoMemory(len))?;
        if frame.len() != len {
            return Err(Error::NoMemory(len));
        }
        self.fill(m, &mut frame)?;
        self.release(m);
        count(&m.counters(self.which).frames, 1);
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(name: &str) -> String {
        format!("/dev/shm/erlang_python-test-{}-{name}", std::process::id())
    }

    #[test]
    fn frames_larger_than_the_ring_stream_through_it() {
        let p = path("stream");
        let vm = std::sync::Arc::new(Mapping::create(&p, 4096).unwrap());
        let worker = Mapping::open(&p).unwrap();
        assert!(
            std::fs::metadata(&p).is_err(),
            "the worker unlinks the file"
        );
        let payload: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let sender = {
            let vm = vm.clone();
            let payload = payload.clone();
            std::thread::spawn(move || {
                let mut w = vm.writer(TO_WORKER);
                w.send(&vm, &[b"small"]).unwrap();
                w.send(&vm, &[&payload[..10], &payload[10..]]).unwrap();
            })
        };
        let mut r = worker.reader(TO_WORKER);
        let alloc = |n| Some(vec![0u8; n]);
        assert_eq!(r.recv(&worker, 1 << 20, alloc).unwrap(), b"small");
        assert_eq!(r.recv(&worker, 1 << 20, alloc).unwrap(), payload);
        sender.join().unwrap();
    }

    #[test]
    fn a_poller_takes_only_the_frame_it_wants_and_only_whole() {
        let p = path("take");
        let vm = Mapping::create(&p, 4096).unwrap();
        let worker = Mapping::open(&p).unwrap();
        let alloc = |n| Some(vec![0u8; n]);
        let mine = |head: &[u8]| head.starts_with(b"mine");
        let mut r = vm.reader(TO_VM);
        assert!(matches!(
            r.take_if(&vm, 100, 4, mine, alloc),
            Ok(Taken::Nothing)
        ));
        let mut w = worker.writer(TO_VM);
        // A frame announced but not yet whole is not taken.
        w.offer(&worker, &8u32.to_le_bytes()).unwrap();
        w.offer(&worker, b"mine").unwrap();
        w.publish(&worker);
        assert!(matches!(
            r.take_if(&vm, 100, 4, mine, alloc),
            Ok(Taken::Nothing)
        ));
        w.offer(&worker, b"-one").unwrap();
        w.publish(&worker);
        w.send(&worker, &[b"other"]).unwrap();
        match r.take_if(&vm, 100, 4, mine, alloc) {
            Ok(Taken::Frame(frame)) => assert_eq!(frame, b"mine-one"),
            _ => panic!("the whole frame was not taken"),
        }
        // Someone else's frame stays for the reader thread, whole.
        assert!(matches!(
            r.take_if(&vm, 100, 4, mine, alloc),
            Ok(Taken::Other)
        ));
        assert_eq!(r.recv(&vm, 100, alloc).unwrap(), b"other");
    }

    #[test]
    fn a_parked_reader_counts_the_gap_to_the_writers_stamp_not_its_wake_up() {
        let p = path("stamp");
        let vm = std::sync::Arc::new(Mapping::create(&p, 4096).unwrap());
        let worker = Mapping::open(&p).unwrap();
        let reading = {
            let vm = vm.clone();
            std::thread::spawn(move || {
                let mut r = vm.reader(TO_VM);
                r.recv(&vm, 100, |n| Some(vec![0u8; n])).unwrap()
            })
        };
        // Once the reader sleeps on the doorbell, the frame comes 20 ms later.
        while worker.ring(TO_VM).data_sleepers.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(20));
        let sent_ns = now_ns();
        worker.writer(TO_VM).send(&worker, &[b"late"]).unwrap();
        assert_eq!(reading.join().unwrap(), b"late");
        let stats = vm.stats(TO_VM);
        assert_eq!(stats.parked, 1);
        let stamp = worker.ring(TO_VM).published_ns.load(Ordering::Relaxed);
        assert!(stamp >= sent_ns, "the writer stamps as it publishes");
        // The wait began before the 20 ms; it ended at the reader's wake-up,
        // after the stamp: the gap counted lies between.
        assert!(stats.arrival_ns >= 20_000_000, "{stats:?}");
        assert!(stats.arrival_ns <= stats.wait_ns, "{stats:?}");
    }

    #[test]
    fn an_arrival_is_the_writers_stamp_within_the_wait() {
        let waited = Duration::from_micros(80);
        // Stamped 5 us into a wait whose wake-up ended it at 80 us.
        assert_eq!(
            arrival_gap(1_000_000, 1_005_000, waited),
            Duration::from_micros(5)
        );
        // Published while the reader decided to wait: at once.
        assert_eq!(arrival_gap(1_000_000, 999_000, waited), Duration::ZERO);
        // A stamp past the wait's end is a lie: the wait's length.
        assert_eq!(arrival_gap(1_000_000, 9_000_000, waited), waited);
    }

    #[test]
    fn lies_in_shared_memory_are_refused_and_close_wakes_readers() {
        let p = path("lies");
        let vm = std::sync::Arc::new(Mapping::create(&p, 4096).unwrap());
        let worker = Mapping::open(&p).unwrap();
        let alloc = |n| Some(vec![0u8; n]);
        // A frame longer than the reader allows.
        let mut w = worker.writer(TO_VM);
        w.send(&worker, &[&[0u8; 100]]).unwrap();
        let mut r = vm.reader(TO_VM);
        assert!(matches!(r.recv(&vm, 10, alloc), Err(Error::Corrupt(_))));
        // A write counter far beyond the ring.
        worker.ring(TO_VM).write.store(1 << 40, Ordering::Release);
        let mut r = vm.reader(TO_VM);
        assert!(matches!(r.recv(&vm, 10, alloc), Err(Error::Corrupt(_))));
        // A blocked reader wakes with Closed.
        let mut r = vm.reader(TO_WORKER);
        let waiting = {
            let vm = vm.clone();
            std::thread::spawn(move || r.recv(&vm, 10, alloc).map(|_| ()))
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        worker.close();
        assert_eq!(waiting.join().unwrap(), Err(Error::Closed));
    }
}
