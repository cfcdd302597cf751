//! The scheduling priority of a thread that runs Python (an own-GIL
//! context's, or a worker of the main interpreter), against the VM's own
//! threads.
//!
//! The thread lives in the VM's process, so the kernel weighs it against
//! the BEAM's schedulers (under autogroup or a cgroup, the whole process
//! shares one CPU share). What made timers fire 135 ms late while two
//! contexts spun on two CPUs, traced with the `sched_switch` and
//! `sys_enter_sched_yield` tracepoints on Linux 6.18 (EEVDF): a scheduler
//! that runs out of work busy-waits (`+sbwt`, on by default) and calls
//! `sched_yield()` every 100 spins. Since "forfeit vruntime on yield", a
//! yield gives up the rest of the thread's slice, so with a CPU-bound
//! thread of equal weight on that CPU, each yield hands the CPU over until
//! the next tick (4 ms at HZ=250). The spin that should take microseconds
//! took ~34 yields x 4 ms, and the scheduler looks at its timers only once
//! the spin ends. A Python thread of much lower weight (19 steps nicer by
//! default, chosen on the Elixir side) leaves the scheduler eligible
//! through its yields: it stays first in line.

/// How a thread that runs Python is scheduled (the Elixir side's
/// `:thread_priority` of own-GIL contexts, and `:worker_thread_priority`
/// of the main interpreter's workers: `:idle`, `:normal` or `{:nice, n}`).
/// Threads Python starts from that thread inherit it.
#[derive(rustler::NifTaggedEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ThreadPriority {
    /// `SCHED_IDLE`: the thread gets the CPU time no other thread of its
    /// group wants, and any waking thread of normal priority preempts it
    /// (of any process: the kernel checks that rule per task, not per
    /// group).
    Idle,
    /// The priority of the thread that starts the thread (a scheduler's).
    Normal,
    /// `n` steps nicer than the thread that starts the thread (1..=19,
    /// capped at 19, the kernel's floor).
    Nice(u8),
}

/// Applies `priority` to the calling thread. Lowering a priority needs no
/// privilege. A no-op outside Linux.
pub(crate) fn apply_to_current_thread(priority: ThreadPriority) -> Result<(), String> {
    match priority {
        ThreadPriority::Normal | ThreadPriority::Nice(0) => Ok(()),
        ThreadPriority::Nice(nicer) => lower_nice(nicer),
        ThreadPriority::Idle => idle(),
    }
}

#[cfg(target_os = "linux")]
fn current_tid() -> libc::pid_t {
    // SAFETY: gettid takes no arguments and cannot fail (the same call
    // sandbox/seccomp.rs makes).
    unsafe { libc::gettid() }
}

#[cfg(target_os = "linux")]
fn lower_nice(nicer: u8) -> Result<(), String> {
    let tid = current_tid() as libc::id_t;
    // SAFETY: getpriority reads the priority of the thread `tid`, this very
    // thread; -1 is a valid answer, so errno tells a failure (cleared
    // first).
    let current = unsafe {
        *libc::__errno_location() = 0;
        libc::getpriority(libc::PRIO_PROCESS, tid)
    };
    // SAFETY: reads this thread's errno.
    if current == -1 && unsafe { *libc::__errno_location() } != 0 {
        return Err(format!(
            "could not read the thread's priority: {}",
            std::io::Error::last_os_error()
        ));
    }
    let wanted = (current + libc::c_int::from(nicer)).min(19);
    // SAFETY: setpriority sets the priority of this very thread; the
    // result is checked.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, wanted) } != 0 {
        return Err(format!(
            "could not lower the thread's priority to nice {wanted}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn idle() -> Result<(), String> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sets the policy of the thread `current_tid()`, this very
    // thread, from a sched_param that lives across the call; SCHED_IDLE
    // takes priority 0. The result is checked.
    if unsafe { libc::sched_setscheduler(current_tid(), libc::SCHED_IDLE, &param) } != 0 {
        return Err(format!(
            "could not set the thread's policy to SCHED_IDLE: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn lower_nice(_nicer: u8) -> Result<(), String> {
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn idle() -> Result<(), String> {
    Ok(())
}
