//! Sending messages to Erlang processes from threads the VM does not manage
//! (the worker threads and Python's own threads).
//!
//! rustler's `OwnedEnv::send_and_clear` always sends what its closure
//! returns; here a message is sent only if it could be built, and nothing is
//! sent from a scheduler thread (where a NULL caller env would be invalid).

use rustler::{Env, LocalPid, OwnedEnv, Term};

/// Builds a message in `owned` and sends it to `pid` if `build` succeeds.
/// `Ok(true)` when delivered, `Ok(false)` when the process is not alive.
/// The environment is cleared afterwards in every case.
pub fn build_and_send<E>(
    owned: &mut OwnedEnv,
    pid: &LocalPid,
    build: impl for<'a> FnOnce(Env<'a>) -> Result<Term<'a>, E>,
) -> Result<bool, E> {
    let result = owned.run(|env| build(env).map(|message| send_owned(env, pid, message)));
    owned.clear();
    result
}

/// Sends `message`, a term of the process-independent `env`, to `pid`.
/// On success ERTS invalidates the env's terms: the caller must clear it.
pub fn send_owned(env: Env<'_>, pid: &LocalPid, message: Term<'_>) -> bool {
    if rustler::thread::is_scheduler_thread() {
        return false;
    }
    // SAFETY: we are on a thread the VM does not manage, so the caller env
    // must be NULL; `env` is the process-independent environment that owns
    // `message` (both come from the same OwnedEnv::run call).
    unsafe {
        rustler::sys::enif_send(
            std::ptr::null_mut(),
            pid.as_c_arg(),
            env.as_c_arg(),
            message.as_c_arg(),
        ) == 1
    }
}
