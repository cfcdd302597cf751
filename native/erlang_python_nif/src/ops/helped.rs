//! Running a request on a thread that helps while it waits for a callback
//! (`serving::Helper`): the one body of the main interpreter's helper
//! (`runtime/helping.rs`) and the own-GIL contexts' (`own_gil/helping.rs`),
//! which differ only in the interrupter slot they claim and in how they
//! answer.

use pyo3::prelude::*;

use super::Executor;
use crate::errors::Failure;
use crate::job::Request;
use crate::memory;
use crate::panics;
use crate::reply::Outcome;

/// Starts `request`'s job as `worker` (the interrupter slot a cancel of it
/// looks at) and runs its op, charging memory to its scope and catching
/// panics; `finish` sees the result first (the pool resolves
/// `erlang.schedule*` there). `None`: the caller gave up before we got to
/// it, and nothing ran.
///
/// The executor is a fresh one, dropped here with the GIL held. Kept in a
/// thread-local, its cached objects were dropped as the thread exited, not
/// attached: PyO3 then defers the decrefs to whichever thread attaches next,
/// perhaps one of another interpreter, which would touch this interpreter's
/// objects under the wrong GIL.
pub(crate) fn run<'py>(
    py: Python<'py>,
    request: &Request,
    worker: usize,
    finish: impl FnOnce(Python<'py>, Result<Outcome<'py>, Failure>) -> Result<Outcome<'py>, Failure>,
) -> Option<Result<Outcome<'py>, Failure>> {
    if !request.job.start(worker) {
        return None;
    }
    let charged_to = memory::enter(request.job.scope);
    let executor = Executor::default();
    let outcome = panics::catch(|| request.with_op(|op| finish(py, executor.execute(py, op))))
        .unwrap_or_else(|text| Err(Failure::Internal(text)));
    drop(charged_to);
    Some(outcome)
}
