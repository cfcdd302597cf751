//! Threads that run Python give way to the VM's schedulers.
//!
//! A Python thread lives in the VM's process, so the kernel weighs it
//! against the schedulers: under autogroup (one group per session) or a
//! cgroup, the group's CPU share is split among its threads, and a
//! CPU-bound Python thread at the schedulers' priority leaves a scheduler
//! that wakes for a timer waiting behind it. Measured here on 2 loaded
//! cores: one spinning Python call made 5 ms `Process.sleep`s fire 137 ms
//! late at p99; the same thread reniced to 19 made them 1-3 ms late. The
//! same loop in a separate OS process (its own session) did not disturb the
//! timers at all. A thread Python starts inherits its creator's niceness.

/// How much nicer than the schedulers a Python thread runs: enough that a
/// waking scheduler takes the CPU at once (weight 110 against 1024), not
/// the floor, so Python keeps a share against other niced work.
#[cfg(target_os = "linux")]
const PYTHON_THREAD_NICE: libc::c_int = 10;

/// Lowers the calling thread's priority below the schedulers'. Best effort:
/// a thread whose priority cannot change runs as before.
pub(crate) fn yield_to_schedulers() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid takes no arguments and cannot fail.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::id_t;
        // SAFETY: getpriority/setpriority only read and set the scheduling
        // priority of the thread named by `tid`, this very thread; errno
        // is not consulted (a failure leaves the priority unchanged).
        unsafe {
            let current = libc::getpriority(libc::PRIO_PROCESS, tid);
            libc::setpriority(libc::PRIO_PROCESS, tid, current.max(0) + PYTHON_THREAD_NICE);
        }
    }
}
