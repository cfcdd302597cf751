"""The store behind ErlangPython.SharedDict (erlang.SharedDict in Python).

Values are pickled on the way in and unpickled on the way out, so what one
side reads is a copy: mutating a value read from the dict never changes the
dict behind the other side's back. A lock makes each operation atomic; the
store lives as long as the last handle to it.
"""

import pickle
import threading


class DestroyedError(RuntimeError):
    """The SharedDict was destroyed."""


class Store:
    __slots__ = ("_lock", "_data", "_destroyed", "__weakref__")

    def __init__(self):
        self._lock = threading.Lock()
        self._data = {}
        self._destroyed = False

    def _check(self):
        if self._destroyed:
            raise DestroyedError("this SharedDict was destroyed")

    def lookup(self, key):
        """(True, value) or (False, None)."""
        with self._lock:
            self._check()
            if key in self._data:
                return True, pickle.loads(self._data[key])
            return False, None

    def set(self, key, value):
        data = pickle.dumps(value)
        with self._lock:
            self._check()
            self._data[key] = data

    def delete(self, key):
        with self._lock:
            self._check()
            self._data.pop(key, None)

    def keys(self):
        with self._lock:
            self._check()
            return list(self._data)

    def contains(self, key):
        with self._lock:
            self._check()
            return key in self._data

    def destroy(self):
        with self._lock:
            self._destroyed = True
            self._data.clear()

    def __repr__(self):
        state = "destroyed" if self._destroyed else "%d keys" % len(self._data)
        return "<SharedDict store, %s>" % state


def new():
    return Store()


class SharedDict:
    """Dict-like access to a SharedDict made in Erlang or Elixir:
    ``sd = erlang.SharedDict(handle)``, then ``sd[key]``, ``sd[key] = value``,
    ``del sd[key]``, ``key in sd``, ``sd.keys()``, ``sd.get(key, default)``."""

    __slots__ = ("_store",)

    def __init__(self, handle):
        if isinstance(handle, SharedDict):
            handle = handle._store
        if not isinstance(handle, Store):
            raise TypeError("SharedDict() takes a SharedDict handle, got %s" % type(handle).__name__)
        self._store = handle

    def __getitem__(self, key):
        found, value = self._store.lookup(key)
        if not found:
            raise KeyError(key)
        return value

    def get(self, key, default=None):
        found, value = self._store.lookup(key)
        return value if found else default

    def __setitem__(self, key, value):
        self._store.set(key, value)

    def __delitem__(self, key):
        self._store.delete(key)

    def __contains__(self, key):
        return self._store.contains(key)

    def keys(self):
        return self._store.keys()

    def __len__(self):
        return len(self._store.keys())

    def __iter__(self):
        return iter(self._store.keys())

    def __repr__(self):
        return "<erlang.SharedDict %r>" % (self._store,)
