"""Python's standard streams and logging, routed into Elixir.

``sys.stdout`` and ``sys.stderr`` become writers that hand output to the
Elixir process that made the current call: it goes to its group leader, so
``ExUnit.CaptureIO`` captures it and iex shows it. Output is line-buffered
per caller: complete lines go out together (a print's text and its newline
in one message), and an unfinished line waits until a newline, a flush(),
or the end of the call (the worker calls end_of_call() before it replies),
so output is written before the call that printed it returns. A write made
from a Python thread of its own goes straight to the application's group
leader (the standard output).

``logging`` records go to Elixir's ``Logger``, with the logger name, module,
function and line as metadata. Each record made during a call also carries
the calling process's ``Logger.metadata`` (as attributes, so a format can
say ``%(request_id)s``, and as ``record.erlang_metadata``), and it comes back
on the Logger event. The root logger's level follows Logger's level (set at
start, and again whenever a record is made during a call) until it is set
explicitly with configure().
"""

import io
import logging

# The native module, not `erlang`: that module re-exports this one's handler.
from _erlang_native import call as _erlang_call
from _erlang_native import self as _caller

# The `_erlang_native` of own-GIL sub-interpreters and of the isolated worker
# process has neither: their request loops do not call end_of_call(), so
# output is written through as it comes instead of line-buffered, and log
# records wait the ordinary way. (Read from the module's dict: a module
# __getattr__ there may answer any name.)
_native_names = __import__("_erlang_native").__dict__
_erlang_call_blocked = _native_names.get("call_blocked", _erlang_call)
_output_pending = _native_names.get("output_pending")
del _native_names

OUTPUT_FUNCTION = "__erlang_python_output__"
LOG_FUNCTION = "__erlang_python_log__"
METADATA_FUNCTION = "__erlang_python_logger_metadata__"

# A caller's unfinished line, by (stream name, caller pid).
_pending = {}
# An unfinished line longer than this goes out anyway.
_PENDING_LIMIT = 65536


def _send(stream, text):
    _erlang_call(OUTPUT_FUNCTION, stream, text)


def _flush(stream, caller):
    text = _pending.pop((stream, caller), None)
    if text:
        _send(stream, text)


def end_of_call():
    """Flushes the current caller's unfinished lines; whether other callers'
    output still waits (called by the worker when a request ends)."""
    caller = _caller()
    if caller is not None:
        _flush("stdout", caller)
        _flush("stderr", caller)
    return bool(_pending)


class ErlangWriter(io.TextIOBase):
    """A text stream whose writes go to an Elixir process's group leader."""

    def __init__(self, stream_name):
        super().__init__()
        self._stream = stream_name

    @property
    def name(self):
        return "<erlang %s>" % self._stream

    @property
    def encoding(self):
        return "utf-8"

    def writable(self):
        return True

    def isatty(self):
        return False

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not %s" % type(text).__name__)
        if not text:
            return 0
        caller = _caller()
        if caller is None or _output_pending is None:
            _send(self._stream, text)
            return len(text)
        key = (self._stream, caller)
        buffered = _pending.pop(key, "") + text
        end = buffered.rfind("\n") + 1
        if len(buffered) > _PENDING_LIMIT:
            end = len(buffered)
        if end:
            _send(self._stream, buffered[:end])
        if end < len(buffered):
            _pending[key] = buffered[end:]
            _output_pending()
        return len(text)

    def flush(self):
        caller = _caller()
        if caller is not None:
            _flush(self._stream, caller)


class ErlangLogHandler(logging.Handler):
    """Forwards log records to Elixir's Logger."""

    def emit(self, record):
        try:
            message = self.format(record)
            # Blocked too: the record may be logged under such a lock.
            _erlang_call_blocked(
                LOG_FUNCTION,
                record.levelno,
                message,
                {
                    "logger": record.name,
                    "module": record.module,
                    "function": record.funcName,
                    "line": record.lineno,
                    "file": record.pathname,
                    "erlang_metadata": getattr(record, "erlang_metadata", None),
                },
            )
        except Exception:  # a logging failure must not break the caller
            self.handleError(record)


_handler = None
# Whether the root logger's level follows Logger's (until configure()).
_following = True


def follow_level(level):
    """Sets the root logger's level to Logger's (a Python level number) and
    makes it follow Logger's from now on (ErlangPython.Logging.sync_level/0)."""
    global _following
    _following = True
    logging.getLogger().setLevel(level)


def _with_caller_metadata(factory):
    def make_record(*args, **kwargs):
        record = factory(*args, **kwargs)
        if _caller() is None:
            return record
        try:
            # Blocked, not serving nested requests: a record may be made
            # under a lock a nested request would take (asyncio's set-up).
            metadata, level = _erlang_call_blocked(METADATA_FUNCTION)
        except Exception:  # a record is made even if Elixir cannot answer
            return record
        if metadata:
            record.erlang_metadata = metadata
            for key, value in metadata.items():
                if key not in record.__dict__:
                    setattr(record, key, value)
        if _following and level is not None:
            logging.getLogger().setLevel(level)
        return record

    make_record._erlang_python = True
    return make_record


def install():
    import sys

    global _handler
    sys.stdout = ErlangWriter("stdout")
    sys.stderr = ErlangWriter("stderr")
    _handler = ErlangLogHandler()
    _handler.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger().addHandler(_handler)
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "_erlang_python", False):
        logging.setLogRecordFactory(_with_caller_metadata(factory))


def configure(level, format=None):
    """Sets the root logger's level and the format of the records sent to
    Elixir (ErlangPython.Logging.configure/1, erlang.setup_logging); the
    level no longer follows Logger's."""
    global _following
    _following = False
    root = logging.getLogger()
    root.setLevel(level)
    handler = _handler
    if handler is None or handler not in root.handlers:
        handler = ErlangLogHandler()
        root.addHandler(handler)
    handler.setFormatter(logging.Formatter(format or "%(message)s"))
    return handler
