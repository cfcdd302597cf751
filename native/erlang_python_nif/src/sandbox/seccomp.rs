//! The kernel half of the sandbox: a seccomp-BPF filter on every thread that
//! can run Python.
//!
//! A filter installed without `SECCOMP_FILTER_FLAG_TSYNC` binds only the
//! calling thread and the threads it creates afterwards. Each thread that
//! runs Python installs it before running any (the interpreter's threads are
//! made by us; the threads Python makes descend from them), so BEAM
//! schedulers, ports and other NIFs keep every system call, while nothing
//! running on Python's threads, whatever the technique (ctypes, cffi, a
//! foreign `.so`, machine code), can:
//!
//! * make a process: `fork`, `vfork`, `clone` without `CLONE_THREAD` refuse
//!   with EPERM, `clone3` answers ENOSYS (its flags sit in memory a filter
//!   cannot read; glibc then falls back to `clone`);
//! * replace the process image: `execve`, `execveat`;
//! * end the process: `exit_group` (a thread still ends with `exit`);
//! * signal the VM: `kill`, `tkill` and `rt_sigqueueinfo` aimed at the VM's
//!   pid, pid 0, -1, its process group or its `erl_child_setup`; `tgkill`
//!   and `rt_tgsigqueueinfo` into either; any signal through a pidfd. Other
//!   positive pids are decided by a supervisor thread (seccomp user
//!   notification): a thread id of the VM is refused, anything else goes on;
//! * have the kernel signal the VM later: a descriptor's owner, lease or
//!   directory notice (`fcntl` `F_SETOWN`, `F_SETOWN_EX`, `F_SETSIG`,
//!   `F_SETLEASE`, `F_NOTIFY`; `ioctl` `FIOSETOWN`, `SIOCSPGRP`), a
//!   terminal's foreground group or typed input (`TIOCSPGRP`, `TIOCSTI`), a
//!   parent-death signal (`prctl(PR_SET_PDEATHSIG)`);
//! * install a signal handler (`rt_sigaction` with a new action), change
//!   resource limits (`setrlimit`, `prlimit64` with a new limit), arm
//!   process timers (`setitimer`, `alarm`, `timer_create`);
//! * close or replace the VM's standard descriptors and its pollsets
//!   (`close`, `dup2`, `dup3`, `close_range`);
//! * change the VM's root directory, mounts or process group (`chroot`,
//!   `pivot_root`, `mount`, `umount2`, `move_mount`, `mount_setattr`,
//!   `setpgid`, `setsid`);
//! * get around the filter: `seccomp` (TSYNC would spread a filter to the
//!   VM's threads), `ptrace`, `process_vm_writev`, `io_uring_setup` (its
//!   operations bypass seccomp).
//!
//! System calls made by another architecture's ABI (i386 `int 0x80`, x32)
//! are refused whole.

use std::ffi::{c_int, c_long, c_ulong, c_void};
use std::os::fd::RawFd;
use std::sync::OnceLock;

use libc::{sock_filter, sock_fprog};

/// `AUDIT_ARCH_*` of the ABI this crate is built for.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// x32 system calls share the x86-64 audit arch but set this bit.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const RET_ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const RET_NOTIFY: u32 = libc::SECCOMP_RET_USER_NOTIF;

const fn ret_errno(errno: c_int) -> u32 {
    libc::SECCOMP_RET_ERRNO | (errno as u32 & libc::SECCOMP_RET_DATA)
}

const EPERM: u32 = ret_errno(libc::EPERM);

/// Offsets into `struct seccomp_data` (little-endian: an argument's low
/// 32 bits come first).
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
const fn offset_arg_low(index: u32) -> u32 {
    16 + 8 * index
}
const fn offset_arg_high(index: u32) -> u32 {
    offset_arg_low(index) + 4
}

/// What the filter must know about the VM, fixed when it is built.
#[derive(Debug, Clone, Default)]
pub struct Vm {
    pub pid: i32,
    pub process_group: i32,
    /// The VM's port spawner, when it has one.
    pub child_setup: Option<i32>,
    /// Descriptors Python must never close or replace.
    pub protected_fds: Vec<u32>,
    /// The VM's socket to `erl_child_setup`, which Python must not read,
    /// write or copy either: messages written to it make `erl_child_setup`
    /// start a program, outside this filter. Only schedulers running a
    /// port's code use it, never a thread that runs Python. (The VM's
    /// self-pipes are written by its signal handler and its poll wake-ups,
    /// which do run on Python's threads, so they cannot be refused here.)
    pub private_fds: Vec<u32>,
}

impl Vm {
    /// The running process.
    pub fn current() -> Vm {
        // SAFETY: getpid and getpgrp have no preconditions.
        let (pid, process_group) = unsafe { (libc::getpid(), libc::getpgrp()) };
        let child_setup = find_child(pid, "erl_child_setup");
        let private_fds = private_descriptors(child_setup);
        let mut protected_fds = protected_descriptors();
        protected_fds.extend(&private_fds);
        protected_fds.sort_unstable();
        protected_fds.dedup();
        Vm {
            pid,
            process_group,
            child_setup,
            protected_fds,
            private_fds,
        }
    }

    /// pids whose signals `kill` must refuse outright.
    fn refused_kill_targets(&self) -> Vec<u32> {
        let mut targets = vec![
            self.pid as u32,
            0,
            (-1i32) as u32,
            (-self.process_group) as u32,
        ];
        if let Some(child) = self.child_setup {
            targets.extend([child as u32, (-child) as u32]);
        }
        targets.dedup();
        targets
    }

    fn refused_thread_groups(&self) -> Vec<u32> {
        let mut groups = vec![self.pid as u32];
        groups.extend(self.child_setup.map(|c| c as u32));
        groups
    }
}

/// A child process of `parent` whose command name is `name`.
fn find_child(parent: i32, name: &str) -> Option<i32> {
    let entries = std::fs::read_dir("/proc").ok()?;
    entries.flatten().find_map(|entry| {
        let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let (head, rest) = stat.rsplit_once(')')?;
        let comm = head.split_once('(')?.1;
        let ppid: i32 = rest.split_whitespace().nth(1)?.parse().ok()?;
        (ppid == parent && comm == name).then_some(pid)
    })
}

/// 0-2, and the VM's pollsets open now: ERTS makes those once and never
/// closes them, so their numbers are never reused for Python's own files.
/// (The VM's other descriptors come and go; the Python-level guard on
/// `os.close` protects those by identity, see `patches`.)
fn protected_descriptors() -> Vec<u32> {
    let mut fds = vec![0, 1, 2];
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        for entry in entries.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let is_pollset = std::fs::read_link(entry.path())
                .map(|target| target.to_string_lossy() == "anon_inode:[eventpoll]")
                .unwrap_or(false);
            if is_pollset && !fds.contains(&fd) {
                fds.push(fd);
            }
        }
    }
    fds.sort_unstable();
    fds
}

/// The descriptors of process `pid`, with what each is open on
/// (`pipe:[12]`, `socket:[34]`, a path).
fn descriptors_of(pid: &str) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let fd = entry.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(entry.path()).ok()?;
            Some((fd, target.to_string_lossy().into_owned()))
        })
        .collect()
}

/// The VM's end of its socket pair with `erl_child_setup` (see
/// [`Vm::private_fds`]): the socket whose inode number is next to one of
/// `erl_child_setup`'s (a pair's two sockets get consecutive numbers).
fn private_descriptors(child_setup: Option<i32>) -> Vec<u32> {
    let Some(child) = child_setup else {
        return Vec::new();
    };
    let inode = |target: &str| -> Option<u64> {
        target
            .strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()
    };
    let own = descriptors_of("self");
    let mut private = Vec::new();
    for (_, target) in descriptors_of(&child.to_string()) {
        let Some(theirs) = inode(&target) else {
            continue;
        };
        for (fd, target) in &own {
            if *fd > 2 && inode(target).is_some_and(|ours| ours.abs_diff(theirs) == 1) {
                private.push(*fd);
            }
        }
    }
    private.sort_unstable();
    private.dedup();
    private
}

/// A BPF program under construction. Every rule keeps the accumulator
/// holding the system call number on the path that does not match it, so
/// rules can follow one another without reloading.
struct Program(Vec<sock_filter>);

impl Program {
    fn stmt(&mut self, code: u32, k: u32) {
        self.0.push(sock_filter {
            code: code as u16,
            jt: 0,
            jf: 0,
            k,
        });
    }

    fn jump(&mut self, code: u32, k: u32, jt: u8, jf: u8) {
        self.0.push(sock_filter {
            code: (libc::BPF_JMP | code | libc::BPF_K) as u16,
            jt,
            jf,
            k,
        });
    }

    fn load(&mut self, offset: u32) {
        self.stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset);
    }

    fn ret(&mut self, action: u32) {
        self.stmt(libc::BPF_RET | libc::BPF_K, action);
    }

    /// If the accumulator equals `value`, return `action`.
    fn ret_if(&mut self, value: u32, action: u32) {
        self.jump(libc::BPF_JEQ, value, 0, 1);
        self.ret(action);
    }

    /// For system call `nr`, run `handler`, which must end in a return on
    /// every path; other calls skip it (with an unconditional jump, whose
    /// offset has no 255 limit).
    fn on(&mut self, nr: c_long, handler: impl FnOnce(&mut Program)) {
        self.jump(libc::BPF_JEQ, nr as u32, 1, 0);
        let skip = self.0.len();
        self.stmt(libc::BPF_JMP | libc::BPF_JA, 0);
        let start = self.0.len();
        handler(self);
        self.0[skip].k = (self.0.len() - start) as u32;
    }

    /// Allow when 64-bit argument `index` is zero (a NULL pointer), else EPERM.
    fn allow_only_null(&mut self, index: u32) {
        self.load(offset_arg_low(index));
        self.jump(libc::BPF_JEQ, 0, 0, 3);
        self.load(offset_arg_high(index));
        self.jump(libc::BPF_JEQ, 0, 0, 1);
        self.ret(RET_ALLOW);
        self.ret(EPERM);
    }

    /// Allow signal 0 (an existence check) in argument `index`.
    fn allow_signal_zero(&mut self, index: u32) {
        self.load(offset_arg_low(index));
        self.ret_if(0, RET_ALLOW);
    }

    /// EPERM when the low half of argument `index` is one of `values`,
    /// else `otherwise`.
    fn refuse_values(&mut self, index: u32, values: &[u32], otherwise: u32) {
        self.refuse_args(&[(index, values)], otherwise);
    }

    /// EPERM when, for any `(index, values)`, the low half of argument
    /// `index` is one of `values`; else `otherwise`.
    fn refuse_args(&mut self, rules: &[(u32, &[u32])], otherwise: u32) {
        for (index, values) in rules {
            self.load(offset_arg_low(*index));
            for value in *values {
                self.ret_if(*value, EPERM);
            }
        }
        self.ret(otherwise);
    }
}

/// The rules every filter starts with: a system call of another ABI is
/// refused, and no process is made or replaced, whatever the technique
/// (`fork`, `vfork`, `clone` without `CLONE_THREAD`, `execve`, `execveat`:
/// EPERM; `clone3`: ENOSYS, its flags sit in memory a filter cannot read,
/// so glibc falls back to `clone`). The accumulator holds the call number
/// afterwards.
fn refuse_new_processes(p: &mut Program) {
    p.load(OFFSET_ARCH);
    p.jump(libc::BPF_JEQ, AUDIT_ARCH, 1, 0);
    p.ret(EPERM);
    p.load(OFFSET_NR);
    #[cfg(target_arch = "x86_64")]
    {
        p.jump(libc::BPF_JGE, X32_SYSCALL_BIT, 0, 1);
        p.ret(EPERM);
    }
    #[cfg(target_arch = "x86_64")]
    {
        p.ret_if(libc::SYS_fork as u32, EPERM);
        p.ret_if(libc::SYS_vfork as u32, EPERM);
    }
    p.ret_if(libc::SYS_execve as u32, EPERM);
    p.ret_if(libc::SYS_execveat as u32, EPERM);
    p.ret_if(libc::SYS_clone3 as u32, ret_errno(libc::ENOSYS));
    p.on(libc::SYS_clone, |p| {
        p.load(offset_arg_low(0));
        p.jump(libc::BPF_JSET, libc::CLONE_THREAD as u32, 0, 1);
        p.ret(RET_ALLOW);
        p.ret(EPERM);
    });
}

/// `fcntl` commands that make the kernel signal a process later, on an
/// event: a descriptor's owner gets SIGIO (whose default action ends a
/// process) when I/O is possible on it (`F_SETOWN`, `F_SETOWN_EX`, and
/// `F_SETSIG` for which signal); a lease's holder when another process
/// opens the file, a directory watcher (`F_NOTIFY`) when the directory
/// changes: both signal the process that asks, which on the VM's threads
/// is the VM.
const SIGNALLING_FCNTLS: [u32; 5] = [
    8,    // F_SETOWN
    15,   // F_SETOWN_EX
    10,   // F_SETSIG
    1024, // F_SETLEASE
    1026, // F_NOTIFY
];

/// `ioctl` requests to the same effect: a socket's owner (`FIOSETOWN`,
/// `SIOCSPGRP`), and a terminal's foreground process group (`TIOCSPGRP`:
/// a VM put in the background is stopped by SIGTTIN when it next reads its
/// terminal) or input typed into it (`TIOCSTI`).
const SIGNALLING_IOCTLS: [u32; 4] = [
    0x8901, // FIOSETOWN
    0x8902, // SIOCSPGRP
    0x5410, // TIOCSPGRP
    0x5412, // TIOCSTI
];

/// Refuses (EPERM) the ways above to have the kernel signal a process
/// later, and a parent-death signal (`prctl(PR_SET_PDEATHSIG)`, sent to
/// the whole process when its parent's thread ends): the signals that
/// `kill` rules cannot see, since no `kill` is made.
/// `fcntl` and `ioctl` on the descriptors `private` are refused whole
/// too (one copies a descriptor, `F_DUPFD`).
fn refuse_deferred_signals(p: &mut Program, private: &[u32]) {
    p.on(libc::SYS_fcntl, |p| {
        p.refuse_args(&[(0, private), (1, &SIGNALLING_FCNTLS)], RET_ALLOW)
    });
    p.on(libc::SYS_ioctl, |p| {
        p.refuse_args(&[(0, private), (1, &SIGNALLING_IOCTLS)], RET_ALLOW)
    });
    p.on(libc::SYS_prctl, |p| {
        p.refuse_values(0, &[libc::PR_SET_PDEATHSIG as u32], RET_ALLOW)
    });
}

/// The isolated worker's filter: [`refuse_new_processes`], and signals to
/// process `own` (the worker) only. A worker is its own OS process, so
/// unlike the VM's filter it may exit, signal itself and set limits: ending
/// it is what containment is for. But its parent is the VM's
/// `erl_child_setup`, whose death takes the VM down, and it shares
/// machines (and usually a process group) with the VM and the other
/// contexts' workers: a signal to any other process, to a process group
/// (pid 0 or negative) or to every process (-1) is refused with EPERM, as
/// are `tkill` (a bare thread id may be another process's), pidfd signals
/// and [`refuse_deferred_signals`]' routes (an owner can name any pid).
/// Signal 0, an existence check, always goes through.
#[allow(dead_code)]
fn process_filter(own: u32) -> Vec<sock_filter> {
    let mut p = Program(Vec::with_capacity(64));
    refuse_new_processes(&mut p);
    // Each names its process first; the signal is the argument given.
    for (nr, signal) in [
        (libc::SYS_kill, 1),
        (libc::SYS_rt_sigqueueinfo, 1),
        (libc::SYS_tgkill, 2),
        (libc::SYS_rt_tgsigqueueinfo, 2),
    ] {
        p.on(nr, |p| {
            p.allow_signal_zero(signal);
            p.load(offset_arg_low(0));
            p.ret_if(own, RET_ALLOW);
            p.ret(EPERM);
        });
    }
    p.on(libc::SYS_tkill, |p| {
        p.allow_signal_zero(1);
        p.ret(EPERM);
    });
    p.on(libc::SYS_pidfd_send_signal, |p| {
        p.allow_signal_zero(1);
        p.ret(EPERM);
    });
    refuse_deferred_signals(&mut p, &[]);
    // Root could otherwise reach into the VM's memory.
    p.ret_if(libc::SYS_ptrace as u32, EPERM);
    p.ret_if(libc::SYS_process_vm_writev as u32, EPERM);
    p.ret(RET_ALLOW);
    p.0
}

/// Sets no_new_privs and installs [`process_filter`] for this process on
/// every thread of it (TSYNC). Used by the isolated worker
/// (`worker/seccomp.rs`) only.
#[allow(dead_code)]
pub fn install_process_filter() -> Result<(), String> {
    set_no_new_privs()?;
    // SAFETY: getpid has no preconditions. The worker cannot fork under
    // this filter, so its pid stays what the filter was built with.
    let own = unsafe { libc::getpid() } as u32;
    load(
        &process_filter(own),
        libc::SECCOMP_FILTER_FLAG_TSYNC as c_ulong,
    )
    .map(|_| ())
    .map_err(|err| format!("seccomp: {err}"))
}

fn set_no_new_privs() -> Result<(), String> {
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) only sets a flag on the calling
    // thread (and, inherited, on threads it starts later).
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!(
            "prctl(PR_SET_NO_NEW_PRIVS): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// The filter for the VM `vm`. `unknown_pid` is the action for a signal to
/// a positive pid that is not refused outright: user notification (the
/// supervisor decides) or, without a supervisor, EPERM.
fn build(vm: &Vm, unknown_pid: u32) -> Vec<sock_filter> {
    let mut p = Program(Vec::with_capacity(256));
    refuse_new_processes(&mut p);
    p.ret_if(libc::SYS_exit_group as u32, EPERM);

    // Signals aimed at the VM.
    let refused = vm.refused_kill_targets();
    let groups = vm.refused_thread_groups();
    for nr in [libc::SYS_kill, libc::SYS_rt_sigqueueinfo] {
        p.on(nr, |p| {
            p.allow_signal_zero(1);
            p.load(offset_arg_low(0));
            for value in &refused {
                p.ret_if(*value, EPERM);
            }
            // Other process groups: the VM is not in them.
            p.jump(libc::BPF_JSET, 0x8000_0000, 0, 1);
            p.ret(RET_ALLOW);
            p.ret(unknown_pid);
        });
    }
    p.on(libc::SYS_tkill, |p| {
        p.allow_signal_zero(1);
        p.refuse_values(0, &refused, unknown_pid);
    });
    p.on(libc::SYS_tgkill, |p| {
        p.allow_signal_zero(2);
        p.refuse_values(0, &groups, RET_ALLOW);
    });
    p.on(libc::SYS_rt_tgsigqueueinfo, |p| {
        p.allow_signal_zero(2);
        p.refuse_values(0, &groups, RET_ALLOW);
    });
    p.on(libc::SYS_pidfd_send_signal, |p| {
        p.allow_signal_zero(1);
        p.ret(EPERM);
    });
    refuse_deferred_signals(&mut p, &vm.private_fds);

    // Signal handlers, limits, process timers.
    p.on(libc::SYS_rt_sigaction, |p| p.allow_only_null(1));
    p.on(libc::SYS_prlimit64, |p| p.allow_only_null(2));
    p.ret_if(libc::SYS_setrlimit as u32, EPERM);
    p.ret_if(libc::SYS_setitimer as u32, EPERM);
    #[cfg(target_arch = "x86_64")]
    p.ret_if(libc::SYS_alarm as u32, EPERM);
    p.ret_if(libc::SYS_timer_create as u32, EPERM);

    // The VM's descriptors: none closed or replaced, its own channels not
    // read, written or copied either.
    let fds = &vm.protected_fds;
    let private = &vm.private_fds;
    p.on(libc::SYS_close, |p| p.refuse_values(0, fds, RET_ALLOW));
    #[cfg(target_arch = "x86_64")]
    p.on(libc::SYS_dup2, |p| {
        p.refuse_args(&[(0, private), (1, fds)], RET_ALLOW)
    });
    p.on(libc::SYS_dup3, |p| {
        p.refuse_args(&[(0, private), (1, fds)], RET_ALLOW)
    });
    if !private.is_empty() {
        for (nr, fd_args) in PRIVATE_FD_CALLS {
            p.on(nr, |p| {
                let rules: Vec<(u32, &[u32])> = fd_args
                    .iter()
                    .map(|index| (*index, private.as_slice()))
                    .collect();
                p.refuse_args(&rules, RET_ALLOW)
            });
        }
        p.ret_if(libc::SYS_pidfd_getfd as u32, EPERM);
    }
    let highest = fds.iter().copied().max().unwrap_or(2);
    p.on(libc::SYS_close_range, |p| {
        // A range starting at or below the highest protected descriptor is
        // refused whole; a caller that falls back on closing one by one
        // meets the `close` rule, which spares the protected ones.
        p.load(offset_arg_low(0));
        p.jump(libc::BPF_JGT, highest, 0, 1);
        p.ret(RET_ALLOW);
        p.ret(EPERM);
    });

    // The process's root, mounts and process group, which are the VM's:
    // after a chroot the VM can no longer load its code, a mount can hide
    // it, and a new process group or session takes the VM out of the one
    // that manages it (a shell's job control, `timeout`).
    for nr in [
        libc::SYS_chroot,
        libc::SYS_pivot_root,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_move_mount,
        libc::SYS_mount_setattr,
        libc::SYS_setpgid,
        libc::SYS_setsid,
    ] {
        p.ret_if(nr as u32, EPERM);
    }

    // Ways around the filter.
    p.ret_if(libc::SYS_seccomp as u32, EPERM);
    p.ret_if(libc::SYS_ptrace as u32, EPERM);
    p.ret_if(libc::SYS_process_vm_writev as u32, EPERM);
    p.ret_if(libc::SYS_io_uring_setup as u32, EPERM);

    p.ret(RET_ALLOW);
    p.0
}

/// The system calls that read, write or copy a descriptor, with the
/// arguments that name one (`fcntl`, `ioctl`, `dup2` and `dup3` have rules
/// of their own).
const PRIVATE_FD_CALLS: [(c_long, &[u32]); 23] = [
    (libc::SYS_read, &[0]),
    (libc::SYS_write, &[0]),
    (libc::SYS_readv, &[0]),
    (libc::SYS_writev, &[0]),
    (libc::SYS_pread64, &[0]),
    (libc::SYS_pwrite64, &[0]),
    (libc::SYS_preadv, &[0]),
    (libc::SYS_pwritev, &[0]),
    (libc::SYS_preadv2, &[0]),
    (libc::SYS_pwritev2, &[0]),
    (libc::SYS_sendto, &[0]),
    (libc::SYS_recvfrom, &[0]),
    (libc::SYS_sendmsg, &[0]),
    (libc::SYS_recvmsg, &[0]),
    (libc::SYS_sendmmsg, &[0]),
    (libc::SYS_recvmmsg, &[0]),
    (libc::SYS_shutdown, &[0]),
    (libc::SYS_dup, &[0]),
    (libc::SYS_splice, &[0, 2]),
    (libc::SYS_tee, &[0, 1]),
    (libc::SYS_sendfile, &[0, 1]),
    (libc::SYS_vmsplice, &[0]),
    (libc::SYS_copy_file_range, &[0, 2]),
];

/// How the filter of a thread decides signals to pids it does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalMode {
    /// A supervisor thread tells the VM's threads from other processes.
    Supervised,
    /// The kernel has no user notification: all such signals are refused.
    RefuseAll,
}

/// Sets no_new_privs and installs the filter on the calling thread only.
/// Returns how signals to other processes are handled.
pub fn install(vm: &Vm) -> Result<SignalMode, String> {
    set_no_new_privs()?;
    let supervisor = supervisor();
    if supervisor.is_some() {
        let program = build(vm, RET_NOTIFY);
        match load(&program, libc::SECCOMP_FILTER_FLAG_NEW_LISTENER) {
            Ok(listener) => {
                super::descriptors::protect(listener as i64);
                if let Some(supervisor) = supervisor {
                    supervisor.watch(listener);
                }
                return Ok(SignalMode::Supervised);
            }
            // No user notification here: refuse instead (below).
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {}
            Err(err) => return Err(format!("seccomp: {err}")),
        }
    }
    let program = build(vm, EPERM);
    load(&program, 0).map_err(|err| format!("seccomp: {err}"))?;
    Ok(SignalMode::RefuseAll)
}

/// Loads `program` on this thread; returns the listener descriptor when
/// `flags` asks for one.
fn load(program: &[sock_filter], flags: c_ulong) -> std::io::Result<RawFd> {
    let fprog = sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut sock_filter,
    };
    // SAFETY: `fprog` points at `program`, alive for the call; the kernel
    // copies the program. Without TSYNC only this thread is affected.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as c_ulong,
            flags,
            &fprog as *const sock_fprog,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(rc as RawFd)
    }
}

/// Whether this thread runs under our filter: two harmless probes whose
/// answers only the filter gives (the kernel itself answers EINVAL for a
/// zero-sized `clone3` and EFAULT for `execve(NULL)`, neither of which
/// starts anything).
pub fn active_on_this_thread() -> bool {
    // SAFETY: both calls fail before doing anything, with or without the
    // filter: clone3 with size 0 is invalid, execve of NULL faults.
    let (clone3, clone3_errno, execve, execve_errno) = unsafe {
        let clone3 = libc::syscall(libc::SYS_clone3, std::ptr::null::<c_void>(), 0usize);
        let clone3_errno = *libc::__errno_location();
        let execve = libc::syscall(
            libc::SYS_execve,
            std::ptr::null::<c_void>(),
            std::ptr::null::<c_void>(),
            std::ptr::null::<c_void>(),
        );
        let execve_errno = *libc::__errno_location();
        (clone3, clone3_errno, execve, execve_errno)
    };
    clone3 == -1 && clone3_errno == libc::ENOSYS && execve == -1 && execve_errno == libc::EPERM
}

// ---------------------------------------------------------------------------
// The supervisor: decides signals to pids the filter cannot judge alone.
// ---------------------------------------------------------------------------

pub struct Supervisor {
    sender: crossbeam_channel::Sender<RawFd>,
    wake: RawFd,
}

impl Supervisor {
    fn watch(&self, listener: RawFd) {
        if self.sender.send(listener).is_ok() {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to our eventfd.
            unsafe { libc::write(self.wake, &one as *const u64 as *const c_void, 8) };
        }
    }
}

/// The supervisor thread, started on first use. It must be started by a
/// thread that has no filter yet, so it never runs under one itself.
fn supervisor() -> Option<&'static Supervisor> {
    static SUPERVISOR: OnceLock<Option<Supervisor>> = OnceLock::new();
    SUPERVISOR
        .get_or_init(|| {
            // SAFETY: eventfd has no preconditions; the descriptor is owned
            // by the supervisor for the life of the process.
            let wake = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
            if wake < 0 {
                return None;
            }
            super::descriptors::protect(wake as i64);
            let (sender, receiver) = crossbeam_channel::unbounded();
            std::thread::Builder::new()
                .name("erlang_python_sandbox".into())
                .stack_size(256 * 1024)
                .spawn(move || supervise(wake, receiver))
                .ok()?;
            Some(Supervisor { sender, wake })
        })
        .as_ref()
}

fn supervise(wake: RawFd, receiver: crossbeam_channel::Receiver<RawFd>) {
    let me = std::process::id() as i32;
    let child_setup = find_child(me, "erl_child_setup");
    let mut listeners: Vec<RawFd> = Vec::new();
    loop {
        let mut polled: Vec<libc::pollfd> = std::iter::once(wake)
            .chain(listeners.iter().copied())
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `polled` is a live array of `polled.len()` pollfds.
        let ready = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, -1) };
        if ready < 0 {
            continue;
        }
        if polled[0].revents & libc::POLLIN != 0 {
            let mut count: u64 = 0;
            // SAFETY: reads 8 bytes into a live u64 from our eventfd.
            unsafe { libc::read(wake, &mut count as *mut u64 as *mut c_void, 8) };
            listeners.extend(receiver.try_iter());
        }
        let mut gone = Vec::new();
        for entry in &polled[1..] {
            if entry.revents & libc::POLLIN != 0 {
                answer(entry.fd, me, child_setup);
            } else if entry.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                // Every thread under this filter has ended (HUP), or Python
                // closed the listener (NVAL: then its signals fail ENOSYS).
                if entry.revents & libc::POLLNVAL == 0 {
                    // SAFETY: the listener is ours and nothing else uses it.
                    unsafe { libc::close(entry.fd) };
                }
                gone.push(entry.fd);
            }
        }
        listeners.retain(|fd| !gone.contains(fd));
    }
}

/// Receives one notification from `listener` and answers it: a signal to a
/// thread of this process or to `erl_child_setup` fails with EPERM; any
/// other goes on. The decision rests on register values (pid, signal) that
/// the caller cannot change after the fact.
fn answer(listener: RawFd, me: i32, child_setup: Option<i32>) {
    // SAFETY: both structs are plain C data, valid when zeroed.
    let mut request: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: RECV fills `request`, which is large enough (the kernel's
    // struct is this size since 5.0 and only grows behind a sizes query
    // that our fields do not depend on).
    if unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut request) } != 0 {
        return;
    }
    let target = request.data.args[0] as u32 as i32;
    let refuse = target == me
        || Some(target) == child_setup
        || std::path::Path::new(&format!("/proc/self/task/{target}")).exists();
    // SAFETY: as above.
    let mut response: libc::seccomp_notif_resp = unsafe { std::mem::zeroed() };
    response.id = request.id;
    if refuse {
        response.error = -libc::EPERM;
    } else {
        response.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;
    }
    // SAFETY: SEND reads the live `response`; an error (the caller died
    // meanwhile) needs no handling.
    unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut response) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errno() -> c_int {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    fn in_fresh_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::spawn(f).join().expect("thread panicked")
    }

    #[test]
    fn process_filter_jumps_stay_inside_and_it_ends_allowing() {
        let program = process_filter(100);
        for (at, insn) in program.iter().enumerate() {
            if insn.code as u32 & 0x07 == libc::BPF_JMP {
                let furthest = if insn.code as u32 & 0xf0 == libc::BPF_JA {
                    at + 1 + insn.k as usize
                } else {
                    at + 1 + insn.jt.max(insn.jf) as usize
                };
                assert!(furthest < program.len(), "jump at {at} leaves the program");
            }
        }
        assert_eq!(program.last().map(|i| i.k), Some(RET_ALLOW));
    }

    #[test]
    fn program_fits_and_every_jump_stays_inside() {
        let vm = Vm {
            pid: 100,
            process_group: 100,
            child_setup: Some(101),
            protected_fds: (0..200).collect(),
            private_fds: (3..40).collect(),
        };
        let program = build(&vm, RET_NOTIFY);
        assert!(program.len() < 4096, "{} instructions", program.len());
        for (index, insn) in program.iter().enumerate() {
            let class = insn.code as u32 & 0x07;
            if class == libc::BPF_JMP {
                let op = insn.code as u32 & 0xf0;
                let reach = if op == libc::BPF_JA {
                    insn.k as usize
                } else {
                    insn.jt.max(insn.jf) as usize
                };
                assert!(index + 1 + reach < program.len(), "jump at {index} leaves");
            }
        }
        assert_eq!(
            program.last().map(|i| i.k),
            Some(RET_ALLOW),
            "default allow"
        );
    }

    #[test]
    fn the_process_filter_lets_signals_reach_its_own_process_only() {
        // Thread-only here (no TSYNC), so the test process keeps its calls.
        // SIGURG is ignored by default: one that got through harms nothing.
        let (to_parent, probe, to_group, to_self, tgkill_self, tgkill_parent, tkill_self) =
            in_fresh_thread(|| {
                // SAFETY: getpid/getppid have no preconditions.
                let (own, parent) = unsafe { (libc::getpid(), libc::getppid()) };
                set_no_new_privs().expect("no_new_privs");
                load(&process_filter(own as u32), 0).expect("load");
                // SAFETY: kill, tgkill and tkill only send signals; each
                // result is read with its errno at once.
                let outcome = |rc: c_long| if rc == 0 { 0 } else { errno() };
                unsafe {
                    (
                        outcome(libc::kill(parent, libc::SIGURG).into()),
                        outcome(libc::kill(parent, 0).into()),
                        outcome(libc::kill(0, libc::SIGURG).into()),
                        outcome(libc::kill(own, libc::SIGURG).into()),
                        outcome(libc::syscall(libc::SYS_tgkill, own, own, libc::SIGURG)),
                        outcome(libc::syscall(
                            libc::SYS_tgkill,
                            parent,
                            parent,
                            libc::SIGURG,
                        )),
                        outcome(libc::syscall(libc::SYS_tkill, own, libc::SIGURG)),
                    )
                }
            });
        assert_eq!(to_parent, libc::EPERM, "a signal to the parent");
        assert_eq!(probe, 0, "signal 0 checks existence");
        assert_eq!(to_group, libc::EPERM, "a signal to the process group");
        assert_eq!(to_self, 0, "a signal to itself");
        assert_eq!(tgkill_self, 0, "tgkill into itself");
        assert_eq!(tgkill_parent, libc::EPERM, "tgkill into the parent");
        assert_eq!(tkill_self, libc::EPERM, "tkill, by bare thread id");
    }

    #[test]
    fn the_filter_binds_its_thread_and_the_threads_it_makes_only() {
        let sibling_before = active_on_this_thread();
        let outcome = in_fresh_thread(|| {
            let vm = Vm::current();
            let mode = install(&vm).expect("install");
            let here = active_on_this_thread();
            // SAFETY: fork in a filtered thread fails before anything runs;
            // should it not, the child leaves at once.
            let forked = unsafe { libc::fork() };
            if forked == 0 {
                // SAFETY: leaving the child without running anything.
                unsafe { libc::_exit(0) };
            }
            let fork_errno = errno();
            let inherited = std::thread::spawn(|| {
                // SAFETY: as above.
                let forked = unsafe { libc::fork() };
                if forked == 0 {
                    // SAFETY: as above.
                    unsafe { libc::_exit(0) };
                }
                (active_on_this_thread(), forked, errno())
            })
            .join()
            .unwrap();
            // SAFETY: signal 0 only checks that the process exists.
            let probe = unsafe { libc::kill(libc::getpid(), 0) };
            // SAFETY: refused by the filter (EPERM) before delivery.
            let kill_self = unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            let kill_errno = errno();
            (
                mode, here, forked, fork_errno, inherited, probe, kill_self, kill_errno,
            )
        });
        let (mode, here, forked, fork_errno, inherited, probe, kill_self, kill_errno) = outcome;
        assert_eq!(mode, SignalMode::Supervised);
        assert!(here, "the filter is active on its thread");
        assert_eq!((forked, fork_errno), (-1, libc::EPERM));
        assert_eq!(
            inherited,
            (true, -1, libc::EPERM),
            "inherited by threads it makes"
        );
        assert_eq!(probe, 0, "signal 0 passes");
        assert_eq!((kill_self, kill_errno), (-1, libc::EPERM));
        // This thread and a new one from it have no filter.
        assert!(!sibling_before && !active_on_this_thread());
        assert!(!in_fresh_thread(active_on_this_thread));
    }

    /// errno of each deferred-signal route on this thread (0: allowed).
    fn deferred_signal_errnos() -> [c_int; 5] {
        let outcome = |rc: c_long| if rc == 0 { 0 } else { errno() };
        let mut fds = [0; 2];
        // SAFETY: socketpair fills `fds`; each call below gets descriptors
        // it made or a NULL, and is refused by the filter before it acts.
        unsafe {
            assert_eq!(
                libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()),
                0
            );
            let own = libc::getpid();
            let errnos = [
                outcome(libc::fcntl(fds[0], libc::F_SETOWN, own).into()),
                outcome(libc::fcntl(fds[0], 10 /* F_SETSIG */, libc::SIGKILL).into()),
                outcome(libc::ioctl(fds[0], 0x8901, &own).into()),
                outcome(libc::fcntl(fds[0], libc::F_GETFL).into()).min(0),
                outcome(libc::prctl(libc::PR_SET_PDEATHSIG, 0).into()),
            ];
            libc::close(fds[0]);
            libc::close(fds[1]);
            errnos
        }
    }

    #[test]
    fn descriptor_owners_and_death_signals_are_refused_by_both_filters() {
        let embedded = in_fresh_thread(|| {
            install(&Vm::current()).expect("install");
            deferred_signal_errnos()
        });
        let worker = in_fresh_thread(|| {
            // SAFETY: getpid has no preconditions.
            let own = unsafe { libc::getpid() } as u32;
            set_no_new_privs().expect("no_new_privs");
            load(&process_filter(own), 0).expect("load");
            deferred_signal_errnos()
        });
        // F_GETFL (4th) reads: allowed.
        let expected = [libc::EPERM, libc::EPERM, libc::EPERM, 0, libc::EPERM];
        assert_eq!(embedded, expected, "the VM's threads");
        assert_eq!(worker, expected, "an isolated worker");
        assert_eq!(
            in_fresh_thread(deferred_signal_errnos),
            [0; 5],
            "unfiltered"
        );
    }

    #[test]
    fn a_private_descriptor_is_neither_read_written_nor_copied() {
        // A socket pair standing for the VM's with erl_child_setup: one end
        // named private, the other an ordinary descriptor of Python's.
        let mut pair = [0; 2];
        // SAFETY: socketpair fills the two descriptors.
        assert_eq!(
            unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, pair.as_mut_ptr()) },
            0
        );
        let mut vm = Vm::current();
        vm.private_fds = vec![pair[0] as u32];
        let errnos = in_fresh_thread(move || {
            install(&vm).expect("install");
            let outcome = |rc: c_long| if rc < 0 { errno() } else { 0 };
            let byte = [7u8];
            // SAFETY: each call gets live descriptors and a live buffer;
            // those on the private end are refused before the kernel acts.
            unsafe {
                [
                    outcome(libc::write(pair[0], byte.as_ptr().cast(), 1) as c_long),
                    outcome(libc::send(pair[0], byte.as_ptr().cast(), 1, 0) as c_long),
                    outcome(libc::dup(pair[0]).into()),
                    outcome(libc::fcntl(pair[0], libc::F_DUPFD, 100).into()),
                    outcome(libc::syscall(libc::SYS_pidfd_getfd, 0, pair[0], 0)),
                    outcome(libc::write(pair[1], byte.as_ptr().cast(), 1) as c_long),
                ]
            }
        });
        // SAFETY: the test's own pair, closed once.
        unsafe {
            libc::close(pair[0]);
            libc::close(pair[1]);
        }
        assert_eq!(
            errnos,
            [
                libc::EPERM,
                libc::EPERM,
                libc::EPERM,
                libc::EPERM,
                libc::EPERM,
                0
            ]
        );
    }

    #[test]
    fn the_vm_socket_to_erl_child_setup_is_found_by_its_neighbouring_inode() {
        // This test process is no VM: it has no erl_child_setup, so none.
        assert_eq!(private_descriptors(None), Vec::<u32>::new());
        // A child holding one end of a pair stands for erl_child_setup.
        let mut pair = [0; 2];
        // SAFETY: socketpair fills the two descriptors.
        assert_eq!(
            unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, pair.as_mut_ptr()) },
            0
        );
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            // SAFETY: `pair[1]` is ours and open; the Stdio takes it over.
            .stdin(unsafe { <std::process::Stdio as std::os::fd::FromRawFd>::from_raw_fd(pair[1]) })
            .spawn()
            .expect("sleep");
        let found = private_descriptors(Some(child.id() as i32));
        child.kill().ok();
        child.wait().ok();
        // SAFETY: our end, closed once.
        unsafe { libc::close(pair[0]) };
        assert_eq!(found, vec![pair[0] as u32]);
    }

    #[test]
    fn the_root_mounts_and_process_group_stay_the_vms() {
        // Each call would change nothing or fail with ENOENT unfiltered.
        let errnos = in_fresh_thread(|| {
            install(&Vm::current()).expect("install");
            let outcome = |rc: c_long| if rc == 0 { 0 } else { errno() };
            let missing = c"/nonexistent-erlang-python".as_ptr();
            // SAFETY: each call gets valid C strings or NULLs and is refused
            // by the filter before the kernel looks at them.
            unsafe {
                [
                    outcome(libc::chroot(c"/".as_ptr()).into()),
                    outcome(libc::setpgid(0, libc::getpgrp()).into()),
                    outcome(libc::setsid().into()),
                    outcome(
                        libc::mount(
                            c"none".as_ptr(),
                            missing,
                            c"tmpfs".as_ptr(),
                            0,
                            std::ptr::null(),
                        )
                        .into(),
                    ),
                    outcome(libc::umount2(missing, 0).into()),
                    outcome(libc::syscall(libc::SYS_pivot_root, missing, missing)),
                ]
            }
        });
        assert_eq!(errnos, [libc::EPERM; 6]);
    }

    #[test]
    fn signals_to_other_processes_go_on_and_to_our_threads_do_not() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let child_pid = child.id() as i32;
        // SAFETY: gettid has no preconditions.
        let my_tid = unsafe { libc::gettid() };
        let (to_thread, thread_errno, to_child) = in_fresh_thread(move || {
            install(&Vm::current()).expect("install");
            // SAFETY: refused (a thread of this process) before delivery.
            let to_thread = unsafe { libc::kill(my_tid, libc::SIGKILL) };
            let thread_errno = errno();
            // SAFETY: ends our own `sleep` child.
            let to_child = unsafe { libc::kill(child_pid, libc::SIGTERM) };
            (to_thread, thread_errno, to_child)
        });
        let status = child.wait().expect("wait");
        assert_eq!((to_thread, thread_errno), (-1, libc::EPERM));
        assert_eq!(to_child, 0);
        assert!(!status.success(), "the child was ended by the signal");
    }

    #[test]
    fn exec_and_raw_clone_are_refused_and_threads_still_start() {
        let (exec, exec_errno, clone, clone_errno, clone3_errno, thread_ok) =
            in_fresh_thread(|| {
                install(&Vm::current()).expect("install");
                let exec = std::process::Command::new("/bin/false").status();
                // SAFETY: a raw clone without CLONE_THREAD is refused before
                // it runs; should it run, the child leaves at once.
                let clone =
                    unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as c_ulong, 0, 0, 0, 0) };
                if clone == 0 {
                    // SAFETY: leaving the child.
                    unsafe { libc::_exit(0) };
                }
                let clone_errno = errno();
                // SAFETY: refused with ENOSYS before reading its arguments.
                unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<c_void>(), 88usize) };
                let clone3_errno = errno();
                let thread_ok = std::thread::spawn(|| 7).join().ok() == Some(7);
                (
                    exec.is_err(),
                    exec.err().and_then(|e| e.raw_os_error()),
                    clone,
                    clone_errno,
                    clone3_errno,
                    thread_ok,
                )
            });
        assert!(exec, "spawning /bin/false must fail");
        assert_eq!(exec_errno, Some(libc::EPERM));
        assert_eq!((clone, clone_errno), (-1, libc::EPERM));
        assert_eq!(clone3_errno, libc::ENOSYS);
        assert!(
            thread_ok,
            "glibc falls back from clone3 to clone for threads"
        );
    }
}
