"""Channels and buffers on the Python side (``erlang.Channel``,
``erlang.ByteChannel``, ``erlang.PyBuffer``).

The queue lives in the NIF (``_erlang_native.ChannelHandle``). A blocking
``receive()`` waits there with the GIL released. ``await async_receive()``
never blocks its loop: it registers the loop's wake-up pipe with the channel
and parks a future; the channel writes a byte to that pipe at the next item
or at close, and the loop's reader callback wakes every parked future of
that loop, which then polls again.
"""

import asyncio
import weakref

import _erlang_native
from _erlang_native import ByteChannelClosed, ChannelClosed, ChannelHandle, PyBuffer

__all__ = ["ByteChannel", "ByteChannelClosed", "Channel", "ChannelClosed", "PyBuffer", "reply"]


def reply(pid, term):
    """Sends ``term`` to the Erlang process ``pid`` (``erlang.send``)."""
    _erlang_native.send(pid, term)


class _LoopWaker:
    """One wake-up pipe per event loop, watched with ``add_reader``."""

    def __init__(self, loop):
        self.native = _erlang_native.Waker()
        self.futures = set()
        loop.add_reader(self.native.fileno(), self._on_wake)

    def _on_wake(self):
        self.native.drain()
        futures, self.futures = self.futures, set()
        for future in futures:
            if not future.done():
                future.set_result(None)


_wakers = weakref.WeakKeyDictionary()


def _waker_for(loop):
    waker = _wakers.get(loop)
    if waker is None:
        waker = _wakers[loop] = _LoopWaker(loop)
    return waker


class Channel:
    """Items an Erlang process sends with ``py_channel:send/2``
    (``ErlangPython.Channel.send/2``), in order, each exactly once.

    ``for item in channel`` and ``async for item in channel`` end when the
    channel is closed and everything queued before the close was read.
    """

    _closed_error = ChannelClosed

    def __init__(self, reference):
        # None makes an unusable channel, as the original allows, so that
        # its methods can be inspected.
        self._handle = None if reference is None else ChannelHandle(reference)

    def _h(self):
        if self._handle is None:
            raise TypeError("this channel was made without a channel reference")
        return self._handle

    def receive(self, timeout=None):
        """The next item; waits (GIL released) while the channel is empty.
        Raises the closed error once closed and drained, TimeoutError after
        ``timeout`` seconds."""
        return self._h().receive(timeout)

    def try_receive(self):
        """The next item, or None when the channel is empty right now."""
        _, item = self._h().poll()
        return item

    async def async_receive(self):
        """The next item, awaiting it without blocking the event loop."""
        handle = self._h()
        while True:
            ready, item = handle.poll()
            if ready:
                return item
            loop = asyncio.get_running_loop()
            try:
                waker = _waker_for(loop)
            except NotImplementedError:
                # A loop without add_reader: poll.
                await asyncio.sleep(0.0005)
                continue
            future = loop.create_future()
            waker.futures.add(future)
            if not handle.wait_async(waker.native):
                waker.futures.discard(future)
                continue
            try:
                await future
            finally:
                if not future.done():
                    waker.futures.discard(future)
                    handle.cancel_wait(waker.native)

    def send(self, item):
        """Queues ``item`` from Python: ``'ok'`` or ``'busy'`` (full)."""
        return self._h().send(item)

    def close(self):
        """Closes the channel (idempotent); blocked readers wake up."""
        if self._handle is not None:
            self._handle.close()

    def _is_closed(self):
        return self._handle is None or self._handle.closed

    @property
    def closed(self):
        return self._is_closed()

    def __len__(self):
        return 0 if self._handle is None else len(self._handle)

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return self.receive()
        except ChannelClosed:
            raise StopIteration from None

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            return await self.async_receive()
        except ChannelClosed:
            raise StopAsyncIteration from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        if self._handle is None:
            return f"<erlang.{type(self).__name__} unbound>"
        return f"<erlang.{type(self).__name__} items={len(self._handle)} closed={self._handle.closed}>"


class ByteChannel(Channel):
    """Raw bytes from ``py_byte_channel:send/2``, chunk by chunk, without
    term encoding. Python can also ``send_bytes`` into it."""

    _closed_error = ByteChannelClosed

    def receive_bytes(self, timeout=None):
        return self.receive(timeout)

    def try_receive_bytes(self):
        return self.try_receive()

    async def async_receive_bytes(self):
        return await self.async_receive()

    def send_bytes(self, data):
        """Queues ``data`` (any bytes-like object): ``'ok'`` or ``'busy'``."""
        return self.send(data)
