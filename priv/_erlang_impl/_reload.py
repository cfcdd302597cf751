"""ErlangPython.reload/2: running an edited module's new source."""

import importlib
import os
import sys


def reload(name):
    """Reloads the module called name (importing it if it is not loaded).

    Its cached bytecode is removed first: Python validates a .pyc by the
    source's size and mtime in whole seconds, so an edit of the same size
    within the second would otherwise go unseen. On failure (a syntax
    error, an exception at import) the exception propagates and the module
    keeps what it had, as importlib.reload leaves it."""
    importlib.invalidate_caches()
    module = sys.modules.get(name)
    if module is None:
        importlib.import_module(name)
        return None
    cached = getattr(module, "__cached__", None)
    if cached:
        try:
            os.remove(cached)
        except OSError:
            pass
    importlib.reload(module)
    return None
