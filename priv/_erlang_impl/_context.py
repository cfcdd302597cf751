"""Namespaces for ErlangPython.Context: contexts, context processes and
process-bound environments."""

import builtins
import importlib


def new():
    """A fresh globals dict: its own names, the builtins and the ``erlang``
    module (bound, as in the original, so code need not import it).

    ``__name__`` is ``"__main__"`` as in the original and as for a script,
    so ``sys.modules[__name__]`` (the interpreter's ``__main__`` module,
    shared by contexts as modules are) resolves."""
    import erlang

    return {"__name__": "__main__", "__builtins__": builtins, "erlang": erlang}


def create(imports, preload):
    """A namespace for a context process: the registered imports done (into
    sys.modules; a module that fails to import is left for call time, as
    ensure_imported promises), then the preload code run in it. A failing
    preload raises: the context does not start."""
    for module in imports:
        try:
            importlib.import_module(module)
        except Exception:
            pass
    namespace = new()
    if preload:
        exec(compile(preload, "<preload>", "exec"), namespace)
    return namespace


def copy(namespace):
    """A process's own environment in a context: a shallow copy of the
    context's namespace, so what the context has (preload, definitions) is
    visible and what the process defines stays its own."""
    return dict(namespace)
