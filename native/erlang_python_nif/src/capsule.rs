//! Channel references cross into Python as `PyCapsule`s named
//! `erlang_python.channel`, as in erlang_python, and come back to Erlang as
//! the identical reference.
//!
//! Which references are channels is for `channel` (a higher layer) to say:
//! it registers that check here when the `erlang` module loads, as
//! `buffer` does for its own hooks, so conversion needs no upward import.

use std::ffi::CStr;
use std::ptr::NonNull;
use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyCapsuleMethods};
use rustler::{Env, Term};

use crate::pytypes::OpaqueTerm;

/// The capsule name erlang_python gives channel references.
pub(crate) const CHANNEL: &CStr = c"erlang_python.channel";

type Check = for<'a> fn(Term<'a>) -> bool;

static IS_CHANNEL: OnceLock<Check> = OnceLock::new();

/// Registers the check that tells a channel reference from another one.
pub(crate) fn set_channel_check(check: Check) {
    let _ = IS_CHANNEL.set(check);
}

/// A reference `term` as a capsule when it is a channel; `None` otherwise.
pub(crate) fn to_python<'py>(
    py: Python<'py>,
    term: Term<'_>,
) -> Option<PyResult<Bound<'py, PyAny>>> {
    let is_channel = IS_CHANNEL.get()?;
    if !is_channel(term) {
        return None;
    }
    Some(PyCapsule::new_with_value(py, OpaqueTerm::new(term), CHANNEL).map(Bound::into_any))
}

/// The reference a channel capsule holds, in `env`; `None` for any other object.
pub(crate) fn to_term<'a>(env: Env<'a>, obj: &Bound<'_, PyAny>) -> Option<Term<'a>> {
    let capsule = obj.cast::<PyCapsule>().ok()?;
    let pointer: NonNull<OpaqueTerm> = capsule.pointer_checked(Some(CHANNEL)).ok()?.cast();
    // SAFETY: only `to_python` makes capsules with this name, from a boxed
    // OpaqueTerm that lives as long as the capsule, which `obj` keeps alive
    // for this call; the reference is not kept past it.
    let held = unsafe { pointer.as_ref() };
    Some(held.to_term(env))
}
