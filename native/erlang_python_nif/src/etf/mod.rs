//! Erlang's external term format, read into Python objects and written from
//! them directly: no rustler environment, no Python codec in between. One
//! codec for both sides: the isolated worker speaks it over its port
//! (`worker/main.rs` mounts this directory by `#[path]`, as it does the
//! sandbox), and the NIF writes large results with it, which the caller
//! decodes with `:erlang.binary_to_term/1` (`convert::external`).
//!
//! The mapping is the embedded one (guides/type-conversion.md): integers
//! exact at any size, `nil`/`:none`/`:undefined` as None, other atoms as
//! `str`, UTF-8 binaries as `str` and others as `bytes` (`{:bytes, bin}`
//! always `bytes`), `%MapSet{}` of either shape as `set`. What plain data
//! has no form for (pids, references, funs, handles, objects with no
//! Erlang form) is left to the user's [`Forms`].
//!
//! Nothing here names `crate::`: the same files compile into two crates.
//!
//! | file        | what                                              |
//! |-------------|---------------------------------------------------|
//! | `tags.rs`   | the format's tags, limits, errors                 |
//! | `reader.rs` | external format -> Python                         |
//! | `writer.rs` | Python -> external format                         |

mod reader;
mod tags;
mod writer;

use std::sync::atomic::{AtomicI64, Ordering};

use pyo3::prelude::*;

pub(crate) use reader::Reader;
#[allow(unused_imports)]
pub(crate) use tags::{ATOM_UTF8, MAX_DEPTH, SMALL_ATOM_UTF8, VERSION};
pub(crate) use writer::Writer;

/// The forms a user of the codec gives what plain data has no form for.
/// Associated functions only: a [`Reader`] or [`Writer`] names its forms
/// as a type parameter and carries no state for them.
pub(crate) trait Forms: Sized {
    /// Bignums with more magnitude bytes than this are refused by the
    /// writer (the reader of the result has a limit of its own).
    const MAX_BIGNUM_BYTES: usize = u32::MAX as usize;

    /// A pid; `raw` is its external form without the version byte.
    fn pid<'py>(py: Python<'py>, raw: &[u8]) -> PyResult<Bound<'py, PyAny>>;

    /// A reference, port, fun, bitstring or improper list, as `raw` bytes.
    fn opaque<'py>(py: Python<'py>, raw: &[u8]) -> PyResult<Bound<'py, PyAny>>;

    /// `%ErlangPython.Object{ref: ref, type: _}`: `reference` is at `ref`.
    fn handle<'py>(
        py: Python<'py>,
        reference: &mut Reader<'_, Self>,
    ) -> PyResult<Bound<'py, PyAny>>;

    /// Writes `obj`, which is none of the builtin types the codec knows.
    fn write_other(writer: &mut Writer<Self>, obj: &Bound<'_, PyAny>) -> PyResult<()>;
}

/// The running Elixir's `%MapSet{}` `version` field, or [`NO_VERSION`]
/// when its struct has none (Elixir 1.18 and later).
static MAPSET_VERSION: AtomicI64 = AtomicI64::new(NO_VERSION);
const NO_VERSION: i64 = i64::MIN;

/// Records the shape sets are written in (told at start, see
/// `convert::set_mapset_version`).
pub(crate) fn set_mapset_version(version: Option<i64>) {
    MAPSET_VERSION.store(version.unwrap_or(NO_VERSION), Ordering::Relaxed);
}

fn mapset_version() -> Option<i64> {
    match MAPSET_VERSION.load(Ordering::Relaxed) {
        NO_VERSION => None,
        version => Some(version),
    }
}
