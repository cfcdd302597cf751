//! Atoms as Python objects, remembered per thread.
//!
//! Atoms fill Elixir data: map keys (`%{id: 1, name: "x"}`), tags, options.
//! Converting one the long way compares it with the atoms that have a
//! Python value of their own (`true`, `nil`, `:nan`, ...), copies its name
//! out of the atom table into a Rust string and decodes that into a new
//! `str`: about 250 ns an atom in a list of 1,000, against 40 ns an
//! integer. An atom's term word is the same in every environment for the
//! VM's life (atoms are never freed), so it can key the object made for it.
//!
//! The cache is direct-mapped ([`SLOTS`] entries, the word's hash picks
//! one, a newcomer replaces what was there): bounded whatever atoms come,
//! and a look-up is a multiply, a compare and an increment.
//!
//! Only the main interpreter's threads use it. Objects must not cross
//! interpreters, and a sub-interpreter's thread ends with its interpreter:
//! what its cache held could then not be released (a thread-local's
//! destructor runs without the GIL), so its conversions take the long way.
//! For the same reason a main-interpreter thread that ends (a Python
//! thread that converted terms) leaves its entries' references behind:
//! at most [`SLOTS`] references to strings that are interned, so shared
//! with every other thread's cache, not copies.

use std::cell::RefCell;
use std::hash::{Hash, Hasher};

use pyo3::ffi;
use pyo3::prelude::*;

use crate::interpreters;
use crate::name_hasher::NameHasher;

/// Entries per thread: more distinct atoms than a payload's keys and tags
/// usually hold, for 16 KB.
const SLOTS: usize = 1024;

/// One thread's entries: an atom's term word and a strong reference to its
/// object (a null pointer: empty).
struct Entries {
    slots: Box<[(rustler::sys::ErlNifTerm, *mut ffi::PyObject)]>,
}

thread_local! {
    static CACHE: RefCell<Option<Entries>> = const { RefCell::new(None) };
}

/// Which slot holds `atom`: its word hashed as the call-name cache hashes
/// atoms (`NameHasher`: one multiply, which spreads the atom-table index
/// that sits above the tag bits, then the high bits folded down).
fn slot_of(atom: rustler::sys::ErlNifTerm) -> usize {
    let mut hasher = NameHasher::default();
    atom.hash(&mut hasher);
    hasher.finish() as usize % SLOTS
}

/// The Python object for the atom whose term word is `atom`: the cached
/// one, or `make()`'s, then cached. `make` runs with nothing borrowed, so
/// whatever Python code it may set off (a collection's finalizers) can
/// convert atoms too.
pub(crate) fn object_for<'py>(
    py: Python<'py>,
    atom: rustler::sys::ErlNifTerm,
    make: impl FnOnce() -> Bound<'py, PyAny>,
) -> Bound<'py, PyAny> {
    if !interpreters::is_main(py) {
        return make();
    }
    let slot = slot_of(atom);
    let cached = CACHE.with_borrow(|cache| {
        cache
            .as_ref()
            .map(|entries| entries.slots[slot])
            .filter(|&(word, object)| word == atom && !object.is_null())
            .map(|(_, object)| object)
    });
    if let Some(object) = cached {
        // SAFETY: the entry holds a strong reference to a live object of
        // this interpreter (the main one, checked above), so a new
        // reference from it is valid; the GIL is held.
        return unsafe { Bound::from_borrowed_ptr(py, object) };
    }
    let object = make();
    // A new reference for the entry; the one it replaces is released once
    // nothing is borrowed.
    let replaced = CACHE.with_borrow_mut(|cache| {
        let entries = cache.get_or_insert_with(|| Entries {
            slots: vec![(rustler::sys::ErlNifTerm::default(), std::ptr::null_mut()); SLOTS]
                .into_boxed_slice(),
        });
        std::mem::replace(&mut entries.slots[slot], (atom, object.clone().into_ptr())).1
    });
    if !replaced.is_null() {
        // SAFETY: the entry's strong reference, to an object of this
        // interpreter; the GIL is held.
        unsafe { ffi::Py_DECREF(replaced) };
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_stay_in_range_and_neighbouring_atoms_spread() {
        // Atom words differ by the atom-table index, above the tag bits.
        let slots: std::collections::HashSet<usize> = (0..256usize)
            .map(|index| {
                // SAFETY: ErlNifTerm is a repr(transparent) word.
                let atom: rustler::sys::ErlNifTerm =
                    unsafe { std::mem::transmute((index << 6) | 0xB) };
                slot_of(atom)
            })
            .collect();
        assert!(slots.iter().all(|&slot| slot < SLOTS));
        // 256 consecutive atoms land in far more than a handful of slots.
        assert!(slots.len() > 200, "{}", slots.len());
    }
}
