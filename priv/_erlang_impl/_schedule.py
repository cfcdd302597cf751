"""erlang.schedule*, continuations a function returns instead of a value.

A function called from Erlang may end with ``return erlang.schedule(...)``
(or ``schedule_py``, ``schedule_inline``): the caller then gets that
continuation's result, as if the function had returned it. The worker that
ran the call resolves the marker right after it returns, still within the
call (so the caller's timeout still interrupts the chain); a continuation
may return another marker, and so on.

In erlang_python these release the dirty scheduler a NIF call holds. Here
Python never runs on a BEAM scheduler, so the markers are about structure
and fairness: between two steps the worker lets other Python threads take
the GIL, and ``consume_time_slice`` tells a long loop when to take such a
step.
"""

import importlib
import sys
import threading
import time

import _erlang_native

# The BEAM's reduction time slice is about 1 ms; a step of a long loop
# should be about as long. Measured in the thread's CPU time, so waiting
# for the GIL does not use up a slice.
SLICE_SECONDS = 0.001


class Marker:
    """A continuation returned from a function called from Erlang."""

    __slots__ = ()

    def run(self):
        raise NotImplementedError


class ScheduleMarker(Marker):
    """Continue with the registered Erlang function ``name(*args)``, or with
    the Python function ``module.function(*args, **kwargs)``."""

    __slots__ = ("_target", "_args", "_kwargs", "_globals")

    def __init__(self, target, args, kwargs, scope=None):
        self._target = target
        self._args = tuple(args)
        self._kwargs = dict(kwargs or {})
        self._globals = scope

    def run(self):
        if isinstance(self._target, str):
            return _erlang_native.call(self._target, *self._args)
        module, function = self._target
        return _lookup(module, function, self._globals)(*self._args, **self._kwargs)

    def __repr__(self):
        return f"<erlang.ScheduleMarker {self._target!r}>"


class InlineScheduleMarker(Marker):
    """Continue with ``module.function(*args, **kwargs)``, looked up in the
    globals of the function that created the marker."""

    __slots__ = ("_module", "_function", "_args", "_kwargs", "_globals")

    def __init__(self, module, function, args, kwargs, scope):
        self._module = module
        self._function = function
        self._args = tuple(args or ())
        self._kwargs = dict(kwargs or {})
        self._globals = scope

    def run(self):
        target = _lookup(self._module, self._function, self._globals)
        return target(*self._args, **self._kwargs)

    def __repr__(self):
        return f"<erlang.InlineScheduleMarker {self._module}.{self._function}>"


def _lookup(module, function, scope):
    if module == "__main__" and scope is not None and function in scope:
        return scope[function]
    target = sys.modules.get(module) or importlib.import_module(module)
    try:
        for part in function.split("."):
            target = getattr(target, part)
    except AttributeError:
        raise NameError(f"name {function!r} is not defined in module {module!r}") from None
    return target


def _text(value, what):
    if isinstance(value, bytes):
        value = value.decode()
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    return value


def schedule(name, *args):
    """Returns a marker: the call's result becomes ``erlang.call(name, *args)``."""
    return ScheduleMarker(_text(name, "name"), args, None)


def schedule_py(module, function, args=None, kwargs=None):
    """Returns a marker: the call's result becomes ``module.function(*args,
    **kwargs)``, called once this function has returned. ``'__main__'``
    names are looked up in the calling function's globals first (its
    process environment or context), then in the ``__main__`` module."""
    target = (_text(module, "module"), _text(function, "function"))
    return ScheduleMarker(target, args or (), kwargs, sys._getframe(1).f_globals)


def schedule_inline(module, function, args=None, kwargs=None):
    """Like ``schedule_py`` (erlang_python's faster variant; here both
    continue on the same thread)."""
    scope = sys._getframe(1).f_globals
    return InlineScheduleMarker(
        _text(module, "module"), _text(function, "function"), args, kwargs, scope
    )


def resolve(value):
    """Runs markers until one returns a plain value."""
    while isinstance(value, Marker):
        # Between steps, let other Python threads (other calls, the event
        # loops) take the GIL.
        time.sleep(0)
        value = value.run()
    return value


_slice = threading.local()

# A slice not touched for this long (wall time) belongs to work that ended.
STALE_SECONDS = 0.01


def consume_time_slice(percent):
    """Records that recent work used ``percent`` (1-100) of a time slice;
    True when the slice is used up (by those percentages, or by 1 ms of
    the thread's CPU time since the slice began): time to return a
    ``schedule_py`` continuation. The next call starts a new slice, and so
    does a call more than 10 ms after the previous one."""
    if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 100:
        raise ValueError(f"percent must be an int from 1 to 100, got {percent!r}")
    cpu, wall = time.thread_time(), time.monotonic()
    if getattr(_slice, "started", None) is None or wall - _slice.touched > STALE_SECONDS:
        _slice.started, _slice.used = cpu, 0
    _slice.touched = wall
    _slice.used += percent
    if _slice.used >= 100 or cpu - _slice.started >= SLICE_SECONDS:
        _slice.started = None
        return True
    return False
