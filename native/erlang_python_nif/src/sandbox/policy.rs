//! What the sandbox refuses and how it says so: the kinds of refusal, their
//! messages, the audit events and the native function names that are
//! blocked. Pure data and string functions: no Python, no kernel.

/// Why an operation is refused; each kind has its own explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// fork/exec/spawn: the contract's message.
    Fork,
    /// Would end the VM process.
    Terminate,
    /// Would send a signal to the VM's own process.
    SignalSelf,
    /// Would replace the VM's signal handlers.
    SignalHandler,
    /// Would change the VM's resource limits.
    Limits,
    /// Would close or replace one of the VM's file descriptors.
    Descriptor,
    /// Would load a second, unguarded copy of a guarded module, or reach
    /// interpreter internals that get around the guards.
    Guarded,
}

const HEAD: &str = " is blocked in Erlang VM context.\n";

impl Kind {
    #[cfg(test)]
    pub const ALL: [Kind; 7] = [
        Kind::Fork,
        Kind::Terminate,
        Kind::SignalSelf,
        Kind::SignalHandler,
        Kind::Limits,
        Kind::Descriptor,
        Kind::Guarded,
    ];

    fn tail(self) -> &'static str {
        match self {
            Kind::Fork => {
                "fork()/exec() would corrupt the Erlang runtime.\n\
                 Use Erlang ports (open_port/2) for subprocess management."
            }
            Kind::Terminate => {
                "It would terminate the whole Erlang VM.\n\
                 Stop the VM from Erlang (init:stop/0, System.stop/1) instead."
            }
            Kind::SignalSelf => {
                "It would send a signal to the Erlang VM's own process.\n\
                 Manage the VM from Erlang (os:set_signal/2, init:stop/0) instead."
            }
            Kind::SignalHandler => {
                "Signal handlers belong to the Erlang VM.\n\
                 Handle signals at the VM level (os:set_signal/2) instead."
            }
            Kind::Limits => {
                "Resource limits and timers are shared with the whole Erlang VM.\n\
                 Set limits for the VM process from outside it (ulimit, systemd, containers)."
            }
            Kind::Descriptor => {
                "It would close or replace a file descriptor the Erlang VM uses.\n\
                 Close only the files and sockets your own code opened."
            }
            Kind::Guarded => {
                "It would get around the guards that keep the Erlang VM safe.\n\
                 Import the module normally and call its functions."
            }
        }
    }
}

/// The full text of the exception raised for `event`.
pub fn block_message(event: &str, kind: Kind) -> String {
    format!("{event}{HEAD}{}", kind.tail())
}

/// Events blocked by exact name (the contract's table).
const FORK_EVENTS: &[&str] = &[
    "os.fork",
    "os.forkpty",
    "os.system",
    "os.popen",
    "os.posix_spawn",
    "os.posix_spawnp",
    "subprocess.Popen",
];

/// Prefixes: CPython raises `os.exec` for every `exec*`; our Python-side
/// wrappers raise `os.spawnv`, `os.spawnlp`, ... by name.
const FORK_EVENT_PREFIXES: &[&str] = &["os.exec", "os.spawn"];

/// The kind of block for an audit event, judged by its name only.
pub fn event_kind(event: &str) -> Option<Kind> {
    (FORK_EVENTS.contains(&event) || FORK_EVENT_PREFIXES.iter().any(|p| event.starts_with(p)))
        .then_some(Kind::Fork)
}

/// Native functions that must not be reached through ctypes, by kind.
/// Names are compared after [`normalize_symbol`]. The kernel filter stops
/// what these would do on Python's threads anyway; refusing the lookup
/// gives the error its name and stops the exits and signal functions the
/// kernel cannot tell from harmless ones.
const NATIVE_FUNCTIONS: &[(&str, Kind)] = &[
    ("fork", Kind::Fork),
    ("vfork", Kind::Fork),
    ("forkpty", Kind::Fork),
    ("clone", Kind::Fork),
    ("clone3", Kind::Fork),
    ("daemon", Kind::Fork),
    ("execl", Kind::Fork),
    ("execle", Kind::Fork),
    ("execlp", Kind::Fork),
    ("execv", Kind::Fork),
    ("execve", Kind::Fork),
    ("execveat", Kind::Fork),
    ("execvp", Kind::Fork),
    ("execvpe", Kind::Fork),
    ("fexecve", Kind::Fork),
    ("system", Kind::Fork),
    ("popen", Kind::Fork),
    ("proc_open", Kind::Fork),
    ("wordexp", Kind::Fork),
    ("posix_spawn", Kind::Fork),
    ("posix_spawnp", Kind::Fork),
    ("syscall", Kind::Fork),
    ("exit", Kind::Terminate),
    ("quick_exit", Kind::Terminate),
    ("abort", Kind::Terminate),
    ("pthread_exit", Kind::Terminate),
    ("py_exit", Kind::Terminate),
    ("py_fatalerror", Kind::Terminate),
    ("py_fatalerrorfunc", Kind::Terminate),
    ("py_finalize", Kind::Terminate),
    ("py_finalizeex", Kind::Terminate),
    ("kill", Kind::SignalSelf),
    ("killpg", Kind::SignalSelf),
    ("raise", Kind::SignalSelf),
    ("gsignal", Kind::SignalSelf),
    ("sigqueue", Kind::SignalSelf),
    ("tgkill", Kind::SignalSelf),
    ("tkill", Kind::SignalSelf),
    ("pthread_kill", Kind::SignalSelf),
    ("pthread_sigqueue", Kind::SignalSelf),
    ("pidfd_send_signal", Kind::SignalSelf),
    ("alarm", Kind::SignalSelf),
    ("ualarm", Kind::SignalSelf),
    ("setitimer", Kind::SignalSelf),
    ("timer_create", Kind::SignalSelf),
    ("signal", Kind::SignalHandler),
    ("ssignal", Kind::SignalHandler),
    ("sigaction", Kind::SignalHandler),
    ("bsd_signal", Kind::SignalHandler),
    ("sysv_signal", Kind::SignalHandler),
    ("sigset", Kind::SignalHandler),
    ("siginterrupt", Kind::SignalHandler),
    ("pyos_setsig", Kind::SignalHandler),
    ("setrlimit", Kind::Limits),
    ("setrlimit64", Kind::Limits),
    ("prlimit", Kind::Limits),
    ("prlimit64", Kind::Limits),
    ("dlsym", Kind::Guarded),
    ("dlvsym", Kind::Guarded),
    ("pycfunction_new", Kind::Guarded),
    ("pycfunction_newex", Kind::Guarded),
    ("pycmethod_new", Kind::Guarded),
    ("pysys_addaudithook", Kind::Guarded),
];

/// `__libc_fork`, `_Fork`, `_IO_popen`, `__sigaction`, `_exit` -> the base name.
pub fn normalize_symbol(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let mut base = lower.trim_start_matches('_');
    for prefix in ["libc_", "io_"] {
        base = base.strip_prefix(prefix).unwrap_or(base);
    }
    base.trim_start_matches('_').to_string()
}

/// The kind of block for looking up native function `symbol`, if any.
pub fn native_kind(symbol: &str) -> Option<Kind> {
    let base = normalize_symbol(symbol);
    NATIVE_FUNCTIONS
        .iter()
        .find(|(name, _)| *name == base)
        .map(|(_, kind)| *kind)
}

/// The names of [`NATIVE_FUNCTIONS`] with the aliases glibc exports for
/// them, to find their addresses.
pub fn native_function_variants() -> impl Iterator<Item = (String, Kind)> {
    NATIVE_FUNCTIONS.iter().flat_map(|(name, kind)| {
        let extra: &[&str] = match *name {
            "fork" => &["_Fork"],
            "exit" => &["_Exit"],
            "py_exit" => &["Py_Exit"],
            "py_fatalerror" => &["Py_FatalError"],
            "py_fatalerrorfunc" => &["_Py_FatalErrorFunc"],
            "py_finalize" => &["Py_Finalize"],
            "py_finalizeex" => &["Py_FinalizeEx"],
            "pyos_setsig" => &["PyOS_setsig"],
            "proc_open" => &["_IO_proc_open"],
            _ => &[],
        };
        [
            name.to_string(),
            format!("_{name}"),
            format!("__{name}"),
            format!("__libc_{name}"),
            format!("_IO_{name}"),
        ]
        .into_iter()
        .chain(extra.iter().map(|s| s.to_string()))
        .map(move |variant| (variant, *kind))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_the_contract_events_and_nothing_common() {
        for event in [
            "os.fork",
            "os.forkpty",
            "os.system",
            "os.popen",
            "os.exec",
            "os.spawnv",
            "os.spawnlpe",
            "os.posix_spawn",
            "os.posix_spawnp",
            "subprocess.Popen",
        ] {
            assert_eq!(
                event_kind(event),
                Some(Kind::Fork),
                "{event} must be blocked"
            );
        }
        for event in [
            "open",
            "import",
            "os.listdir",
            "os.remove",
            "subprocess",
            "os.forkx",
        ] {
            assert_eq!(event_kind(event), None, "{event} must pass");
        }
    }

    #[test]
    fn fork_message_is_the_contract_text() {
        assert_eq!(
            block_message("os.fork", Kind::Fork),
            "os.fork is blocked in Erlang VM context.\nfork()/exec() would corrupt the Erlang runtime.\nUse Erlang ports (open_port/2) for subprocess management."
        );
        for kind in Kind::ALL {
            let message = block_message("os._exit", kind);
            assert!(message.starts_with("os._exit is blocked in Erlang VM context.\n"));
            assert_eq!(message.lines().count(), 3, "{message}");
        }
    }

    #[test]
    fn glibc_and_libpython_aliases_normalize_to_their_function() {
        for (alias, base) in [
            ("__libc_fork", "fork"),
            ("_Fork", "fork"),
            ("__fork", "fork"),
            ("__clone", "clone"),
            ("_IO_popen", "popen"),
            ("_IO_proc_open", "proc_open"),
            ("__sigaction", "sigaction"),
            ("__libc_sigaction", "sigaction"),
            ("_exit", "exit"),
            ("_Exit", "exit"),
            ("Py_Exit", "py_exit"),
            ("PyOS_setsig", "pyos_setsig"),
        ] {
            assert_eq!(normalize_symbol(alias), base);
        }
        assert_eq!(native_kind("__libc_fork"), Some(Kind::Fork));
        assert_eq!(native_kind("wordexp"), Some(Kind::Fork));
        assert_eq!(native_kind("_exit"), Some(Kind::Terminate));
        assert_eq!(native_kind("Py_Exit"), Some(Kind::Terminate));
        assert_eq!(native_kind("gsignal"), Some(Kind::SignalSelf));
        assert_eq!(native_kind("setrlimit"), Some(Kind::Limits));
        assert_eq!(native_kind("getpid"), None);
        assert_eq!(native_kind("regexec"), None);
        assert_eq!(native_kind("pthread_atfork"), None);
        assert_eq!(native_kind("getrlimit"), None);
    }
}
