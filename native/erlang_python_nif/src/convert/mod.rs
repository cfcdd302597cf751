//! Conversion between Erlang terms and Python objects, both directions.
//!
//! The mapping is documented in guides/type-conversion.md. Rules that matter
//! for safety: no atom is ever created from Python data, integers convert
//! exactly at any size, and nesting deeper than [`MAX_DEPTH`] is an error
//! rather than a stack overflow.
//!
//! Everything here runs on a Python thread with the GIL held; terms are read
//! from and written to process-independent environments, which ERTS allows
//! from non-scheduler threads.

//!
//! | file           | what                                                   |
//! |----------------|--------------------------------------------------------|
//! | `error.rs`     | [`ConvertError`], the nesting limit                    |
//! | `bignum.rs`    | integers beyond 64 bits: external form, decimal digits |
//! | `handles.rs`   | `%ErlangPython.Object{}` handles to live objects       |
//! | `mapset.rs`    | `%MapSet{}`, read in both shapes, built in Elixir's    |
//! | `array_format.rs` | Array types against buffer formats, both ways     |
//! | `arrays.rs`    | buffers as `%ErlangPython.Array{}`, without a copy     |
//! | `binary_view.rs` | binaries and arrays as read-only `memoryview`s       |
//! | `datetime.rs`  | dates, times, datetimes, timedeltas                    |
//! | `numeric.rs`   | numpy scalars, `Decimal`, `UUID`                       |
//! | `custom.rs`    | decoders registered for Python types                   |
//! | `pyobjects.rs` | `str`/`bytes` from bytes, presized dicts               |
//! | `atom_cache.rs` | atoms' Python objects, remembered per thread          |
//! | `packed.rs`    | long lists and large maps of scalars, packed on the caller's side |
//! | `to_python.rs` | Erlang -> Python                                       |
//! | `to_term.rs`   | Python -> Erlang                                       |
//! | `external.rs`  | large plain results as one external-format binary      |
//!
//! Each file uses only files listed above it.

mod array_format;
mod arrays;
mod atom_cache;
mod bignum;
mod binary_view;
mod custom;
mod datetime;
mod decimal_text;
mod error;
mod external;
pub(crate) mod handles;
mod mapset;
mod numeric;
mod packed;
mod pyobjects;
mod to_python;
mod to_term;

pub(crate) use error::{ConvertError, MAX_DEPTH};
pub(crate) use external::ok_result as external_ok_result;
pub(crate) use handles::type_name;
pub(crate) use mapset::set_mapset_version;
#[cfg(feature = "diagnostics")]
pub(crate) use packed::held_words as packed_held_words;
pub(crate) use packed::{pack_args, release_in as release_packed};
pub(crate) use to_python::to_python;
pub(crate) use to_term::{set_otp_version, to_term, to_term_with_arrays};
