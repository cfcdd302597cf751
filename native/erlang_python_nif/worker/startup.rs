//! Starting the worker: kernel limits, signals, then CPython, in that
//! order and each for a reason:
//! 1. limits (`RLIMIT_AS`, `RLIMIT_CPU`, `RLIMIT_NOFILE`) are set before
//!    Python allocates anything, and children (subprocesses) inherit them;
//! 2. signal dispositions the VM left are undone: an exec'd child inherits
//!    ignored signals, and the VM ignores SIGCHLD (`subprocess` would lose
//!    its children's statuses) and others (`raise(SIGSEGV)` would return);
//! 3. with the sandbox on, its audit hook goes in before the interpreter
//!    starts (as embedded); the interpreter then starts with Python's own
//!    signal handlers (this process is Python's: SIGINT is how a timeout
//!    interrupts it), as the venv's or the built-against executable, so
//!    `sys.prefix` and site-packages are that Python's;
//! 4. SIGINT raises `erlang.Interrupted`, then the sandbox's guards go on
//!    (they refuse `signal.signal` from then on) and `_erlang_impl` loads.
//!
//! The sandbox's kernel filter is not installed here: it exists to keep
//! Python from harming the VM's process, and this process is not the VM's.
//! What Python may do to itself is bounded by the limits above.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use pyo3::prelude::*;

use crate::python_config;
use crate::sandbox;

/// The Python executable the crate was built against.
const BUILD_EXECUTABLE: &str = env!("ERLANG_PYTHON_EXECUTABLE");

/// The worker's command line: `key=value` arguments.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) priv_dir: String,
    pub(crate) paths: Vec<String>,
    pub(crate) sandbox: bool,
    pub(crate) venv: Option<String>,
    pub(crate) mapset_version: Option<i64>,
    pub(crate) memory_bytes: Option<u64>,
    pub(crate) cpu_seconds: Option<u64>,
    pub(crate) open_files: Option<u64>,
    /// The shared-memory file of the VM's channel (`protocol`); without it
    /// frames go over the port's pipes.
    pub(crate) channel: Option<String>,
}

impl Options {
    pub(crate) fn parse(args: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut options = Options {
            sandbox: true,
            ..Options::default()
        };
        for arg in args {
            let (key, value) = arg
                .split_once('=')
                .ok_or_else(|| format!("argument without '=': {arg}"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("{key}: not a number: {value}"))
            };
            match key {
                "priv" => options.priv_dir = value.to_string(),
                "path" => options.paths.push(value.to_string()),
                "sandbox" => options.sandbox = value == "true",
                "venv" => options.venv = Some(value.to_string()),
                "channel" => options.channel = Some(value.to_string()),
                "mapset_version" => options.mapset_version = Some(number()? as i64),
                "memory_bytes" => options.memory_bytes = Some(number()?),
                "cpu_seconds" => options.cpu_seconds = Some(number()?),
                "open_files" => options.open_files = Some(number()?),
                _ => return Err(format!("unknown option {key}")),
            }
        }
        if options.priv_dir.is_empty() {
            return Err("priv=DIR is required".into());
        }
        Ok(options)
    }
}

static SANDBOXED: AtomicBool = AtomicBool::new(false);
static MAIN_THREAD: OnceLock<std::thread::ThreadId> = OnceLock::new();

/// Whether the sandbox's audit hook and guards are on (the kernel filter
/// is checked apart: `seccomp::active`).
pub(crate) fn sandboxed() -> bool {
    SANDBOXED.load(Ordering::Relaxed)
}

/// Whether the caller is the thread that serves requests.
pub(crate) fn on_main_thread() -> bool {
    MAIN_THREAD.get() == Some(&std::thread::current().id())
}

/// Applies the kernel limits to this process.
pub(crate) fn apply_limits(options: &Options) -> Result<(), String> {
    let set = |resource, soft: u64, hard: u64, what: &str| {
        let limit = libc::rlimit {
            rlim_cur: soft as libc::rlim_t,
            rlim_max: hard as libc::rlim_t,
        };
        // SAFETY: setrlimit reads the struct we pass; it affects only this
        // process (and what it starts).
        if unsafe { libc::setrlimit(resource, &limit) } != 0 {
            return Err(format!(
                "setrlimit({what}): {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    };
    if let Some(bytes) = options.memory_bytes {
        set(libc::RLIMIT_AS, bytes, bytes, "RLIMIT_AS")?;
    }
    if let Some(seconds) = options.cpu_seconds {
        // SIGXCPU at the soft limit ends the process (Python leaves its
        // default action); the hard limit one second later is SIGKILL.
        set(libc::RLIMIT_CPU, seconds, seconds + 1, "RLIMIT_CPU")?;
    }
    if let Some(files) = options.open_files {
        set(libc::RLIMIT_NOFILE, files, files, "RLIMIT_NOFILE")?;
    }
    Ok(())
}

/// Memory a freed large block may leave in the heap (see [`keep_large_blocks`]).
const KEEP_FREED_BYTES: libc::c_int = 256 << 20;

/// Large blocks (a 100 MB `bytes` argument, the frame buffer it came in)
/// come from the heap and stay there once freed, up to
/// [`KEEP_FREED_BYTES`]: glibc would otherwise map each one afresh and
/// unmap it when freed, and the next one pays a page fault per 4 KiB. On
/// this project's user-space kernel that doubled the time of passing a
/// 100 MB binary (0.37 against 0.80 GB/s, measured with glibc's
/// environment variables of the same effect). Larger freed tops are still
/// given back. The VM's own allocators are untouched: this is the worker's
/// process.
pub(crate) fn keep_large_blocks() {
    // SAFETY: mallopt only changes this process's allocator parameters;
    // called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, KEEP_FREED_BYTES);
    }
}

/// Default dispositions and an empty signal mask, whatever the VM had.
pub(crate) fn reset_signals() {
    // SAFETY: signal and sigprocmask with valid arguments, before any other
    // thread exists.
    unsafe {
        // Every classic signal (SIGKILL and SIGSTOP refuse, harmlessly).
        for signal in 1..32 {
            libc::signal(signal, libc::SIG_DFL);
        }
        let mut none = MaybeUninit::<libc::sigset_t>::zeroed();
        libc::sigemptyset(none.as_mut_ptr());
        libc::sigprocmask(libc::SIG_SETMASK, none.as_ptr(), std::ptr::null_mut());
    }
}

/// Starts CPython on the calling (main) thread and keeps the GIL. The
/// caller has put `_erlang_native` in the table of built-in modules
/// (`main.rs`): this file stays below the module, which asks it
/// [`sandboxed`] and [`on_main_thread`].
pub(crate) fn start_python(options: &Options) -> Result<(), String> {
    let _ = MAIN_THREAD.set(std::thread::current().id());
    crate::etf::set_mapset_version(options.mapset_version);
    if options.sandbox {
        sandbox::install()?;
        SANDBOXED.store(true, Ordering::Relaxed);
    }
    let executable = match &options.venv {
        Some(venv) => format!("{venv}/bin/python"),
        None => BUILD_EXECUTABLE.to_string(),
    };
    // CPython's handlers here: SIGINT must raise in the worker.
    python_config::initialize(&executable, true)?;
    // SAFETY: Py_InitializeFromConfig left this thread holding the GIL;
    // attach finds that state.
    Python::attach(|py| set_up(py, options)).map_err(|err| {
        Python::attach(|py| {
            let traceback = err
                .traceback(py)
                .and_then(|t| t.format().ok())
                .unwrap_or_default();
            format!("{traceback}{}", err.value(py))
        })
    })
}

fn set_up(py: Python<'_>, options: &Options) -> PyResult<()> {
    let sys = py.import("sys")?;
    let path = sys.getattr("path")?;
    path.call_method1("insert", (0, options.priv_dir.as_str()))?;
    for extra in &options.paths {
        path.call_method1("append", (extra.as_str(),))?;
    }
    let code = c"
import signal, _erlang_native
def _interrupted(signum, frame):
    raise _erlang_native.Interrupted('the call was interrupted: its Elixir caller timed out, was cancelled or exited')
signal.signal(signal.SIGINT, _interrupted)
";
    py.run(code, None, None)?;
    if options.sandbox {
        // SAFETY: the GIL is held and no user code has run yet.
        unsafe { sandbox::guard_interpreter(py) }?;
    }
    py.import("_erlang_impl")?;
    py.import("_erlang_impl._io")?.call_method0("install")?;
    let main = py.import("__main__")?;
    main.setattr("erlang", py.import("erlang")?)?;
    if options.sandbox {
        // Last: nothing above forks or execs, and every thread that exists
        // now gets the filter too (TSYNC). A kernel without seccomp leaves
        // the audit hook and the guards; `erlang.is_sandboxed()` then
        // answers False, as it would for an embedded context.
        if let Err(why) = crate::seccomp::install() {
            eprintln!("erlang_python_worker: no kernel filter in the sandbox: {why}");
        }
    }
    Ok(())
}
