"""Python's standard streams and logging, routed into Elixir.

``sys.stdout`` and ``sys.stderr`` become writers that hand each write to the
Elixir process that made the current call: output goes to its group leader,
so ``ExUnit.CaptureIO`` captures it and iex shows it. A write made from a
Python thread of its own goes to the application's group leader (the
standard output). Writes are synchronous: output is written before the call
that printed it returns.

``logging`` records go to Elixir's ``Logger``, with the logger name, module,
function and line as metadata. Python's own level filtering still applies
(the root logger's default level is WARNING).
"""

import io
import logging

# The native module, not `erlang`: that module re-exports this one's handler.
from _erlang_native import call as _erlang_call

OUTPUT_FUNCTION = "__erlang_python_output__"
LOG_FUNCTION = "__erlang_python_log__"


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
        if text:
            _erlang_call(OUTPUT_FUNCTION, self._stream, text)
        return len(text)

    def flush(self):
        pass


class ErlangLogHandler(logging.Handler):
    """Forwards log records to Elixir's Logger."""

    def emit(self, record):
        try:
            message = self.format(record)
            _erlang_call(
                LOG_FUNCTION,
                record.levelno,
                message,
                {
                    "logger": record.name,
                    "module": record.module,
                    "function": record.funcName,
                    "line": record.lineno,
                    "file": record.pathname,
                },
            )
        except Exception:  # a logging failure must not break the caller
            self.handleError(record)


_handler = None


def install():
    import sys

    global _handler
    sys.stdout = ErlangWriter("stdout")
    sys.stderr = ErlangWriter("stderr")
    _handler = ErlangLogHandler()
    _handler.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger().addHandler(_handler)


def configure(level, format=None):
    """Sets the root logger's level and the format of the records sent to
    Elixir (ErlangPython.Logging.configure/1, erlang.setup_logging)."""
    root = logging.getLogger()
    root.setLevel(level)
    handler = _handler
    if handler is None or handler not in root.handlers:
        handler = ErlangLogHandler()
        root.addHandler(handler)
    handler.setFormatter(logging.Formatter(format or "%(message)s"))
    return handler
