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

import erlang

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
            erlang.call(OUTPUT_FUNCTION, self._stream, text)
        return len(text)

    def flush(self):
        pass


class ErlangLogHandler(logging.Handler):
    """Forwards log records to Elixir's Logger."""

    def emit(self, record):
        try:
            message = self.format(record)
            erlang.call(
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


def install():
    import sys

    sys.stdout = ErlangWriter("stdout")
    sys.stderr = ErlangWriter("stderr")
    handler = ErlangLogHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger().addHandler(handler)
