//! Whether a request is small enough to copy on a normal scheduler.
//!
//! `submit` copies a request's terms before it returns. Copying costs about
//! as much as walking, so a request that would take a normal scheduler's
//! time slice past a millisecond is refused with `:too_large`, and the
//! Elixir side sends it again through `submit_dirty`, on a dirty scheduler.

use rustler::Term;

use crate::terms::cells_within;

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
/// normal scheduler, `None` otherwise (the walk: `terms::cells_within`).
pub(crate) fn inline_cells(term: Term<'_>) -> Option<usize> {
    cells_within(term, INLINE_COPY_BUDGET, INLINE_COPY_DEPTH)
}
