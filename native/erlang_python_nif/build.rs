//! Records which Python this NIF is built against.
//!
//! PyO3 picks the interpreter from `PYO3_PYTHON` (our Mix compiler sets it from
//! `ERLANG_PYTHON_PYTHON`, else `python3`). We add an rpath to that Python's
//! library directory, so the dynamic loader finds *its* libpython and not
//! another one the system may have, and we pass the interpreter's executable
//! to the crate so the embedded interpreter computes the same `sys.prefix`.

fn main() {
    pyo3_build_config::use_pyo3_cfgs();
    let config = pyo3_build_config::get();

    if let Some(lib_dir) = config.lib_dir() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
        println!("cargo:rustc-env=ERLANG_PYTHON_LIBDIR={lib_dir}");
    } else {
        println!("cargo:rustc-env=ERLANG_PYTHON_LIBDIR=");
    }
    let executable = config
        .executable()
        .map(|e| e.to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=ERLANG_PYTHON_EXECUTABLE={executable}");
    println!(
        "cargo:rustc-env=ERLANG_PYTHON_VERSION={}.{}",
        config.version().major,
        config.version().minor
    );
    // `cargo test` links executables, where the `enif_*` symbols (provided by
    // the VM when it loads the NIF) are unresolved. Unit tests never call
    // them; allow the link. A shared library accepts undefined symbols anyway.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg=-Wl,--unresolved-symbols=ignore-in-object-files");
    }
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
