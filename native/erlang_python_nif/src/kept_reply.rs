//! Replies kept out of the caller's mailbox until it asks for them.
//!
//! An async call (`ErlangPython.async_call/4`) is awaited later, when other
//! messages may have piled up in the caller's mailbox. A reply sent at once
//! would sit behind them, and `receive` on the call's reference would scan
//! them all at every await. So an async call is submitted with the
//! reference `{:erlang_python_kept, ref}`: its reply is kept in the job, and
//! `claim` (at await) sends it tagged with a reference made just before the
//! `receive`, which the VM then finds without scanning older messages (the
//! receive-marker optimisation). A claim that comes first leaves its
//! reference for the reply to be sent with as soon as it is ready.

use rustler::{Encoder, Env, LocalPid, OwnedEnv, Term};

use crate::atoms;
use crate::job::{JobState, Kept};
use crate::messaging::send_owned;

/// Whether `reference` asks for its reply to be kept (`{:erlang_python_kept, _}`).
pub(crate) fn is_kept(reference: Term<'_>) -> bool {
    match rustler::types::tuple::get_tuple(reference) {
        Ok(parts) => {
            parts.len() == 2 && parts[0] == atoms::erlang_python_kept().to_term(reference.get_env())
        }
        Err(_) => false,
    }
}

/// Worker side, once the job is committed to done: keeps `result` (a term
/// of any env), or sends it if its caller already claimed it.
pub(crate) fn keep(job: &JobState, result: Term<'_>) {
    let owned = OwnedEnv::new();
    let saved = owned.save(result);
    let mut kept = job.kept.lock().unwrap_or_else(|p| p.into_inner());
    match std::mem::take(&mut *kept) {
        Kept::ClaimedBy(pid, claim_env, claim) => {
            owned.run(|env| {
                let claim = claim_env.run(|claim_env_| claim.load(claim_env_).in_env(env));
                let message = (claim, saved.load(env)).encode(env);
                send_owned(env, &pid, message);
            });
            *kept = Kept::Delivered;
        }
        _ => *kept = Kept::Reply(owned, saved),
    }
}

/// What [`claim`] did.
pub(crate) enum Claim {
    /// `{claim, result}` was sent, or will be as soon as the result is ready.
    Claimed,
    /// No reply will come: the call was cancelled.
    Cancelled,
    /// The reply was claimed before (the call was awaited already).
    Delivered,
}

/// Caller side (a NIF): `{claim, result}` goes to `pid` now if the reply is
/// kept, or as soon as it is ready.
pub(crate) fn claim(env: Env<'_>, job: &JobState, pid: LocalPid, claim: Term<'_>) -> Claim {
    let mut kept = job.kept.lock().unwrap_or_else(|p| p.into_inner());
    match std::mem::take(&mut *kept) {
        Kept::Reply(owned, saved) => {
            owned.run(|owned_env| {
                let message = (claim.in_env(owned_env), saved.load(owned_env)).encode(owned_env);
                // SAFETY: called from a NIF, so `env` is the calling process's
                // environment, as enif_send requires on a scheduler thread;
                // `owned_env` is the process-independent environment that
                // owns `message`, whose terms move to the receiver (nothing
                // is copied); `owned` is dropped right after, unused.
                unsafe {
                    rustler::sys::enif_send(
                        env.as_c_arg(),
                        pid.as_c_arg(),
                        owned_env.as_c_arg(),
                        message.as_c_arg(),
                    );
                }
            });
            *kept = Kept::Delivered;
            Claim::Claimed
        }
        Kept::Delivered => {
            *kept = Kept::Delivered;
            Claim::Delivered
        }
        _ if job.is_cancelled() => Claim::Cancelled,
        _ => {
            let claim_env = OwnedEnv::new();
            let saved = claim_env.save(claim);
            *kept = Kept::ClaimedBy(pid, claim_env, saved);
            Claim::Claimed
        }
    }
}
