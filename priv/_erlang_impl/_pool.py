"""The event-loop pool's entry point (ErlangPython.EventLoopPool).

``start`` runs on an interpreter worker, in the caller's environment (its
globals are passed in, so ``__main__`` means the names the caller's
``exec`` defined). A plain function's value is the call's result; an
awaitable one goes to the pool's loop ``index`` (see ``_async.Placed``).
"""

import importlib
import inspect

from . import _async


def resolve(module, function, scope):
    """The callable ``module.function``; ``__main__`` names come from scope."""
    if module == "__main__" and "." not in function and function in scope:
        return scope[function]
    target = importlib.import_module(module)
    for part in function.split("."):
        target = getattr(target, part)
    return target


def start(index, module, function, args, kwargs, scope):
    """Calls ``module.function(*args, **kwargs)``; an awaitable result is
    bound for loop ``index``."""
    value = resolve(module, function, scope)(*args, **kwargs)
    if inspect.isawaitable(value):
        return _async.placed(index, value)
    return value


def current_loop():
    """Index of the pool loop running the calling coroutine, or None."""
    import asyncio

    running = asyncio.get_running_loop()
    for index, event_loop in list(_async._loops.items()):
        if event_loop is running:
            return index
    return None
