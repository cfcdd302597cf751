//! The Elixir functions Python may call, by name.
//!
//! `ErlangPython.register_function/2,3` binds a name to a fun of one
//! argument (the argument list) or to `{module, function}`. The registry is
//! read by Python on every `erlang.<name>` lookup, so it is a plain map
//! behind a read-write lock, with no round trip to Elixir.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use rustler::Term;

use crate::terms::HeldTerm;

type Registry = RwLock<HashMap<String, Arc<HeldTerm>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// Binds `name` to `target`, replacing an earlier binding.
pub(crate) fn register(name: String, target: Term<'_>) {
    let held = Arc::new(HeldTerm::new(target));
    registry()
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .insert(name, held);
}

/// Removes a binding; true if there was one.
pub(crate) fn unregister(name: &str) -> bool {
    registry()
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .remove(name)
        .is_some()
}

pub(crate) fn is_registered(name: &str) -> bool {
    registry()
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .contains_key(name)
}

/// The registered names, sorted.
pub(crate) fn names() -> Vec<String> {
    let mut names: Vec<String> = registry()
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

/// What `name` is bound to.
pub(crate) fn lookup(name: &str) -> Option<Arc<HeldTerm>> {
    registry()
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(name)
        .cloned()
}
