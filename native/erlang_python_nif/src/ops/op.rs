//! The request format, declared once on this side.
//!
//! `ErlangPython.Request` builds these terms; rustler's `NifTaggedEnum`
//! derive decodes them (a unit variant is an atom, a tuple variant a tuple
//! tagged with the variant's snake_case name). Fields that need a message
//! naming what is wrong (names, code, arguments) stay terms here and are
//! checked by `inputs` as they are used.
//!
//! A request may come wrapped as `{:scoped, key, op}` ([`Submission`]): the
//! scope says who submitted it, not what to run, so it stays with the job
//! and the worker thread is given `op` alone.

use rustler::{Encoder, Env, NifTaggedEnum, Term};

use crate::convert;

// Encoded too: a large request is rebuilt with its long lists packed
// (`Submission::with_packed_args`).
#[derive(NifTaggedEnum)]
#[rustler(encode, decode)]
pub(crate) enum Op<'a> {
    /// `:ping`: a round trip that runs no Python.
    Ping,
    /// `{:call, module, function, args, kwargs}`.
    Call(Term<'a>, Term<'a>, Term<'a>, Term<'a>),
    /// `{:eval, code, locals}`.
    Eval(Term<'a>, Term<'a>),
    /// `{:exec, code}`.
    Exec(Term<'a>),
    /// `{:getattr, object, name}`.
    Getattr(Term<'a>, Term<'a>),
    /// `{:call_method, object, name, args, kwargs}`.
    CallMethod(Term<'a>, Term<'a>, Term<'a>, Term<'a>),
    /// `{:repr, object, limit}`: `repr(object)`, cut after `limit` characters.
    Repr(Term<'a>, usize),
    /// `{:raw, op}`: `op`'s value as a handle, whatever it is (`decode: false`).
    Raw(Box<Op<'a>>),
    /// `{:arrays, op}`: `op`'s value converted with buffers (numpy arrays,
    /// `array.array`, `memoryview`) as `%ErlangPython.Array{}`, no copy.
    Arrays(Box<Op<'a>>),
    /// `{:context, globals, op}`: `op` run with a context's globals (a handle
    /// to a dict) instead of `__main__`'s.
    Context(Term<'a>, Box<Op<'a>>),
    /// `:diagnostic_panic`: panics on the worker thread, to prove a panic
    /// there becomes an error reply. Built only for the test suite.
    #[cfg(feature = "diagnostics")]
    DiagnosticPanic,
    /// `:diagnostic_packed_words`: the words packed lists hold now
    /// (`convert::packed`). Built only for the test suite.
    #[cfg(feature = "diagnostics")]
    DiagnosticPackedWords,
}

impl<'a> Op<'a> {
    /// Decodes a request term; `None` when it is not one.
    pub(crate) fn from_term(term: Term<'a>) -> Option<Self> {
        term.decode().ok()
    }

    /// Requests in a context are pinned to one worker, chosen from the
    /// context's identity (its object's address, stable for its life):
    /// C extensions such as numpy can break when objects move between OS
    /// threads. Other requests may run anywhere.
    pub(crate) fn pinning(&self) -> Option<usize> {
        match self {
            Op::Context(globals, _) => convert::handles::identity(*globals),
            Op::Raw(inner) | Op::Arrays(inner) => inner.pinning(),
            _ => None,
        }
    }

    /// The op with `pack` applied to a call's positional arguments.
    fn map_args(self, pack: &impl Fn(Term<'a>) -> Term<'a>) -> Self {
        match self {
            Op::Call(module, function, args, kwargs) => {
                Op::Call(module, function, pack(args), kwargs)
            }
            Op::CallMethod(object, name, args, kwargs) => {
                Op::CallMethod(object, name, pack(args), kwargs)
            }
            Op::Raw(inner) => Op::Raw(Box::new(inner.map_args(pack))),
            Op::Arrays(inner) => Op::Arrays(Box::new(inner.map_args(pack))),
            Op::Context(globals, inner) => Op::Context(globals, Box::new(inner.map_args(pack))),
            other => other,
        }
    }
}

/// `{:scoped, key, op}`: `op` submitted on behalf of scope `key`.
#[derive(NifTaggedEnum)]
#[rustler(encode, decode)]
enum Envelope<'a> {
    Scoped(u64, Term<'a>),
}

/// A request as `submit` receives it: an [`Op`], possibly tagged with a
/// scope (`{:scoped, key, op}`, a positive `key`). A scope is a context
/// process, or a process's own environment: its requests all run on the
/// same worker thread (`key rem workers`, whatever their namespace), and
/// can be interrupted together by key (`interrupt_scope/1`), without their
/// caller knowing the job.
pub(crate) struct Submission<'a> {
    /// The op's term: what the worker thread is given.
    pub(crate) term: Term<'a>,
    pub(crate) op: Op<'a>,
    /// The scope's key; `None` for an untagged request.
    pub(crate) scope: Option<u64>,
}

impl<'a> Submission<'a> {
    /// Decodes a submitted term; `None` when it is not a request (a scope
    /// key of 0 included: keys are positive).
    pub(crate) fn from_term(term: Term<'a>) -> Option<Self> {
        let (term, scope) = match term.decode::<Envelope<'a>>() {
            Ok(Envelope::Scoped(0, _)) => return None,
            Ok(Envelope::Scoped(key, op)) => (op, Some(key)),
            Err(_) => (term, None),
        };
        let op = Op::from_term(term)?;
        Some(Submission { term, op, scope })
    }

    /// `term` with the long lists of integers or floats among a call's
    /// positional arguments packed (`convert::pack_args`), for a request
    /// about to be copied on a dirty scheduler; `term` itself when it is
    /// not a request.
    pub(crate) fn with_packed_args(env: Env<'a>, term: Term<'a>) -> Term<'a> {
        let Some(submission) = Submission::from_term(term) else {
            return term;
        };
        let op = submission
            .op
            .map_args(&|args| convert::pack_args(env, args))
            .encode(env);
        match submission.scope {
            Some(key) => Envelope::Scoped(key, op).encode(env),
            None => op,
        }
    }
}
