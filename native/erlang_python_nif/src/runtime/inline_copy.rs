//! Whether a request is small enough to copy on a normal scheduler.
//!
//! `submit` copies a request's terms before it returns. Copying costs about
//! as much as walking, so a request that would take a normal scheduler's
//! time slice past a millisecond is refused with `:too_large`, and the
//! Elixir side sends it again through `submit_dirty`, on a dirty scheduler.

use rustler::Term;

/// Most term cells (list cells, tuple elements, map entries) a request may
/// hold to be copied on a normal scheduler. Copying costs about as much as
/// walking, so larger requests go to a dirty scheduler instead, keeping each
/// NIF call well under a millisecond.
const INLINE_COPY_BUDGET: usize = 20_000;

/// Deepest nesting walked on a scheduler's (small) stack; anything deeper
/// counts as large and is copied on a dirty scheduler (ERTS's copy does not
/// recurse on the C stack).
const INLINE_COPY_DEPTH: usize = 64;

/// How many term cells `term` holds when it is small enough to copy on a
/// normal scheduler, `None` otherwise. Stops walking as soon as the budget
/// is spent, so it is cheap either way.
pub(crate) fn inline_cells(term: Term<'_>) -> Option<usize> {
    let mut budget = INLINE_COPY_BUDGET;
    walk_within(term, &mut budget, 0).then(|| INLINE_COPY_BUDGET - budget)
}

fn walk_within(term: Term<'_>, budget: &mut usize, depth: usize) -> bool {
    use rustler::TermType;
    if depth > INLINE_COPY_DEPTH {
        return false;
    }
    match term.get_type() {
        TermType::List => {
            let mut cell = term;
            while let Ok((head, tail)) = cell.list_get_cell() {
                if *budget == 0 || !walk_within(head, budget, depth + 1) {
                    return false;
                }
                *budget -= 1;
                cell = tail;
            }
            true
        }
        TermType::Tuple => match rustler::types::tuple::get_tuple(term) {
            Ok(items) => items.into_iter().all(|item| {
                if *budget == 0 {
                    return false;
                }
                *budget -= 1;
                walk_within(item, budget, depth + 1)
            }),
            Err(_) => true,
        },
        TermType::Map => {
            let size = term.map_size().unwrap_or(0);
            if size > *budget {
                return false;
            }
            *budget -= size;
            match rustler::MapIterator::new(term) {
                Some(entries) => {
                    let mut entries = entries;
                    entries.all(|(key, value)| {
                        walk_within(key, budget, depth + 1) && walk_within(value, budget, depth + 1)
                    })
                }
                None => true,
            }
        }
        _ => true,
    }
}
