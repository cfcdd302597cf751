//! The operations a worker thread performs on a request.
//!
//! | file          | what                                                     |
//! |---------------|----------------------------------------------------------|
//! | `op.rs`       | `Op`: the request format, decoded with rustler derives   |
//! |               | ([`Submission`]: an op with the scope it was sent in)     |
//! | `inputs.rs`   | a request's names, code and arguments, checked for Python |
//! | `cache.rs`    | compiled code and interned names kept across requests    |
//! | `executor.rs` | [`Executor`]: runs an `Op` and produces an `Outcome`      |
//! | `helped.rs`   | a request run by a thread waiting for a callback (both    |
//! |               | interpreters' `serving::Helper`s)                        |
//!
//! Each file uses only files listed above it. The
//! Elixir side builds the same requests in `ErlangPython.Request`.

mod cache;
mod executor;
pub(crate) mod helped;
mod inputs;
mod op;

pub(crate) use executor::Executor;
pub(crate) use op::Submission;
