"""The ``erlang`` module: Erlang from inside Python, when Python runs in the BEAM.

Functions registered from Elixir (``ErlangPython.register_function/2``) or
Erlang (``py:register_function/2``) are attributes of this module::

    from erlang import run_shell        # or erlang.run_shell(...)
    run_shell("ls -la")                 # or erlang.call("run_shell", "ls -la")

Positional arguments arrive in Elixir as a list; keyword arguments, when
given, are appended to it as one map with string keys:
``erlang.f(1, x=2)`` calls the function with ``[1, %{"x" => 2}]``.

* ``erlang.send(pid, term)`` sends a message to a local process;
  ``erlang.whereis(name)`` is the pid registered under ``name``, or None;
* ``erlang.self()`` is the pid of the Elixir process whose call is running;
* ``erlang.Pid`` stands for a process identifier, ``erlang.Term`` for any other
  Erlang term with no Python type (references, ports, funs); both go back to
  Erlang as the identical term;
* ``erlang.CallbackError`` is raised when an Erlang function raises, exits or
  is killed; ``erlang.ProcessError`` when a message's receiver is not alive;
* ``erlang.Interrupted`` (a ``BaseException``) is raised into running code
  whose Elixir caller timed out, was cancelled or exited.
"""

import _erlang_native
from _erlang_native import (
    CallbackError,
    Interrupted,
    Pid,
    ProcessError,
    Term,
    call,
    is_registered,
    registered,
    send,
)
from _erlang_native import self as _self

from _erlang_impl._loop import ErlangEventLoop, ErlangEventLoopPolicy
from _erlang_impl._sandbox import SandboxBlocked, is_sandboxed
from _erlang_impl._types import register_decoder

__all__ = [
    "ErlangEventLoop",
    "ErlangEventLoopPolicy",
    "async_call",
    "CallbackError",
    "Function",
    "Interrupted",
    "Pid",
    "ProcessError",
    "SandboxBlocked",
    "SuspensionRequired",
    "Term",
    "call",
    "is_registered",
    "is_sandboxed",
    "register_decoder",
    "registered",
    "self",
    "send",
    "whereis",
]


def self():
    """The pid of the Elixir process whose call is running, or None."""
    return _self()


class Function:
    """A callable standing for the Erlang function registered as ``name``.

    It looks the name up at each call, so it follows re-registration, and
    raises NameError once the function is unregistered.
    """

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __call__(self, *args, **kwargs):
        return call(self.name, *args, **kwargs)

    def __repr__(self):
        return f"<erlang.Function {self.name}>"


class SuspensionRequired(BaseException):
    """The original erlang_python raises this inside ``erlang.call`` to
    suspend Python while Erlang runs the callback. Here ``erlang.call``
    waits in place and never raises it; the class is kept, a
    ``BaseException`` like the original's, so code naming it (``except
    erlang.SuspensionRequired: raise``) still runs."""


def whereis(name):
    """The pid of the local process registered as ``name`` (str or bytes),
    or None when no process is.

    The lookup never creates an atom: a name no atom exists for cannot be
    registered, so it is None.
    """
    if isinstance(name, bytes):
        name = name.decode("utf-8")
    elif not isinstance(name, str):
        raise TypeError(
            f"erlang.whereis() needs a process name (str or bytes), got {type(name).__name__}"
        )
    return call("_py_whereis", name)


def _atom(name):
    # The original's erlang._atom(name) makes an erlang.Atom. Atoms reach
    # Python as str here and Python data never becomes an atom, so the name
    # stays a str (what erlang.whereis and the callbacks take).
    if not isinstance(name, str):
        raise TypeError(f"an atom name is a str, got {type(name).__name__}")
    return name


def __getattr__(name):
    # Module-level __getattr__ (PEP 562) serves registered functions, so
    # `from erlang import name` and `erlang.name(...)` both work, and
    # hasattr(erlang, name) is False while nothing is registered as name.
    if not name.startswith("__") and is_registered(name):
        return Function(name)
    raise AttributeError(
        f"module 'erlang' has no attribute {name!r} "
        f"(no Erlang function is registered under that name)"
    )


def __dir__():
    return sorted(set(globals()) | set(registered()))


# Shared state (ErlangPython.State): an ETS table both sides use.

_STATE = "__erlang_python_state__"


def state_set(key, value):
    """Stores value under key."""
    call(_STATE, "set", key, value)


def state_get(key, default=None):
    """The value under key, or default."""
    return call(_STATE, "get", key, default)


def state_delete(key):
    """Removes key."""
    call(_STATE, "delete", key)


def state_keys():
    """All keys."""
    return call(_STATE, "keys")


def state_incr(key, by=1):
    """Atomically adds by to the counter under key; returns the new value."""
    return call(_STATE, "incr", key, by)


def state_decr(key, by=1):
    """Atomically subtracts by; returns the new value."""
    return call(_STATE, "decr", key, by)


__all__ += ["state_set", "state_get", "state_delete", "state_keys", "state_incr", "state_decr"]


# Awaiting Erlang functions from asyncio code.

_executor = None


def async_call(name, *args, **kwargs):
    """Awaitable erlang.call: runs the registered function without blocking
    the running event loop (the wait happens on a worker thread)."""
    global _executor
    import asyncio
    import functools
    from concurrent.futures import ThreadPoolExecutor

    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=64, thread_name_prefix="erlang_async_call")
    loop = asyncio.get_running_loop()
    return loop.run_in_executor(_executor, functools.partial(call, name, *args, **kwargs))


# Logging, tracing and SharedDict (see ErlangPython.Logging, ErlangPython.Tracing
# and ErlangPython.SharedDict).

from _erlang_impl._io import ErlangLogHandler as ErlangHandler  # noqa: E402
from _erlang_impl._shared_dict import SharedDict  # noqa: E402
from _erlang_impl._tracing import Span, trace  # noqa: E402


def setup_logging(level=10, format=None):
    """Sends logging records at ``level`` and above to Elixir's Logger, with
    ``format`` (default ``'%(message)s'``); returns the handler."""
    from _erlang_impl._io import configure

    return configure(level, format)


__all__ += ["ErlangHandler", "SharedDict", "Span", "setup_logging", "trace"]


# Channels and buffers (ErlangPython.Channel, ErlangPython.Buffer) and
# running a coroutine to completion.

from _erlang_impl._channel import (  # noqa: E402
    ByteChannel,
    ByteChannelClosed,
    Channel,
    ChannelClosed,
    PyBuffer,
    reply,
)


def run(main, *, debug=None):
    """Runs the coroutine ``main`` to completion on a new ErlangEventLoop
    in the calling thread and returns its result (``asyncio.run``; ``debug``
    as there: True turns on asyncio's debug mode for the loop)."""
    import asyncio

    return asyncio.run(main, debug=debug)


def new_event_loop():
    """A new ErlangEventLoop."""
    return ErlangEventLoop()


EventLoopPolicy = ErlangEventLoopPolicy


def install():
    """Makes ErlangEventLoop asyncio's default loop (an event loop policy).

    Event loop policies are deprecated from Python 3.14: there it raises
    RuntimeError; pass ``loop_factory=erlang.new_event_loop`` to
    ``asyncio.run`` (or ``asyncio.Runner``) instead. The policy is already
    installed when the interpreter starts in the VM."""
    import sys

    if sys.version_info >= (3, 14):
        raise RuntimeError(
            "erlang.install() is not available on Python 3.14+, where event loop "
            "policies are deprecated: use asyncio.run(main(), "
            "loop_factory=erlang.new_event_loop)"
        )
    import asyncio

    asyncio.set_event_loop_policy(ErlangEventLoopPolicy())


def sleep(seconds):
    """Sleeps without holding anything the VM needs.

    Called from a coroutine running on an event loop, returns an awaitable
    (``await erlang.sleep(0.1)``) so the loop runs other tasks meanwhile.
    Called from plain code, it waits with the GIL released on the Python
    worker thread (never on a BEAM scheduler) and returns None.
    """
    import asyncio
    import time

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        if seconds > 0:
            time.sleep(seconds)
        return None
    return asyncio.sleep(max(seconds, 0))


__all__ += [
    "ByteChannel",
    "ByteChannelClosed",
    "Channel",
    "ChannelClosed",
    "EventLoopPolicy",
    "PyBuffer",
    "install",
    "new_event_loop",
    "reply",
    "run",
    "sleep",
]


# Reactors (ErlangPython.Reactor): protocol objects serving descriptors that
# Erlang accepted and handed over.

# Not `from . import reactor`: that asks __getattr__ (a registry lookup, a
# round trip to Elixir in the isolated worker) before importing.
import erlang.reactor as reactor  # noqa: E402
from _erlang_impl._reactor import ReactorBuffer  # noqa: E402

__all__ += ["ReactorBuffer"]
# Continuations a function returns instead of a value (see _erlang_impl._schedule).

from _erlang_impl._schedule import (  # noqa: E402
    InlineScheduleMarker,
    ScheduleMarker,
    consume_time_slice,
    schedule,
    schedule_inline,
    schedule_py,
)

__all__ += [
    "InlineScheduleMarker",
    "ScheduleMarker",
    "consume_time_slice",
    "schedule",
    "schedule_inline",
    "schedule_py",
]
