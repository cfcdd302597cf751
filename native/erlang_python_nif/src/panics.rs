//! Catching Rust panics at the NIF and thread boundaries.
//!
//! A panic must never unwind into the VM or end a thread that owns the
//! interpreter: it is caught where such a boundary is crossed and reported
//! as text (`Failure::Internal`, or a start-up error).

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `work`, turning a panic into its message.
///
/// `AssertUnwindSafe`: after a caught panic the caller only reports it; no
/// state the closure may have left half-updated is read again, except
/// through types that stay consistent (atomics, `RefCell`s that were
/// released by unwinding).
pub(crate) fn catch<R>(work: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(work)).map_err(|payload| text(&payload))
}

/// The message of a caught panic, prefixed with `panic: `.
pub(crate) fn text(payload: &Box<dyn Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        format!("panic: {text}")
    } else if let Some(text) = payload.downcast_ref::<String>() {
        format!("panic: {text}")
    } else {
        "panic with a non-string payload".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message() {
        assert_eq!(catch(|| 7), Ok(7));
        assert_eq!(
            catch(|| -> () { panic!("boom {}", 1) }),
            Err("panic: boom 1".to_string())
        );
        assert_eq!(
            catch(|| -> () { panic!("static") }),
            Err("panic: static".to_string())
        );
    }
}
