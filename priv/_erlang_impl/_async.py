"""The runtime's asyncio loops, where awaitable results run.

A call whose result is awaitable is not awaited on the interpreter thread:
the awaitable becomes a task on one of these loops (each an ErlangEventLoop
on a thread of its own), and the call is answered when the task finishes.
Thousands can be in flight at once. Loop 0 is the default; the event-loop
pool (``ErlangPython.EventLoopPool``) places tasks on the others with
``placed(index, awaitable)``.
"""

import asyncio
import threading

import _erlang_native

_loops = {}
_lock = threading.Lock()
# job id -> (loop, task), so a caller that gives up can cancel its task.
_tasks = {}


def loop(index=0):
    """The runtime's ErlangEventLoop number ``index``, started on first use."""
    with _lock:
        event_loop = _loops.get(index)
        if event_loop is None or event_loop.is_closed():
            from ._loop import ErlangEventLoop

            event_loop = ErlangEventLoop()
            ready = threading.Event()
            name = "erlang_python_asyncio" if index == 0 else f"erlang_python_asyncio_{index}"
            thread = threading.Thread(
                target=_run, args=(event_loop, ready), name=name, daemon=True
            )
            thread.start()
            ready.wait()
            _loops[index] = event_loop
    return event_loop


def _run(event_loop, ready):
    asyncio.set_event_loop(event_loop)
    event_loop.call_soon(ready.set)
    # The loop serves every caller's awaitables, so nothing one of them
    # does may end it for the others. asyncio lets a KeyboardInterrupt or
    # SystemExit raised in a task (once the task is done with it) or in a
    # callback escape run_forever, and loop.stop() makes it return: either
    # way it runs again, and the task's done callback answers its caller.
    # Only a closed loop ends the thread (close() refuses a running loop,
    # so that is a close between two runs); loop() then starts another.
    while not event_loop.is_closed():
        try:
            event_loop.run_forever()
        except BaseException:
            pass


class Placed:
    """An awaitable bound for loop ``index`` rather than the default loop."""

    __slots__ = ("index", "awaitable")

    def __init__(self, index, awaitable):
        self.index = index
        self.awaitable = awaitable

    def __await__(self):
        return self.awaitable.__await__()


def placed(index, awaitable):
    """``awaitable``, to run on loop ``index`` when it is a call's result."""
    return Placed(index, awaitable)


def schedule(awaitable, pending):
    """Runs awaitable on its loop; pending (a PendingReply) gets the result."""
    if isinstance(awaitable, Placed):
        target = loop(awaitable.index)
        awaitable = awaitable.awaitable
    else:
        target = loop()
    target.call_soon_threadsafe(_start, target, awaitable, pending)


def _start(event_loop, awaitable, pending):
    try:
        task = asyncio.ensure_future(awaitable)
    except Exception as error:  # not awaitable after all
        pending.reject(error)
        return
    _tasks[pending.job_id] = (event_loop, task)
    task.add_done_callback(lambda done: _finish(done, pending))


def _finish(task, pending):
    _tasks.pop(pending.job_id, None)
    if task.cancelled():
        pending.reject(_erlang_native.Interrupted("the call was cancelled: its caller timed out or exited"))
    elif task.exception() is not None:
        pending.reject(task.exception())
    else:
        pending.resolve(task.result())


def cancel_job(job_id):
    """Cancels the task running for job_id, if any (its caller gave up)."""
    entry = _tasks.get(job_id)
    if entry is not None:
        event_loop, task = entry
        event_loop.call_soon_threadsafe(task.cancel)
