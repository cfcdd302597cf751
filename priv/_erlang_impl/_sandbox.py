"""The Python half of the sandbox.

The blocking is done in C: an audit hook (PEP 578) installed before the
interpreter started raises ``RuntimeError`` for fork/exec/spawn/subprocess
events, and cannot be removed. This module only adds two things:

* ``is_sandboxed()``, so code can tell it runs inside the Erlang VM;
* named audit events for functions CPython implements on top of others, so
  the error names what the caller actually called: ``os.popen`` (which
  CPython runs through ``subprocess.Popen``), ``os.spawn*`` (through
  ``os.fork``) and ``os.posix_spawnp`` (through the ``os.posix_spawn`` event).
  Without these wrappers the calls are still blocked, under the inner name.
"""

import functools
import os
import sys

import _erlang_native

__all__ = ["is_sandboxed", "BLOCK_MESSAGE_TAIL"]

BLOCK_MESSAGE_TAIL = (
    " is blocked in Erlang VM context.\n"
    "fork()/exec() would corrupt the Erlang runtime.\n"
    "Use Erlang ports (open_port/2) for subprocess management."
)

_NAMED = (
    "popen",
    "posix_spawnp",
    "spawnl",
    "spawnle",
    "spawnlp",
    "spawnlpe",
    "spawnv",
    "spawnve",
    "spawnvp",
    "spawnvpe",
)


def is_sandboxed():
    """True when running inside the Erlang VM with the sandbox hook active."""
    return bool(_erlang_native.sandbox_active())


def _named(event, function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        sys.audit(event, *args)  # the C hook raises RuntimeError here
        return function(*args, **kwargs)

    wrapper.__erlang_sandbox_event__ = event
    return wrapper


def install_named_events():
    for name in _NAMED:
        original = getattr(os, name, None)
        if original is not None and not hasattr(original, "__erlang_sandbox_event__"):
            setattr(os, name, _named("os." + name, original))
