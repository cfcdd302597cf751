"""The runtime's asyncio loop, where awaitable results run.

A call whose result is awaitable is not awaited on the interpreter thread:
the awaitable becomes a task on this loop (its own thread), and the call is
answered when the task finishes. Thousands can be in flight at once.
"""

import asyncio
import threading

_loop = None
_lock = threading.Lock()
_tasks = {}


def loop():
    """The runtime's ErlangEventLoop, started on first use."""
    global _loop
    with _lock:
        if _loop is None:
            from ._loop import ErlangEventLoop

            _loop = ErlangEventLoop()
            ready = threading.Event()
            thread = threading.Thread(
                target=_run, args=(_loop, ready), name="erlang_python_asyncio", daemon=True
            )
            thread.start()
            ready.wait()
    return _loop


def _run(event_loop, ready):
    asyncio.set_event_loop(event_loop)
    event_loop.call_soon(ready.set)
    event_loop.run_forever()


def schedule(awaitable, pending):
    """Runs awaitable on the loop; pending (a PendingReply) gets the result."""
    loop().call_soon_threadsafe(_start, awaitable, pending)


def _start(awaitable, pending):
    try:
        task = asyncio.ensure_future(awaitable)
    except Exception as error:  # not awaitable after all
        pending.reject(error)
        return
    _tasks[pending.job_id] = task
    task.add_done_callback(lambda done: _finish(done, pending))


def _finish(task, pending):
    _tasks.pop(pending.job_id, None)
    if task.cancelled():
        import erlang

        pending.reject(erlang.Interrupted("the call was cancelled: its caller timed out or exited"))
    elif task.exception() is not None:
        pending.reject(task.exception())
    else:
        pending.resolve(task.result())


def cancel_job(job_id):
    """Cancels the task running for job_id, if any (its caller gave up)."""
    task = _tasks.get(job_id)
    if task is not None and _loop is not None:
        _loop.call_soon_threadsafe(task.cancel)
