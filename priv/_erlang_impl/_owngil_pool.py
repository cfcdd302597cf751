"""The event-loop pool's side inside an own-GIL context.

``ErlangPython.EventLoopPool`` with own-GIL loops sends each task here, to a
sub-interpreter of its own (see ``ErlangPython.OwnGil``). The main
interpreter's ``ErlangEventLoop`` cannot serve it (its objects never cross
interpreters), so every such interpreter keeps a plain asyncio loop of its
own and runs a coroutine's result to completion on it: tasks of one caller
run one after another, in the order they were submitted, while the
interpreters of the pool run in parallel.

Each calling process has a session: a namespace of its own in the
interpreter, where ``__main__`` names (defined through ``exec_in``) are
looked up, dropped by ``forget`` when the process exits.

Nothing here imports the rest of ``_erlang_impl``: it must stay importable
in a sub-interpreter, where only the C-API ``erlang`` module exists.
"""

import asyncio
import importlib
import inspect

_sessions = {}
_loop = None


def _namespace(session):
    namespace = _sessions.get(session)
    if namespace is None:
        namespace = {"__name__": "__main__", "__builtins__": __builtins__}
        _sessions[session] = namespace
    return namespace


def _event_loop():
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    return _loop


def run(module, function, args, kwargs, session):
    """Calls ``module.function(*args, **kwargs)``; a coroutine (or any
    awaitable) it returns is run to completion on this interpreter's loop."""
    namespace = _namespace(session)
    if module == "__main__":
        try:
            target = namespace[function]
        except KeyError:
            raise NameError(f"name {function!r} is not defined in this session") from None
    else:
        target = getattr(importlib.import_module(module), function)
    result = target(*args, **kwargs)
    if inspect.isawaitable(result):
        result = _complete(result)
    return result


def _complete(awaitable):
    loop = _event_loop()
    task = loop.create_task(_awaited(awaitable))
    try:
        return loop.run_until_complete(task)
    except BaseException:
        # Interrupted (a timeout, a caller gone, erlang_python's interrupt):
        # the task would otherwise stay scheduled and resume under the next
        # one. Cancelled, its finally blocks run now.
        task.cancel()
        try:
            loop.run_until_complete(task)
        except BaseException:
            pass
        raise


async def _awaited(awaitable):
    return await awaitable


def exec_in(code, session):
    """Runs ``code`` in the session's namespace."""
    exec(code, _namespace(session))


def eval_in(code, session):
    """Evaluates ``code`` in the session's namespace."""
    return eval(code, _namespace(session))


def forget(session):
    """Drops the session's namespace (its process exited)."""
    _sessions.pop(session, None)


def sessions():
    """How many sessions this interpreter holds."""
    return len(_sessions)
