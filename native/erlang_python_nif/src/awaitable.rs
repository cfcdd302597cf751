//! Awaitable results: replies that come later.
//!
//! When a call returns a coroutine (or any awaitable), a worker thread does
//! not wait for it: it hands the awaitable and a `PendingReply` to the
//! runtime's asyncio loop (`_erlang_impl._async`, on a thread of its own) and
//! serves the next request. The loop runs thousands of such tasks at once;
//! when one finishes, it resolves its `PendingReply`, which converts the
//! result and sends it to the caller, unless the caller gave up meanwhile.

use std::sync::Mutex;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use rustler::OwnedEnv;

use crate::errors::Failure;
use crate::job::Request;
use crate::reply::{self, Outcome};
use crate::type_slots::is_awaitable;

/// The reply a request owes, handed to Python to be given later.
#[pyclass(module = "erlang", name = "PendingReply", frozen)]
pub(crate) struct PendingReply {
    job_id: u64,
    request: Mutex<Option<Request>>,
}

impl PendingReply {
    fn new(request: Request) -> Self {
        PendingReply {
            job_id: request.job_id(),
            request: Mutex::new(Some(request)),
        }
    }

    fn answer(&self, py: Python<'_>, outcome: Result<Outcome<'_>, Failure>) -> PyResult<()> {
        let request = self
            .request
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("this reply was already given"))?;
        reply::send(py, &mut OwnedEnv::new(), &request, &outcome);
        Ok(())
    }
}

#[pymethods]
impl PendingReply {
    /// Sends `value` as the call's result.
    fn resolve(&self, py: Python<'_>, value: Bound<'_, PyAny>) -> PyResult<()> {
        self.answer(py, Ok(Outcome::Value(value)))
    }

    /// Sends `error` as the call's exception.
    fn reject(&self, py: Python<'_>, error: Bound<'_, PyAny>) -> PyResult<()> {
        self.answer(py, Err(Failure::Python(PyErr::from_value(error))))
    }

    #[getter]
    fn job_id(&self) -> u64 {
        self.job_id
    }
}

/// Hands `awaitable` to the runtime's asyncio loop; `request` is answered
/// when it completes.
pub(crate) fn schedule(py: Python<'_>, awaitable: &Bound<'_, PyAny>, request: Request) {
    let pending = match Bound::new(py, PendingReply::new(request)) {
        Ok(pending) => pending,
        Err(_) => return, // allocation failure: the caller's timeout answers
    };
    let scheduled = py
        .import("_erlang_impl._async")
        .and_then(|module| module.call_method1("schedule", (awaitable, &pending)));
    if let Err(err) = scheduled {
        let _ = pending.get().answer(py, Err(Failure::Python(err)));
    }
}

/// Answers `request` with `outcome` on a pool worker (or a thread serving
/// for one): an awaitable result goes to the asyncio loop, which answers
/// later; nothing is sent when the caller gave up. `replies` is a scratch
/// environment.
pub(crate) fn answer_or_schedule(
    py: Python<'_>,
    replies: &mut OwnedEnv,
    request: Request,
    outcome: Result<Outcome<'_>, Failure>,
) {
    if request.job.is_cancelled() {
        return;
    }
    if let Ok(Outcome::Value(value) | Outcome::ValueThenFree(value, _)) = &outcome {
        if is_awaitable(value) {
            let value = value.clone();
            drop(outcome);
            schedule(py, &value, request);
            return;
        }
    }
    reply::send(py, replies, &request, &outcome);
}
