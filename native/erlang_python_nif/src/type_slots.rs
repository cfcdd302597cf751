//! What a Python object's type says of it, read from the type's slots
//! rather than through attribute look-ups (which, for a missing attribute,
//! raise and catch an `AttributeError`). Mounted by the NIF and by the
//! isolated worker (`worker/main.rs`), so both answer the same way.

use pyo3::prelude::*;

/// Whether `object` can be awaited: its type's `am_await` slot, which
/// CPython fills for every type with an `__await__` (C or Python), and
/// which `await` itself uses.
pub(crate) fn is_awaitable(object: &Bound<'_, PyAny>) -> bool {
    // SAFETY: `object` is a live object and the GIL is held (a `Bound`), so
    // its type is live too; `tp_as_async` is NULL or points at the type's
    // async slots, which live as long as the type.
    unsafe {
        let ty = pyo3::ffi::Py_TYPE(object.as_ptr());
        let async_methods = (*ty).tp_as_async;
        !async_methods.is_null() && (*async_methods).am_await.is_some()
    }
}
