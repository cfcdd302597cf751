//! Erlang terms owned by Rust, and the Elixir shapes the NIF builds.
//!
//! * [`HeldTerm`]: a copy of a term in its own process-independent
//!   environment, kept as long as a Rust value (a registered callback
//!   target, an `erlang.Term` in Python);
//! * [`elixir_struct`]: `%Module{...}` maps (errors, handles, sets);
//! * [`describe`]: Erlang's printed form of a term, for Python reprs;
//! * [`cells_within`]: how many cells a term holds, when within a budget;
//! * [`MapEntries`]: a map's entries, read without rustler's wrappers;
//! * [`binary_bytes`]: a binary's bytes, likewise, and [`binary_term`]: a
//!   new binary of bytes;
//! * [`make_atoms`]: atoms made once, before terms written without an
//!   environment name them.

use std::sync::Once;

use rustler::env::SavedTerm;
use rustler::{Env, NewBinary, OwnedEnv, Term};

use crate::atoms;

/// A term copied into its own process-independent environment.
pub(crate) struct HeldTerm {
    env: OwnedEnv,
    term: SavedTerm,
}

// SAFETY: after construction the environment is never cleared or written;
// the only operations on it are reads (enif_make_copy out of it, compares,
// hashing), which ERTS allows from any thread concurrently. It is freed
// once, by Drop, when the owner dies.
unsafe impl Sync for HeldTerm {}

impl HeldTerm {
    pub(crate) fn new(term: Term<'_>) -> Self {
        let env = OwnedEnv::new();
        let term = env.save(term);
        HeldTerm { env, term }
    }

    /// A copy of the held term in `target`.
    pub(crate) fn to_term<'b>(&self, target: Env<'b>) -> Term<'b> {
        self.env.run(|own| self.term.load(own).in_env(target))
    }

    /// Runs `f` on the held term itself, without copying it.
    pub(crate) fn with_term<R>(&self, f: impl for<'a> FnOnce(Term<'a>) -> R) -> R {
        self.env.run(|own| f(self.term.load(own)))
    }
}

/// A new binary holding a copy of `bytes`.
pub(crate) fn binary_term<'a>(env: Env<'a>, bytes: &[u8]) -> Term<'a> {
    let mut binary = NewBinary::new(env, bytes.len());
    binary.as_mut_slice().copy_from_slice(bytes);
    binary.into()
}

/// Makes the atoms `names`, once per `made`. A large result written
/// straight into the external format names atoms the caller's
/// `:erlang.binary_to_term(_, [:safe])` refuses unless the VM has them, and
/// a VM that never built the term the direct way may not (rustler makes
/// its atoms when first used: a VM that never converted a timedelta had no
/// `:timedelta`). Atoms live as long as the VM.
pub(crate) fn make_atoms(made: &'static Once, names: &[&str]) {
    made.call_once(|| {
        OwnedEnv::new().run(|env| {
            for name in names {
                let _ = rustler::Atom::from_str(env, name);
            }
        });
    });
}

/// `%Module{field: value, ...}`: a map with `__struct__` and the fields.
pub(crate) fn elixir_struct<'a>(
    env: Env<'a>,
    module: rustler::Atom,
    fields: &[(rustler::Atom, Term<'a>)],
) -> Term<'a> {
    let mut keys = Vec::with_capacity(fields.len() + 1);
    let mut values = Vec::with_capacity(fields.len() + 1);
    keys.push(atoms::__struct__().to_term(env));
    values.push(module.to_term(env));
    for (key, value) in fields {
        keys.push(key.to_term(env));
        values.push(*value);
    }
    Term::map_from_term_arrays(env, &keys, &values).expect("struct fields are distinct atoms")
}

/// Erlang's own printed form of a term (`<0.12.0>`, `#Ref<...>`, `#Port<...>`);
/// rustler's `Debug` for terms formats with `enif_snprintf("%T")`.
pub(crate) fn describe(make: impl for<'a> FnOnce(Env<'a>) -> Term<'a>) -> String {
    let env = OwnedEnv::new();
    env.run(|env| format!("{:?}", make(env)))
}

/// An atom's name as UTF-8, whatever characters it holds; `None` for a
/// term that is not an atom. Before NIF 2.17 (OTP 26) rustler reads atoms
/// as Latin-1, which fails for an atom beyond it (`:"✓"`, `:函数`): such a
/// name is read from the atom's external form, which holds it as UTF-8
/// (`ATOM_UTF8_EXT` or `SMALL_ATOM_UTF8_EXT` on every OTP, for an atom
/// that Latin-1 cannot write).
pub(crate) fn atom_text(term: Term<'_>) -> Option<String> {
    if let Ok(name) = term.atom_to_string() {
        return Some(name);
    }
    if !term.is_atom() {
        return None;
    }
    use crate::etf::{ATOM_UTF8, SMALL_ATOM_UTF8, VERSION};
    let external = term.to_binary();
    let (len, start) = match external.as_slice() {
        [VERSION, SMALL_ATOM_UTF8, len, ..] => (usize::from(*len), 3),
        [VERSION, ATOM_UTF8, high, low, ..] => (usize::from(u16::from_be_bytes([*high, *low])), 4),
        _ => return None,
    };
    let text = external.as_slice().get(start..start + len)?;
    String::from_utf8(text.to_vec()).ok()
}

/// How many term cells `term` holds (list cells, tuple elements, map
/// entries, at every level) when that is at most `budget` and it nests no
/// deeper than `max_depth`; `None` otherwise. Stops walking as soon as
/// either bound is passed, so it is cheap either way. What a "small" term
/// is for copying on a scheduler (`runtime::inline_cells`) and for a reply
/// left in its job (`polled_reply`).
pub(crate) fn cells_within(term: Term<'_>, budget: usize, max_depth: usize) -> Option<usize> {
    let mut left = budget;
    walk_within(term, &mut left, 0, max_depth).then(|| budget - left)
}

fn walk_within(term: Term<'_>, budget: &mut usize, depth: usize, max_depth: usize) -> bool {
    // SAFETY: `term` is a term of its own environment, live for this call.
    unsafe { walk_item(term.get_env(), term.as_c_arg(), budget, depth, max_depth) }
}

/// [`walk_raw`] for a container, nothing for any other term: the type is
/// asked here, so the scalars that fill bulk data cost one call each and
/// no recursion (a call with its frame per item took most of the walk's
/// time in a profile).
///
/// # Safety
///
/// `term` is a term of `env`, live for the call.
#[inline(always)]
unsafe fn walk_item(
    env: Env<'_>,
    term: rustler::sys::ErlNifTerm,
    budget: &mut usize,
    depth: usize,
    max_depth: usize,
) -> bool {
    use rustler::sys::ErlNifTermType as Type;
    // SAFETY: `term` is a term of `env` (the caller's promise).
    match rustler::sys::enif_term_type(env.as_c_arg(), term) {
        kind @ (Type::ERL_NIF_TERM_TYPE_LIST
        | Type::ERL_NIF_TERM_TYPE_TUPLE
        | Type::ERL_NIF_TERM_TYPE_MAP) => walk_raw(env, term, kind, budget, depth, max_depth),
        _ => true,
    }
}

/// [`walk_within`] of a container of type `kind`, through the raw NIF
/// calls: this walk runs on a normal scheduler before every request is
/// copied, and rustler's wrappers (a type enum per item, a `Result` per
/// list cell, a vector per tuple) made it cost twice the copy it guards
/// (about 18 ns a cell).
///
/// # Safety
///
/// `term` is a term of `term_env`, of type `kind`, live for the call.
#[inline(never)]
unsafe fn walk_raw(
    term_env: Env<'_>,
    term: rustler::sys::ErlNifTerm,
    kind: rustler::sys::ErlNifTermType,
    budget: &mut usize,
    depth: usize,
    max_depth: usize,
) -> bool {
    use rustler::sys::ErlNifTermType as Type;
    if depth > max_depth {
        return false;
    }
    let env = term_env.as_c_arg();
    // SAFETY (every call below): `term`, and the items read out of it, are
    // terms of `env`; the out-parameters are ours, written only when a
    // call returns true.
    match kind {
        Type::ERL_NIF_TERM_TYPE_LIST => {
            let (mut cell, mut head, mut tail) = (term, term, term);
            while rustler::sys::enif_get_list_cell(env, cell, &mut head, &mut tail) != 0 {
                // The cell is counted before its head is walked, as a
                // tuple's elements are: counted after, a head that used up
                // the budget exactly made it wrap around to the maximum,
                // and the rest of the request went uncounted.
                if *budget == 0 {
                    return false;
                }
                *budget -= 1;
                if !walk_item(term_env, head, budget, depth + 1, max_depth) {
                    return false;
                }
                cell = tail;
            }
            true
        }
        Type::ERL_NIF_TERM_TYPE_TUPLE => {
            let Some(items) = tuple_items(env, term) else {
                return true;
            };
            items.iter().all(|&item| {
                if *budget == 0 {
                    return false;
                }
                *budget -= 1;
                walk_item(term_env, item, budget, depth + 1, max_depth)
            })
        }
        Type::ERL_NIF_TERM_TYPE_MAP => {
            let mut size: usize = 0;
            if rustler::sys::enif_get_map_size(env, term, &mut size) == 0 {
                return true;
            }
            if size > *budget {
                return false;
            }
            *budget -= size;
            let Some(mut entries) = MapEntries::new(Term::new(term_env, term)) else {
                return true;
            };
            while let Some((key, value)) = entries.next() {
                if !(walk_item(term_env, key, budget, depth + 1, max_depth)
                    && walk_item(term_env, value, budget, depth + 1, max_depth))
                {
                    return false;
                }
            }
            true
        }
        _ => true,
    }
}

/// The bytes of `term` when it is a binary (`None` otherwise, a bitstring
/// included), read through the raw NIF call: rustler's `Binary` builds a
/// wrapper and a `Result` per read, which shows in bulk conversions.
///
/// # Safety
///
/// `term` is a term of `env`, live for `'a` (the bytes are the binary's own).
pub(crate) unsafe fn binary_bytes<'a>(
    env: *mut rustler::sys::ErlNifEnv,
    term: rustler::sys::ErlNifTerm,
) -> Option<&'a [u8]> {
    let mut binary = std::mem::MaybeUninit::<rustler::sys::ErlNifBinary>::uninit();
    // SAFETY: the caller's promise; the call only reads the term, and
    // writes the out-parameter only when it returns true.
    if rustler::sys::enif_inspect_binary(env, term, binary.as_mut_ptr()) == 0 {
        return None;
    }
    let binary = binary.assume_init();
    // An empty binary's data pointer may be anything, NULL included.
    Some(if binary.size == 0 {
        &[]
    } else {
        // SAFETY: `size` bytes at `data`, the binary's, live as the term is.
        std::slice::from_raw_parts(binary.data, binary.size)
    })
}

/// A tuple's elements in place, read through the raw NIF call (rustler's
/// `get_tuple` copies them into a new vector); `None` when `term` is not a
/// tuple.
///
/// # Safety
///
/// `term` is a term of `env`, live for `'a` (the slice is the tuple's own).
pub(crate) unsafe fn tuple_items<'a>(
    env: *mut rustler::sys::ErlNifEnv,
    term: rustler::sys::ErlNifTerm,
) -> Option<&'a [rustler::sys::ErlNifTerm]> {
    let mut arity: std::ffi::c_int = 0;
    let mut items: *const rustler::sys::ErlNifTerm = std::ptr::null();
    // SAFETY: the caller's promise; the out-parameters are ours, written
    // only when the call returns true.
    if rustler::sys::enif_get_tuple(env, term, &mut arity, &mut items) == 0 {
        return None;
    }
    Some(if arity <= 0 || items.is_null() {
        &[]
    } else {
        // SAFETY: enif_get_tuple points `items` at the tuple's `arity`
        // elements, live as the tuple is.
        std::slice::from_raw_parts(items, arity as usize)
    })
}

/// A map's entries as raw terms, read through the raw NIF calls: rustler's iterator
/// wraps each step in terms and options of its own, a few percent of a
/// large map's conversion in a profile.
pub(crate) struct MapEntries<'a> {
    env: rustler::Env<'a>,
    map: rustler::sys::ErlNifTerm,
    iterator: rustler::sys::ErlNifMapIterator,
}

impl<'a> MapEntries<'a> {
    pub(crate) fn new(map: Term<'a>) -> Option<Self> {
        let env = map.get_env();
        let mut iterator = std::mem::MaybeUninit::<rustler::sys::ErlNifMapIterator>::uninit();
        // SAFETY: `map` is a term of `env`; the iterator is written when
        // the call returns true (it is false for a non-map), and destroyed
        // once, by Drop.
        let made = unsafe {
            rustler::sys::enif_map_iterator_create(
                env.as_c_arg(),
                map.as_c_arg(),
                iterator.as_mut_ptr(),
                rustler::sys::ErlNifMapIteratorEntry::ERL_NIF_MAP_ITERATOR_HEAD,
            )
        };
        // SAFETY: initialized by the successful call above.
        (made != 0).then(|| MapEntries {
            env,
            map: map.as_c_arg(),
            iterator: unsafe { iterator.assume_init() },
        })
    }

    /// The next (key, value), as raw terms of the map's environment.
    pub(crate) fn next(&mut self) -> Option<(rustler::sys::ErlNifTerm, rustler::sys::ErlNifTerm)> {
        // Placeholders, overwritten by the call.
        let (mut key, mut value) = (self.map, self.map);
        // SAFETY: the iterator is live (made by `new`, not yet destroyed)
        // over a map of `env`; the pair is written when it returns true.
        unsafe {
            let env = self.env.as_c_arg();
            if rustler::sys::enif_map_iterator_get_pair(
                env,
                &mut self.iterator,
                &mut key,
                &mut value,
            ) == 0
            {
                return None;
            }
            rustler::sys::enif_map_iterator_next(env, &mut self.iterator);
        }
        Some((key, value))
    }
}

impl Drop for MapEntries<'_> {
    fn drop(&mut self) {
        // SAFETY: made by `new`, destroyed only here.
        unsafe { rustler::sys::enif_map_iterator_destroy(self.env.as_c_arg(), &mut self.iterator) };
    }
}
