//! Memory ceilings: Python's allocations counted per interpreter and per
//! context, and refused (so Python raises `MemoryError`) past a ceiling.
//!
//! | file         | what                                                    |
//! |--------------|---------------------------------------------------------|
//! | `account.rs` | accounts, ceilings, the thread's current context account |
//! | `large_blocks.rs` | large raw blocks kept for reuse after a free        |
//! | `hooks.rs`   | the raw-domain and arena allocator hooks                 |
//! | `nifs.rs`    | the NIFs behind `ErlangPython.Memory`                    |
//!
//! The hooks are installed at interpreter start (`interpreter.rs`), always:
//! without a ceiling they only count, and counting costs a few relaxed
//! atomic additions on allocations pymalloc does not serve from its pools.
//! The worker thread makes a context's account current around each of the
//! context's requests ([`enter`]).

mod account;
mod hooks;
mod large_blocks;
mod nifs;

pub(crate) use account::enter;
pub(crate) use hooks::install;
