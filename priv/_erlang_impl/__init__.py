"""Python-side internals of erlang_python.

Imported once when the interpreter starts inside the Erlang VM. Importing it
installs the sandbox's naming wrappers (see ``_sandbox``); the blocking itself
is done by a C-level audit hook that was installed before Python started.
"""

from . import _loop, _sandbox
from ._loop import ErlangEventLoop, ErlangEventLoopPolicy

_sandbox.install_named_events()
_loop.install()

__all__ = ["ErlangEventLoop", "ErlangEventLoopPolicy", "_loop", "_sandbox"]
