//! Long lists of integers (or of floats) and large maps of scalars passed
//! as positional arguments, packed into a flat array on the caller's dirty
//! scheduler.
//!
//! A request too large to copy on a normal scheduler is copied into the
//! request's environment on a dirty one (`submit_dirty`), and the worker
//! then walks the copy cell by cell. For a million integers that copy took
//! about 9.5 ms of the caller's time (ERTS sizes the term, then copies 16
//! bytes per cell) and the walk as long again on the interpreter thread.
//! Packing reads each cell once and writes 8 bytes per item; the worker
//! then makes the Python list from a flat array, with no list cells to
//! chase. The Python value is exactly what `to_python` makes of the list.
//!
//! Only proper lists of at least [`PACK_FROM`] items, all integers of 64
//! bits or all floats, are packed: anything else (a bignum, a mix, an
//! improper tail) is found as the walk reaches it and the list is copied
//! as before. (So a long list whose odd item comes late is read in vain up
//! to it: one pass of reads, cheaper than the copy it then takes anyway.)
//! The packed form lives only inside a request's environment: it is never
//! returned to Elixir.
//!
//! Large maps whose keys and values are each a 64-bit integer, a float or
//! a binary of at most 64 bytes, in any mix (a 100,000-key map of string
//! keys and integer values), are packed the same way, as a sequence of tagged items: the copy of the map (ERTS
//! walks it to size it, then copies each trie node, entry and key) was a
//! seventh of that request's CPU time in a profile, and the worker read
//! the copy back through the map iterator, entry by entry. Packing reads
//! each entry once, on the caller's dirty scheduler, in the iterator's
//! order, which the dict then keeps, as `to_python` would.

use std::sync::atomic::{AtomicUsize, Ordering};

use pyo3::ffi;
use pyo3::prelude::*;
use rustler::sys::{
    enif_get_double, enif_get_int64, enif_get_list_cell, enif_is_empty_list, ErlNifEnv, ErlNifTerm,
};
use rustler::{Encoder, Env, ResourceArc, Term, TermType};

use super::error::{internal, Result};
use super::pyobjects::{binary_to_py, presized_dict};
use crate::terms::{binary_bytes, MapEntries};

/// Lists shorter than this are copied as they are: below it, packing saves
/// less than the resource costs.
pub(crate) const PACK_FROM: usize = 1024;

/// Positional arguments looked at for a list to pack: calls have few, and
/// a long argument list of scalars is left alone.
const ARGS_LOOKED_AT: usize = 64;

/// A list's items, packed: 64-bit integers, or floats as their bits; or a
/// map's entries (see [`Kind::Map`]).
///
/// The worker takes the words out as it makes the Python list, and gives
/// their memory back at once: the resource itself lives on until the
/// caller's process collects its garbage (the packed term was made on its
/// heap), which may be long after, and must not hold megabytes meanwhile.
/// A request's arguments are converted once, so a second conversion finds
/// the list gone and says so.
pub(crate) struct PackedList {
    kind: Kind,
    words: std::sync::Mutex<Vec<u64>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ints,
    Floats,
    /// The entry count, then each entry's key and value as an item: a
    /// word whose low byte is the item's tag ([`TAG_INT`], [`TAG_FLOAT`],
    /// [`TAG_BINARY`]) and, for a binary, whose other bytes are its length,
    /// then the payload: the integer, the float's bits, or the binary's
    /// bytes in whole words.
    Map,
}

const TAG_INT: u64 = 0;
const TAG_FLOAT: u64 = 1;
const TAG_BINARY: u64 = 2;

/// Longest binary a packed map holds: ERTS copies binaries up to 64 bytes
/// into the request (longer ones it shares by reference), so packing a
/// longer one would copy more than the copy it replaces. A map with one is
/// copied as before.
const PACKED_BINARY_MAX: usize = 64;

#[rustler::resource_impl]
impl rustler::Resource for PackedList {}

/// Most words a spare vector may hold (8 MB); a longer one is freed.
const SPARE_WORDS: usize = 1 << 20;

/// Spare vectors kept at most (so at most 16 MB kept idle).
const SPARES: usize = 2;

/// Vectors of finished requests, emptied, for the next lists to pack into:
/// a fresh 8 MB vector faults in 2,048 pages as it fills, and page faults
/// are dear under this machine's kernel (they were most of the packing time
/// of a million integers in a profile).
fn spares() -> &'static Spares {
    static SPARES_KEPT: std::sync::OnceLock<Spares> = std::sync::OnceLock::new();
    SPARES_KEPT.get_or_init(|| crossbeam_channel::bounded(SPARES))
}

type Spares = (
    crossbeam_channel::Sender<Vec<u64>>,
    crossbeam_channel::Receiver<Vec<u64>>,
);

/// Words held by packed lists not yet converted nor released, in all.
static HELD_WORDS: AtomicUsize = AtomicUsize::new(0);

/// Words held by packed lists not yet converted nor released (test builds
/// answer it to `:diagnostic_packed_words`).
#[allow(dead_code)]
pub(crate) fn held_words() -> usize {
    HELD_WORDS.load(Ordering::Relaxed)
}

impl PackedList {
    fn new(kind: Kind, words: Vec<u64>) -> Self {
        HELD_WORDS.fetch_add(words.len(), Ordering::Relaxed);
        PackedList {
            kind,
            words: std::sync::Mutex::new(words),
        }
    }

    /// The words, taken out (empty once taken).
    fn take_words(&self) -> Vec<u64> {
        let words = match self.words.lock() {
            Ok(mut words) => std::mem::take(&mut *words),
            Err(_) => Vec::new(),
        };
        HELD_WORDS.fetch_sub(words.len(), Ordering::Relaxed);
        words
    }
}

impl Drop for PackedList {
    fn drop(&mut self) {
        recycle(self.take_words());
    }
}

/// Gives back at once the memory of the packed lists among the positional
/// arguments of `op` (a request's term) that were never converted. Packed
/// terms are made on the caller's heap and copied into the request, so a
/// request dropped before it ran (cancelled while queued) would otherwise
/// leave them holding their words until the caller's process collects its
/// garbage, which an idle process may never do. Looks only where a packed
/// list can be: a few tuples deep, at the first items of a list.
pub(crate) fn release_in(op: Term<'_>) {
    /// `{:scoped, key, {:context, globals, {:raw, {:call, m, f, args, kw}}}}`
    /// puts the arguments four tuples down.
    const OP_TUPLES: usize = 5;
    fn within(term: Term<'_>, depth: usize) {
        match term.get_type() {
            TermType::Tuple if depth < OP_TUPLES => {
                if let Ok(items) = rustler::types::tuple::get_tuple(term) {
                    items.into_iter().for_each(|item| within(item, depth + 1));
                }
            }
            TermType::List => {
                let Ok(items) = term.into_list_iterator() else {
                    return;
                };
                for item in items.take(ARGS_LOOKED_AT) {
                    if let Ok(packed) = item.decode::<ResourceArc<PackedList>>() {
                        recycle(packed.take_words());
                    }
                }
            }
            _ => {}
        }
    }
    within(op, 0);
}

/// Keeps `words`' memory for the next list to pack, when it is worth
/// keeping: a vector that never held a packed list (the empty one a
/// resource gives back once its words were taken) would take a slot that a
/// full-sized one needs, and the next list would grow a fresh vector from
/// nothing, faulting in every page again.
fn recycle(mut words: Vec<u64>) {
    if (PACK_FROM..=SPARE_WORDS).contains(&words.capacity()) {
        words.clear();
        let _ = spares().0.try_send(words);
    }
}

/// `args` (a request's positional arguments) with each long list of
/// integers or of floats, and each large map of scalars, replaced by its
/// packed form; `args` itself when none is, or when it is not a short
/// proper list. Runs on a dirty scheduler: it reads every cell of the
/// lists and every entry of the maps it packs.
pub(crate) fn pack_args<'a>(env: Env<'a>, args: Term<'a>) -> Term<'a> {
    let Ok(iter) = args.into_list_iterator() else {
        return args;
    };
    let mut items = Vec::new();
    let mut packed_any = false;
    for item in iter {
        if items.len() == ARGS_LOOKED_AT {
            return args;
        }
        match pack(item) {
            Some(packed) => {
                packed_any = true;
                items.push(ResourceArc::new(packed).encode(env));
            }
            None => items.push(item),
        }
    }
    if packed_any {
        items.encode(env)
    } else {
        args
    }
}

/// The packed form of `list` when it is a proper list of at least
/// [`PACK_FROM`] items, all 64-bit integers or all floats, or a map that
/// [`pack_map`] packs.
fn pack(list: Term<'_>) -> Option<PackedList> {
    if list.is_map() {
        return pack_map(list);
    }
    let env = list.get_env().as_c_arg();
    let mut cell = list.as_c_arg();
    let (mut head, mut tail) = (cell, cell);
    // SAFETY (every call below): `env` is the environment of the NIF call
    // running now, `cell`, `head` and `tail` are its terms, and these calls
    // only read them; the out-parameters are written only on success.
    if unsafe { enif_get_list_cell(env, cell, &mut head, &mut tail) } == 0 {
        return None;
    }
    let mut int = 0i64;
    let mut float = 0f64;
    let kind = if unsafe { enif_get_int64(env, head, &mut int) } != 0 {
        Kind::Ints
    } else if unsafe { enif_get_double(env, head, &mut float) } != 0 {
        Kind::Floats
    } else {
        return None;
    };
    let mut words = spares().1.try_recv().unwrap_or_default();
    loop {
        let word = match kind {
            Kind::Ints if unsafe { enif_get_int64(env, head, &mut int) } != 0 => int as u64,
            Kind::Floats if unsafe { enif_get_double(env, head, &mut float) } != 0 => {
                float.to_bits()
            }
            _ => {
                recycle(words);
                return None;
            }
        };
        words.push(word);
        cell = tail;
        if unsafe { enif_get_list_cell(env, cell, &mut head, &mut tail) } == 0 {
            break;
        }
    }
    let proper = unsafe { enif_is_empty_list(env, cell) } != 0;
    if !proper || words.len() < PACK_FROM {
        recycle(words);
        return None;
    }
    Some(PackedList::new(kind, words))
}

/// The packed form of `map` when it has at least [`PACK_FROM`] entries,
/// every key and value a 64-bit integer, a float or a binary of at most
/// [`PACKED_BINARY_MAX`] bytes (so no struct: their keys are atoms).
fn pack_map(map: Term<'_>) -> Option<PackedList> {
    let size = map.map_size().ok()?;
    if size < PACK_FROM {
        return None;
    }
    let env = map.get_env().as_c_arg();
    let mut entries = MapEntries::new(map)?;
    let mut words = spares().1.try_recv().unwrap_or_default();
    words.push(size as u64);
    while let Some((key, value)) = entries.next() {
        // SAFETY: `key` and `value` are terms of `env`, the environment of
        // the NIF call running now.
        if !unsafe { push_item(env, key, &mut words) && push_item(env, value, &mut words) } {
            recycle(words);
            return None;
        }
    }
    Some(PackedList::new(Kind::Map, words))
}

/// Appends `term` as a packed map's item (see [`Kind::Map`]); false when
/// it is none of the scalars a packed map holds.
///
/// # Safety
///
/// `term` is a term of `env`, the environment of the NIF call running now.
unsafe fn push_item(env: *mut ErlNifEnv, term: ErlNifTerm, words: &mut Vec<u64>) -> bool {
    // SAFETY (every call): the caller's promise; these calls only read the
    // term, and write their out-parameter only on success.
    let mut int = 0i64;
    if enif_get_int64(env, term, &mut int) != 0 {
        words.extend([TAG_INT, int as u64]);
        return true;
    }
    if let Some(data) = binary_bytes(env, term) {
        if data.len() > PACKED_BINARY_MAX {
            return false;
        }
        words.push(TAG_BINARY | (data.len() as u64) << 8);
        for chunk in data.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            words.push(u64::from_ne_bytes(word));
        }
        return true;
    }
    let mut float = 0f64;
    if enif_get_double(env, term, &mut float) != 0 {
        words.extend([TAG_FLOAT, float.to_bits()]);
        return true;
    }
    false
}

/// Whether `term` is a packed list (or map).
pub(crate) fn is_packed(term: Term<'_>) -> bool {
    term.decode::<ResourceArc<PackedList>>().is_ok()
}

/// The Python list of a packed list, or the dict of a packed map (see
/// [`is_packed`]).
pub(crate) fn to_py<'py>(py: Python<'py>, term: Term<'_>) -> Result<Bound<'py, PyAny>> {
    let packed = term
        .decode::<ResourceArc<PackedList>>()
        .map_err(|_| internal("packed list"))?;
    let words = packed.take_words();
    if words.is_empty() {
        // Never empty when packed (see PACK_FROM): converted before.
        return Err(internal("packed list converted twice"));
    }
    let value = match packed.kind {
        Kind::Map => dict_of(py, &words),
        kind => list_of(py, kind, &words),
    };
    recycle(words);
    value
}

/// The dict of a packed map's words (see [`Kind::Map`]).
fn dict_of<'py>(py: Python<'py>, words: &[u64]) -> Result<Bound<'py, PyAny>> {
    let (&size, mut rest) = words.split_first().ok_or_else(|| internal("packed map"))?;
    let dict = presized_dict(py, size as usize)?;
    while !rest.is_empty() {
        let key = item_of(py, &mut rest)?;
        let value = item_of(py, &mut rest)?;
        // SAFETY: the GIL is held, `dict` is a dict and both objects are
        // live; PyDict_SetItem takes its own references.
        if unsafe { ffi::PyDict_SetItem(dict.as_ptr(), key.as_ptr(), value.as_ptr()) } != 0 {
            return Err(PyErr::fetch(py).into());
        }
    }
    Ok(dict)
}

/// The Python value of the packed map item at the start of `rest`, which
/// then starts after it.
fn item_of<'py>(py: Python<'py>, rest: &mut &[u64]) -> Result<Bound<'py, PyAny>> {
    let malformed = || internal("packed map item");
    let (&head, after) = rest.split_first().ok_or_else(malformed)?;
    // SAFETY (the two calls): the GIL is held; each returns a new
    // reference or NULL with an exception set, which from_owned_ptr_or_err
    // turns into the error.
    let (value, payload) = match head & 0xFF {
        TAG_INT => {
            let &word = after.first().ok_or_else(malformed)?;
            let value =
                unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyLong_FromLongLong(word as i64))? };
            (value, 1)
        }
        TAG_FLOAT => {
            let &word = after.first().ok_or_else(malformed)?;
            let value = unsafe {
                Bound::from_owned_ptr_or_err(py, ffi::PyFloat_FromDouble(f64::from_bits(word)))?
            };
            (value, 1)
        }
        TAG_BINARY => {
            let len = (head >> 8) as usize;
            if len > PACKED_BINARY_MAX {
                return Err(malformed());
            }
            let words = after.get(..len.div_ceil(8)).ok_or_else(malformed)?;
            let mut bytes = [0u8; PACKED_BINARY_MAX];
            for (at, word) in words.iter().enumerate() {
                bytes[at * 8..at * 8 + 8].copy_from_slice(&word.to_ne_bytes());
            }
            (binary_to_py(py, &bytes[..len])?, words.len())
        }
        _ => return Err(malformed()),
    };
    *rest = &after[payload..];
    Ok(value)
}

fn list_of<'py>(py: Python<'py>, kind: Kind, words: &[u64]) -> Result<Bound<'py, PyAny>> {
    // SAFETY: the GIL is held; PyList_New returns a new reference or NULL
    // with an exception set (handled by from_owned_ptr_or_err).
    let list = unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyList_New(words.len() as ffi::Py_ssize_t))?
    };
    let fill = |index: usize, item: *mut ffi::PyObject| -> Result<()> {
        if item.is_null() {
            // The slots not filled yet are NULL, which list_dealloc allows.
            return Err(PyErr::fetch(py).into());
        }
        // SAFETY: `list` has `words.len()` slots and `index` is below it;
        // each is filled once with a new reference, which it steals.
        unsafe { ffi::PyList_SET_ITEM(list.as_ptr(), index as ffi::Py_ssize_t, item) };
        Ok(())
    };
    for (index, &word) in words.iter().enumerate() {
        let item = match kind {
            // SAFETY: the GIL is held; a new reference or NULL.
            Kind::Ints => unsafe { ffi::PyLong_FromLongLong(word as i64) },
            // SAFETY: as above.
            Kind::Floats => unsafe { ffi::PyFloat_FromDouble(f64::from_bits(word)) },
            Kind::Map => return Err(internal("packed map read as a list")),
        };
        fill(index, item)?;
    }
    Ok(list)
}
