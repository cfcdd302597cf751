//! Long lists of integers (or of floats) passed as positional arguments,
//! packed into a flat array on the caller's dirty scheduler.
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

use std::sync::atomic::{AtomicUsize, Ordering};

use pyo3::ffi;
use pyo3::prelude::*;
use rustler::sys::{enif_get_double, enif_get_int64, enif_get_list_cell, enif_is_empty_list};
use rustler::{Encoder, Env, ResourceArc, Term, TermType};

use super::error::Result;

/// Lists shorter than this are copied as they are: below it, packing saves
/// less than the resource costs.
pub(crate) const PACK_FROM: usize = 1024;

/// Positional arguments looked at for a list to pack: calls have few, and
/// a long argument list of scalars is left alone.
const ARGS_LOOKED_AT: usize = 64;

/// A list's items, packed: 64-bit integers, or floats as their bits.
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
}

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
/// integers or of floats replaced by its packed form; `args` itself when
/// none is, or when it is not a short proper list. Runs on a dirty
/// scheduler: it reads every cell of the lists it packs.
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
/// [`PACK_FROM`] items, all 64-bit integers or all floats.
fn pack(list: Term<'_>) -> Option<PackedList> {
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

/// Whether `term` is a packed list.
pub(crate) fn is_packed(term: Term<'_>) -> bool {
    term.decode::<ResourceArc<PackedList>>().is_ok()
}

/// The Python list of a packed list (see [`is_packed`]).
pub(crate) fn to_py<'py>(py: Python<'py>, term: Term<'_>) -> Result<Bound<'py, PyAny>> {
    let packed = term
        .decode::<ResourceArc<PackedList>>()
        .map_err(|_| super::error::internal("packed list"))?;
    let words = packed.take_words();
    if words.is_empty() {
        // Never empty when packed (see PACK_FROM): converted before.
        return Err(super::error::internal("packed list converted twice"));
    }
    let list = list_of(py, packed.kind, &words);
    recycle(words);
    list
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
        };
        fill(index, item)?;
    }
    Ok(list)
}
