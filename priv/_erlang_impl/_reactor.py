"""erlang.reactor: protocol objects serving descriptors that Erlang watches.

Erlang accepts a connection and hands its descriptor to a reactor
(``ErlangPython.Reactor`` / ``py_reactor_context``). The reactor asks the
VM's poller when the descriptor is readable or writable and calls into this
module; a ``Protocol`` object per connection decides what happens next by
returning an action:

=================  ==================================================
``"continue"``     wait for the same event again
``"read_pending"`` wait until the descriptor is readable
``"write_pending"`` wait until it is writable (then ``write_ready()``)
``"async_pending"`` wait for nothing until ``signal_write_ready(fd)``
``"close"``        close it (``connection_lost()`` is called)
=================  ==================================================

Each reactor has its own protocol factory and connections: the functions
below act on the reactor whose callback is running (a context variable),
or, called from plain Python code, on a default one, which is how they can
be tried on a ``socket.socketpair()`` without Erlang.
"""

import contextvars
import os
import select

import _erlang_native

__all__ = [
    "Protocol",
    "ReactorBuffer",
    "close_connection",
    "get_protocol",
    "init_connection",
    "on_read_ready",
    "on_write_ready",
    "set_protocol_factory",
    "signal_write_ready",
]

READ_SIZE = 65536
ACTIONS = ("continue", "read_pending", "write_pending", "async_pending", "close")


class ReactorBuffer(bytes):
    """The bytes a protocol receives: ``bytes`` with a ``memoryview()`` method.

    A subclass of ``bytes``, so every bytes operation, the buffer protocol
    and comparison with ``bytes`` work unchanged.
    """

    __slots__ = ()

    @classmethod
    def _test_create(cls, data):
        """A buffer holding ``data`` (for tests and examples)."""
        return cls(data)

    def memoryview(self):
        """A ``memoryview`` over the data, without copying it."""
        return memoryview(self)


class Protocol:
    """One connection's logic. Subclass it and override the callbacks.

    Attributes: ``fd`` (the descriptor, -1 before ``connection_made``),
    ``client_info`` (the map Erlang gave with the descriptor),
    ``write_buffer`` (a ``bytearray`` for outgoing data) and ``closed``.
    """

    def __init__(self):
        self.fd = -1
        self.client_info = {}
        self.write_buffer = bytearray()
        self.closed = False

    def connection_made(self, fd, client_info):
        """Called when the descriptor is handed over."""
        self.fd = fd
        self.client_info = client_info

    def data_received(self, data):
        """Called with the bytes read; returns an action."""
        return "continue"

    def write_ready(self):
        """Called when the descriptor is writable; returns an action.

        The default writes ``write_buffer`` out, then waits for input.
        """
        if self.write_buffer:
            written = self.write(bytes(self.write_buffer))
            del self.write_buffer[:written]
        return "continue" if self.write_buffer else "read_pending"

    def connection_lost(self):
        """Called once when the connection closes (either side)."""

    def read(self, size=READ_SIZE):
        """Up to ``size`` bytes from the descriptor; ``b""`` at end of stream
        or when nothing is ready."""
        try:
            return os.read(self.fd, size)
        except (BlockingIOError, InterruptedError):
            return b""

    def write(self, data):
        """Writes what the descriptor takes of ``data``; returns the count."""
        try:
            return os.write(self.fd, data)
        except (BlockingIOError, InterruptedError):
            return 0


class _Reactor:
    """A factory and the connections made with it."""

    def __init__(self, owner=None):
        self.owner = owner
        self.factory = Protocol
        self.protocols = {}
        self.namespace = None


_default = _Reactor()
_current = contextvars.ContextVar("erlang_reactor", default=None)
_reactors = {}
# Descriptor -> the reactor serving it, so that signal_write_ready works
# from any thread (a timer, an executor), outside the reactor's callbacks.
_serving = {}


def _state():
    return _current.get() or _default


def set_protocol_factory(factory):
    """Sets the callable that makes each new connection's protocol."""
    if not callable(factory):
        raise TypeError(f"a protocol factory must be callable, not {type(factory).__name__}")
    _state().factory = factory


def get_protocol(fd):
    """The protocol serving ``fd``, or None."""
    return _state().protocols.get(fd)


def init_connection(fd, client_info=None):
    """Makes a protocol for ``fd`` and calls its ``connection_made``."""
    if not isinstance(fd, int) or fd < 0:
        raise ValueError(f"not a file descriptor: {fd!r}")
    state = _state()
    protocol = state.factory()
    state.protocols[fd] = protocol
    protocol.connection_made(fd, dict(client_info or {}))
    return protocol


def _protocol(fd):
    protocol = _state().protocols.get(fd)
    if protocol is None:
        raise KeyError(f"no connection on descriptor {fd}")
    return protocol


def _action(result):
    if result is None:
        return "continue"
    if isinstance(result, bytes):
        result = result.decode()
    if result not in ACTIONS:
        raise ValueError(f"unknown reactor action {result!r}: expected one of {ACTIONS}")
    return result


def on_read_ready(fd, data=None):
    """Reads ``fd`` (unless ``data`` is given) and passes the bytes to
    ``data_received``; ``"close"`` at end of stream."""
    protocol = _protocol(fd)
    if data is None:
        try:
            data = os.read(fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return "continue"
        except ConnectionError:
            data = b""
    if not data:
        return "close"
    return _action(protocol.data_received(ReactorBuffer(data)))


def on_write_ready(fd):
    """Calls ``write_ready`` of ``fd``'s protocol; ``"close"`` if the peer is gone."""
    try:
        return _action(_protocol(fd).write_ready())
    except (BrokenPipeError, ConnectionError):
        return "close"


def close_connection(fd):
    """Forgets ``fd``'s protocol and calls its ``connection_lost`` (once).

    The descriptor itself is closed by whoever owns it: the reactor, for a
    descriptor handed over from Erlang.
    """
    protocol = _state().protocols.pop(fd, None)
    if protocol is not None and not protocol.closed:
        protocol.closed = True
        protocol.connection_lost()


def signal_write_ready(fd):
    """Asks the reactor to wait for ``fd`` to be writable (after an
    ``"async_pending"`` action, when the reply is ready). Callable from any
    thread (a timer, an executor); False when no reactor serves ``fd``."""
    owner = (_current.get() or _serving.get(fd) or _default).owner
    if owner is None:
        return False
    _erlang_native.send(owner, ("write_ready", fd))
    return True


# The reactor process's entry points: each runs in its reactor's state.


def _in(rid, function, *args):
    token = _current.set(_reactors[rid])
    try:
        return function(*args)
    finally:
        _current.reset(token)


def _server_start(rid, owner, setup):
    """Creates reactor ``rid`` and runs its setup code in a namespace of its own."""
    state = _Reactor(owner)
    _reactors[rid] = state
    state.namespace = {"__name__": f"__reactor_{rid}__"}
    if setup:
        try:
            _in(rid, exec, compile(setup, f"<reactor {rid} setup>", "exec"), state.namespace)
        except BaseException:
            del _reactors[rid]
            raise


def _server_open(rid, fd, client_info):
    _in(rid, init_connection, fd, client_info)
    _serving[fd] = _reactors[rid]


def _server_read(rid, fd):
    action = _in(rid, on_read_ready, fd)
    # A reply is usually writable at once: write it in the same call rather
    # than waiting for the poller to say so (one round trip through the
    # reactor process instead of two).
    if action == "write_pending" and _writable(fd):
        action = _in(rid, on_write_ready, fd)
    return action


def _writable(fd):
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return bool(poller.poll(0))


def _server_write(rid, fd):
    return _in(rid, on_write_ready, fd)


def _server_close(rid, fd):
    if _serving.get(fd) is _reactors.get(rid):
        _serving.pop(fd, None)
    if rid in _reactors:
        _in(rid, close_connection, fd)


def _server_stop(rid):
    """Closes every connection of reactor ``rid`` (their ``connection_lost``
    runs) and forgets it; returns their descriptors."""
    state = _reactors.get(rid)
    if state is None:
        return []
    fds = list(state.protocols)
    for fd in fds:
        if _serving.get(fd) is state:
            del _serving[fd]
        try:
            _in(rid, close_connection, fd)
        except Exception:
            pass
    del _reactors[rid]
    return fds


def _server_count(rid):
    state = _reactors.get(rid)
    return 0 if state is None else len(state.protocols)
