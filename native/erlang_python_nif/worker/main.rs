//! `erlang_python_worker`: Python in its own OS process, for isolated
//! contexts (`ErlangPython.ContextServer` with `isolated: true`). The VM
//! starts it as a port and speaks the external term format to it
//! (`protocol`); a crash, a kill or a limit here ends this process only.
//!
//! Built from the NIF's crate as a separate binary that shares its sandbox
//! module (`#[path]`) and none of its rustler layers: the NIF's code references the
//! VM's `enif_*` functions, which exist only inside the VM.
//!
//! | file | what |
//! |------|------|
//! | `pytypes.rs` | `erlang.Pid`, `erlang.Term` as external-format bytes |
//! | `handles.rs` | objects held from Elixir, by id |
//! | `etf.rs` | the external term format <-> Python objects |
//! | `protocol.rs` | framing and the message format, over shared memory (`shm_ring`) or the port's pipes |
//! | `native_module.rs`, `serve.rs` | `_erlang_native` for the worker; the request loop and callbacks |
//! | `inbox.rs` | which thread reads the port; frames read for another thread |
//! | `startup.rs` | limits, signals, starting CPython |
//! | `seccomp.rs` | the kernel filter of a sandboxed worker: no fork, no exec |

#[allow(dead_code)]
#[path = "../src/sandbox/mod.rs"]
mod sandbox;

#[path = "../src/python_config.rs"]
mod python_config;

// The worker maps what the VM creates: the VM-only half goes unused here.
#[allow(dead_code)]
#[path = "../src/shm_ring.rs"]
mod shm_ring;

// The rings' spin-or-park decision, the file the NIF mounts at its root
// (the runtime's half, `replies_soon`, goes unused here).
#[allow(dead_code)]
#[path = "../src/runtime/wait_strategy.rs"]
mod wait_strategy;

// The external term format's codec, the NIF's own (`etf`). Mounted here,
// below both `pytypes` (whose values know their format's version byte) and
// `etf` (which gives the codec the worker's forms of those values).
#[path = "../src/etf/mod.rs"]
mod codec;

// The name cache's hasher, the NIF's own (`ops::cache`).
#[path = "../src/name_hasher.rs"]
mod name_hasher;

// Reading a type's slots, as the NIF does (`awaitable`).
#[path = "../src/type_slots.rs"]
mod type_slots;

mod etf;
mod handles;
mod inbox;
mod native_module;
mod protocol;
mod pytypes;
mod seccomp;
mod serve;
mod startup;

use pyo3::types::PyAnyMethods;

use native_module::_erlang_native;

fn main() {
    let code = match run() {
        Ok(()) => 0,
        Err(why) => {
            eprintln!("erlang_python_worker: {why}");
            70
        }
    };
    std::process::exit(code);
}

fn run() -> Result<(), String> {
    let options = startup::Options::parse(std::env::args().skip(1))?;
    startup::apply_limits(&options)?;
    startup::keep_large_blocks();
    startup::reset_signals();
    protocol::open(options.channel.as_deref())?;
    // Before the interpreter starts: its table of built-in modules is read
    // once, at initialization.
    pyo3::append_to_inittab!(_erlang_native);
    startup::start_python(&options)?;
    pyo3::Python::attach(|py| {
        let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| serve::run(py)))
            .unwrap_or_else(|_| Err("a panic in the request loop".into()));
        // The context stopped: let Python's exit handlers run (process
        // pools shut their workers down), without finalizing the runtime.
        if served.is_ok() {
            let _ = py
                .import("atexit")
                .and_then(|atexit| atexit.call_method0("_run_exitfuncs"));
        }
        served
    })
}
