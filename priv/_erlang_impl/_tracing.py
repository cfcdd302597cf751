"""Span-based tracing from Python (erlang.Span, @erlang.trace), collected for
ErlangPython.Tracing.

While tracing is enabled, each finished span is appended, in completion
order, to a list that ErlangPython.Tracing.spans/0 reads. Parents are tracked
per thread, so spans opened in different threads never nest by accident.
When tracing is disabled, spans cost a flag check and record nothing.
"""

import functools
import random
import threading
import time

_lock = threading.Lock()
_enabled = False
_spans = []
_local = threading.local()


def enable():
    global _enabled
    _enabled = True


def disable():
    global _enabled
    _enabled = False


def enabled():
    return _enabled


def spans():
    with _lock:
        return list(_spans)


def clear():
    with _lock:
        _spans.clear()


def _now_us():
    return time.monotonic_ns() // 1000


def _stack():
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


class Span:
    """A timed operation: ``with erlang.Span('name', key=value) as span:``.

    ``span.event(name, **attrs)`` records a point in time within it. An
    exception leaving the block marks the span ``error`` and records the
    exception text in its end attributes; the exception is not swallowed.
    """

    __slots__ = ("name", "attributes", "events", "span_id", "parent_id", "start_time", "_recording")

    def __init__(self, name, **attributes):
        self.name = str(name)
        self.attributes = attributes
        self.events = []
        self.span_id = None
        self.parent_id = None
        self.start_time = None
        self._recording = False

    def __enter__(self):
        self._recording = _enabled
        if self._recording:
            stack = _stack()
            self.parent_id = stack[-1].span_id if stack else None
            self.span_id = random.getrandbits(63) or 1
            self.start_time = _now_us()
            stack.append(self)
        return self

    def event(self, name, **attrs):
        """Records an event; events are kept most recent first."""
        if self._recording:
            self.events.insert(0, {"name": str(name), "attrs": attrs, "time": _now_us()})

    def __exit__(self, exc_type, exc, tb):
        if not self._recording:
            return False
        stack = _stack()
        if stack and stack[-1] is self:
            stack.pop()
        end = _now_us()
        end_attrs = {}
        if exc_type is not None:
            end_attrs["exception"] = str(exc) if str(exc) else exc_type.__name__
            end_attrs["exception_type"] = exc_type.__name__
        record = {
            "name": self.name,
            "span_id": self.span_id,
            "parent_id": self.parent_id,
            "start_time": self.start_time,
            "end_time": end,
            "duration_us": end - self.start_time,
            "status": "error" if exc_type is not None else "ok",
            "attributes": self.attributes,
            "end_attrs": end_attrs,
            "events": self.events,
        }
        with _lock:
            if _enabled:
                _spans.append(record)
        return False


def trace(name=None):
    """Decorator: each call of the function runs in a Span named ``name``
    (default ``module.qualname``)."""

    def decorate(function):
        span_name = name or "%s.%s" % (function.__module__, function.__qualname__)

        @functools.wraps(function)
        def traced(*args, **kwargs):
            with Span(span_name):
                return function(*args, **kwargs)

        return traced

    return decorate
