"""Imports, paths and module reloading, for ErlangPython.Imports and
ErlangPython.Interpreter."""

import importlib
import sys


def ensure(module):
    """Imports module into sys.modules now. True when it imported; a module
    that cannot be imported is reported, not raised: the registry accepts it
    and the error comes at call time, as with a plain call."""
    try:
        importlib.import_module(module)
        return True
    except Exception:
        return False


def add_paths(paths):
    """Appends each path to sys.path unless it is there already."""
    for path in paths:
        if path not in sys.path:
            sys.path.append(path)


def reload(module):
    """Reloads module if it was imported; True when it was."""
    if sys.modules.get(module) is None:
        return False
    from ._reload import reload as reload_module

    reload_module(module)
    return True
