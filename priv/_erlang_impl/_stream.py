"""Pulling items from a generator, iterator or async generator in chunks,
for ErlangPython.stream/4."""

import time


class Stream:
    def __init__(self, source, max_delay=None):
        self._error = None
        self.done = False
        # Seconds an item may wait in a chunk for more items (None: until
        # the chunk is full).
        self._max_delay = None if max_delay is None else max_delay / 1000.0
        # An async source's __anext__ still running when a chunk's time ran
        # out: the next chunk starts by waiting for it.
        self._pending = None
        if hasattr(source, "__aiter__"):
            self._async = source.__aiter__()
            self._loop = _new_loop()
            self._sync = None
        else:
            self._sync = iter(source)
            self._async = None
            self._loop = None

    def _next(self):
        if self._sync is not None:
            return next(self._sync)
        if self._pending is not None:
            task, self._pending = self._pending, None
            return self._loop.run_until_complete(task)
        return self._loop.run_until_complete(self._async.__anext__())

    def _next_async_within(self, seconds):
        """The async source's next item if it comes within seconds; else
        raises _Late and keeps waiting for it in the next chunk."""
        import asyncio

        if self._pending is None:

            async def anext():
                return await self._async.__anext__()

            self._pending = self._loop.create_task(anext())
        task = self._pending
        done, _ = self._loop.run_until_complete(asyncio.wait({task}, timeout=seconds))
        if not done:
            raise _Late()
        self._pending = None
        return task.result()

    def next_chunk(self, size):
        """Up to size items and whether the source is exhausted. An exception
        after some items is raised at the next call, so no item is lost.

        With a max_delay, the chunk also ends once its first item has waited
        that long. An async source is waited for with that deadline. A
        generator cannot be interrupted while it computes its next item, so
        for one the chunk ends early instead: as soon as waiting as long
        again as for the last item would pass the deadline (a slow
        generator's items then go out one by one, as they come)."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        items = []
        if self.done:
            return items, True
        delay = self._max_delay
        previous = time.monotonic()
        deadline = None
        try:
            while len(items) < size:
                if deadline is not None and self._async is not None:
                    items.append(self._next_async_within(max(0.0, deadline - time.monotonic())))
                else:
                    items.append(self._next())
                if delay is None:
                    continue
                now = time.monotonic()
                if deadline is None:
                    deadline = now + delay
                gap, previous = now - previous, now
                if self._sync is not None and now + gap > deadline:
                    break
                if now >= deadline:
                    break
        except _Late:
            pass
        except (StopIteration, StopAsyncIteration):
            self.done = True
        except Exception as error:
            if not items:
                raise
            self._error = error
        return items, self.done

    def close(self):
        """Closes the source early: its finally blocks run."""
        try:
            if self._sync is not None and hasattr(self._sync, "close"):
                self._sync.close()
            elif self._async is not None:
                if self._pending is not None:
                    task, self._pending = self._pending, None
                    task.cancel()
                    import asyncio

                    try:
                        self._loop.run_until_complete(task)
                    except (asyncio.CancelledError, Exception):
                        pass
                self._loop.run_until_complete(self._async.aclose())
        finally:
            if self._loop is not None:
                self._loop.close()
        self.done = True


def _new_loop():
    """An event loop for an async source: erlang_python's own in the main
    interpreter; in an own-GIL context's sub-interpreter, where that loop's
    native parts do not exist, a plain asyncio loop of that interpreter."""
    if _in_main_interpreter():
        from ._loop import ErlangEventLoop

        return ErlangEventLoop()
    import asyncio

    return asyncio.new_event_loop()


def _in_main_interpreter():
    try:
        import _interpreters as interpreters  # Python 3.13+
    except ImportError:
        try:
            import _xxsubinterpreters as interpreters
        except ImportError:
            return True
    current = interpreters.get_current()
    if isinstance(current, tuple):  # 3.13: (id, whence)
        current = current[0]
    return int(current) == 0


class _Late(Exception):
    """An async source's next item did not come before the chunk's deadline."""


def open(source, max_delay=None):
    return Stream(source, max_delay)
