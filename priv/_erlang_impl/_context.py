"""Isolated namespaces for ErlangPython.Context."""

import builtins


def new():
    """A fresh globals dict: its own names, the builtins, nothing else."""
    return {"__name__": "__erlang_context__", "__builtins__": builtins}
