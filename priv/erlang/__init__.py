"""The ``erlang`` module: Erlang from inside Python, when Python runs in the BEAM.

``erlang.Pid`` stands for an Erlang process identifier, ``erlang.Term`` for
any other Erlang term that has no Python type (references, ports, funs); both
convert back to the identical Erlang term when they return to Elixir.
"""

from _erlang_native import Pid, Term

from _erlang_impl._sandbox import is_sandboxed

__all__ = ["Pid", "Term", "is_sandboxed"]
