//! The `%MapSet{}` struct, in both of its shapes.
//!
//! Elixir before 1.18 builds `%{__struct__: MapSet, map: map, version: 2}`;
//! 1.18 and later drop `version`. A struct in one shape can reach a VM of
//! the other (another node, a stored term), so both are read whatever the
//! running Elixir builds; sets coming from Python are built in the running
//! Elixir's own shape, which only the Elixir side knows: it says so at start
//! (`ErlangPython.Runtime`, the `mapset_version` start option), because a
//! struct in the other shape would not be `==` to the user's sets.

use std::sync::atomic::{AtomicI64, Ordering};

use rustler::{Encoder, Env, Term};

use crate::atoms;
use crate::terms::elixir_struct;

/// The running Elixir's `version` field, or [`NO_VERSION`] when its
/// `%MapSet{}` has none.
static RUNNING_VERSION: AtomicI64 = AtomicI64::new(NO_VERSION);
const NO_VERSION: i64 = i64::MIN;

/// Records the running Elixir's `%MapSet{}` shape: `Some(version)` when the
/// struct has a `version` field with that value, `None` when it has none.
pub(crate) fn set_mapset_version(version: Option<i64>) {
    RUNNING_VERSION.store(version.unwrap_or(NO_VERSION), Ordering::Relaxed);
    crate::etf::set_mapset_version(version);
}

/// The inner element map when `term` is a `%MapSet{}` of either shape.
pub(super) fn elements<'a>(term: Term<'a>) -> Option<Term<'a>> {
    let env = term.get_env();
    let size = term.map_size().ok()?;
    let has_version = term.map_get(atoms::version()).is_ok();
    if size != 2 + usize::from(has_version) {
        return None;
    }
    let module = term.map_get(atoms::__struct__()).ok()?;
    if module != atoms::mapset_module().to_term(env) {
        return None;
    }
    let elements = term.map_get(atoms::map()).ok()?;
    elements.is_map().then_some(elements)
}

/// A `%MapSet{}` holding `elements` (a map of element => `[]`), in the
/// running Elixir's shape.
pub(super) fn build<'a>(env: Env<'a>, elements: Term<'a>) -> Term<'a> {
    match RUNNING_VERSION.load(Ordering::Relaxed) {
        NO_VERSION => elixir_struct(env, atoms::mapset_module(), &[(atoms::map(), elements)]),
        version => elixir_struct(
            env,
            atoms::mapset_module(),
            &[
                (atoms::map(), elements),
                (atoms::version(), version.encode(env)),
            ],
        ),
    }
}
