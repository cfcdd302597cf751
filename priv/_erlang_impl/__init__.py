"""Python-side internals of erlang_python.

Imported once when the interpreter starts inside the Erlang VM. Importing it
installs the sandbox's naming wrappers and its subprocess-free
``ctypes.util.find_library`` (see ``_sandbox``); the blocking itself is native
(a kernel filter, an audit hook and guards, all in place before this runs).
"""

from . import _loop, _sandbox
from ._loop import ErlangEventLoop, ErlangEventLoopPolicy

_sandbox.install_named_events()
_sandbox.install_find_library()
_loop.install()

__all__ = ["ErlangEventLoop", "ErlangEventLoopPolicy", "_loop", "_sandbox"]
