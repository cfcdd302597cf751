//! Answering a request: converting what an operation produced and sending
//! `{reference, result}` to the caller, unless the caller gave up.
//!
//! Used by the worker threads for immediate results and by
//! [`crate::awaitable`] for results that come later.

use pyo3::prelude::*;
use rustler::{Encoder, Env, OwnedEnv, Term};

use crate::atoms;
use crate::convert;
use crate::errors::{reason_term, Failure};
use crate::job::Request;
use crate::kept_reply;
use crate::messaging::send_owned;
use crate::panics;
use crate::polled_reply;
use crate::terms::binary_term;

/// What an operation produced, before it is converted for the reply.
pub(crate) enum Outcome<'py> {
    Value(Bound<'py, PyAny>),
    /// A handle to the value, whatever it is (`decode: false`).
    Handle(Bound<'py, PyAny>),
    /// A value whose buffers become `%ErlangPython.Array{}` (`{:arrays, op}`).
    WithArrays(Bound<'py, PyAny>),
    /// A value, and something to free only once the reply is sent: the
    /// second field is never read, only dropped after the reply.
    ValueThenFree(Bound<'py, PyAny>, #[allow(dead_code)] Bound<'py, PyAny>),
    /// `exec` succeeded; there is no value.
    Ok,
    Pong,
}

/// Sends the outcome of `request` to its caller (unless it gave up).
/// `replies` is a scratch environment, cleared afterwards.
pub(crate) fn send(
    py: Python<'_>,
    replies: &mut OwnedEnv,
    request: &Request,
    outcome: &Result<Outcome<'_>, Failure>,
) {
    // Building the reply converts Python values; guard it like the work.
    let sent = panics::catch(|| send_reply(replies, request, |env| result_term(env, py, outcome)));
    if sent.is_err() {
        replies.clear();
        let failure = Failure::Internal("panic while encoding the reply".into());
        let _ = panics::catch(|| {
            send_reply(replies, request, |env| {
                (atoms::error(), reason_term(env, py, &failure)).encode(env)
            })
        });
    }
}

fn result_term<'a>(
    env: Env<'a>,
    py: Python<'_>,
    outcome: &Result<Outcome<'_>, Failure>,
) -> Term<'a> {
    match outcome {
        Ok(Outcome::Pong) => atoms::pong().encode(env),
        Ok(Outcome::Value(value)) | Ok(Outcome::ValueThenFree(value, _)) => {
            if let Some(external) =
                convert::external_ok_result(value, |bytes| binary_term(env, bytes))
            {
                return (atoms::etf(), external).encode(env);
            }
            match convert::to_term(env, value) {
                Ok(term) => (atoms::ok(), term).encode(env),
                Err(err) => (atoms::error(), reason_term(env, py, &Failure::from(err))).encode(env),
            }
        }
        Ok(Outcome::WithArrays(value)) => match convert::to_term_with_arrays(env, value) {
            Ok(term) => (atoms::ok(), term).encode(env),
            Err(err) => (atoms::error(), reason_term(env, py, &Failure::from(err))).encode(env),
        },
        Ok(Outcome::Handle(value)) => {
            (atoms::ok(), convert::handles::to_term(env, value)).encode(env)
        }
        Ok(Outcome::Ok) => atoms::ok().encode(env),
        Err(failure) => (atoms::error(), reason_term(env, py, failure)).encode(env),
    }
}

/// Builds `{reference, result}` and sends it, but only if the job can
/// still be committed to done: in the request's own environment when it is
/// small (`Request::in_own_env`), else in `replies`, cleared afterwards.
fn send_reply(
    replies: &mut OwnedEnv,
    request: &Request,
    build: impl for<'a> FnOnce(Env<'a>) -> Term<'a>,
) {
    // A polling caller takes its reply from the job (never a kept one).
    if polled_reply::is_polled(&request.job) {
        polled_reply::deposit(request, build);
        return;
    }
    // An async call's reply is kept (copied out), never sent from here.
    let kept = request.in_own_env(|_, reference| kept_reply::is_kept(reference));
    if kept == Some(false) {
        request.in_own_env(|env, reference| commit_and_send(env, request, reference, build(env)));
        return;
    }
    replies.run(|env| {
        let reference = request.reference_in(env);
        // An async call's reply waits in the job for its caller to claim it.
        if kept_reply::is_kept(reference) {
            let result = build(env);
            if request.job.finish() {
                kept_reply::keep(&request.job, result);
            }
            return;
        }
        commit_and_send(env, request, reference, build(env));
    });
    replies.clear();
}

/// Sends `{reference, result}`, built in `env`, if the job can still be
/// committed to done.
fn commit_and_send<'a>(env: Env<'a>, request: &Request, reference: Term<'a>, result: Term<'a>) {
    let message = (reference, result).encode(env);
    // Commit to replying only now that the message exists: from here on
    // the caller's cancel() answers :done and waits for this message.
    if request.job.finish() {
        send_owned(env, &request.reply_to, message);
    }
}
