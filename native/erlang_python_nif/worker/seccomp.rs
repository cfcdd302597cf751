//! The kernel half of a sandboxed worker: a seccomp-BPF filter, installed
//! on every thread of the process once Python is up, that refuses to make
//! a process or replace this one, whatever the technique (ctypes, a
//! foreign `.so`, machine code): the audit hook and the guarded functions
//! refuse with the contract's messages first; this is what holds when
//! code gets past them.
//!
//! * `fork`, `vfork`, `clone` without `CLONE_THREAD`: EPERM (threads still
//!   start);
//! * `clone3`: ENOSYS (its flags sit in memory a filter cannot read; glibc
//!   then falls back to `clone`);
//! * `execve`, `execveat`: EPERM;
//! * system calls of another ABI (i386's `int 0x80`, x32): EPERM.
//!
//! Unlike the embedded filter (`src/sandbox/seccomp.rs`) it lets the
//! process exit, signal and set limits: a worker is its own process, and
//! ending it is what containment is for. The kernel answers the probes of
//! [`active`] only under this filter, so `erlang.is_sandboxed()` reports
//! what the kernel enforces, not what was asked for.

use std::ffi::c_ulong;

use libc::{sock_filter, sock_fprog};

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// Offsets into `struct seccomp_data` (little-endian: an argument's low
/// 32 bits come first).
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
const OFFSET_ARG0_LOW: u32 = 16;

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

const fn stmt(code: u32, k: u32) -> sock_filter {
    sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn jump(code: u32, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

const LOAD: u32 = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
const RET: u32 = libc::BPF_RET | libc::BPF_K;
const JEQ: u32 = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
const JGE: u32 = libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K;
const JSET: u32 = libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K;

/// `nr` answers `action`: two instructions.
fn refuse(program: &mut Vec<sock_filter>, nr: libc::c_long, action: u32) {
    program.push(jump(JEQ, nr as u32, 0, 1));
    program.push(stmt(RET, action));
}

fn program() -> Vec<sock_filter> {
    let mut p = vec![
        stmt(LOAD, OFFSET_ARCH),
        jump(JEQ, AUDIT_ARCH, 1, 0),
        stmt(RET, EPERM),
        stmt(LOAD, OFFSET_NR),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        // x32 system calls share the arch but set this bit.
        p.push(jump(JGE, 0x4000_0000, 0, 1));
        p.push(stmt(RET, EPERM));
        refuse(&mut p, libc::SYS_fork, EPERM);
        refuse(&mut p, libc::SYS_vfork, EPERM);
    }
    refuse(&mut p, libc::SYS_execve, EPERM);
    refuse(&mut p, libc::SYS_execveat, EPERM);
    refuse(&mut p, libc::SYS_clone3, ENOSYS);
    // clone: a thread (CLONE_THREAD in the flags, argument 0) goes on.
    p.push(jump(JEQ, libc::SYS_clone as u32, 0, 3));
    p.push(stmt(LOAD, OFFSET_ARG0_LOW));
    p.push(jump(JSET, libc::CLONE_THREAD as u32, 1, 0));
    p.push(stmt(RET, EPERM));
    p.push(stmt(RET, ALLOW));
    p
}

/// Installs the filter on every thread of this process (TSYNC), after
/// setting no_new_privs (which seccomp requires of unprivileged callers).
pub(crate) fn install() -> Result<(), String> {
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) only sets a flag on the process's
    // threads.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!(
            "prctl(PR_SET_NO_NEW_PRIVS): {}",
            std::io::Error::last_os_error()
        ));
    }
    let program = program();
    let fprog = sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut sock_filter,
    };
    // SAFETY: `fprog` points at `program`, alive for the call; the kernel
    // copies it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as c_ulong,
            libc::SECCOMP_FILTER_FLAG_TSYNC as c_ulong,
            &fprog as *const sock_fprog,
        )
    };
    if rc != 0 {
        return Err(format!("seccomp: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Whether the calling thread runs under the filter, by observation: the
/// kernel itself answers EINVAL to a zero-sized `clone3` and EFAULT to
/// `execve(NULL)`; only the filter answers ENOSYS and EPERM. Neither call
/// starts anything, filtered or not.
pub(crate) fn active() -> bool {
    // SAFETY: both calls fail before doing anything: clone3 with size 0 is
    // invalid, execve of NULL faults.
    unsafe {
        let clone3 = libc::syscall(libc::SYS_clone3, std::ptr::null::<libc::c_void>(), 0usize);
        let clone3_errno = *libc::__errno_location();
        let execve = libc::syscall(
            libc::SYS_execve,
            std::ptr::null::<libc::c_void>(),
            std::ptr::null::<libc::c_void>(),
            std::ptr::null::<libc::c_void>(),
        );
        let execve_errno = *libc::__errno_location();
        clone3 == -1 && clone3_errno == libc::ENOSYS && execve == -1 && execve_errno == libc::EPERM
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_jump_stays_inside_the_program() {
        let program = program();
        for (at, instruction) in program.iter().enumerate() {
            if instruction.code as u32 & 0x07 == libc::BPF_JMP {
                let furthest = at + 1 + instruction.jt.max(instruction.jf) as usize;
                assert!(furthest < program.len(), "jump at {at} leaves the program");
            }
        }
        assert_eq!(program.last().map(|i| i.k), Some(ALLOW));
    }
}
