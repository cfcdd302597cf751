"""Pulling items from a generator, iterator or async generator in chunks,
for ErlangPython.stream/4."""


class Stream:
    def __init__(self, source):
        self._error = None
        self.done = False
        if hasattr(source, "__aiter__"):
            from ._loop import ErlangEventLoop

            self._async = source.__aiter__()
            self._loop = ErlangEventLoop()
            self._sync = None
        else:
            self._sync = iter(source)
            self._async = None
            self._loop = None

    def _next(self):
        if self._sync is not None:
            return next(self._sync)
        return self._loop.run_until_complete(self._async.__anext__())

    def next_chunk(self, size):
        """Up to size items and whether the source is exhausted. An exception
        after some items is raised at the next call, so no item is lost."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        items = []
        if self.done:
            return items, True
        try:
            while len(items) < size:
                items.append(self._next())
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
                self._loop.run_until_complete(self._async.aclose())
        finally:
            if self._loop is not None:
                self._loop.close()
        self.done = True


def open(source):
    return Stream(source)
