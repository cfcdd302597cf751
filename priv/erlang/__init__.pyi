"""Type stubs for the ``erlang`` module (Python running inside the BEAM)."""

import asyncio
import logging
from types import TracebackType
from typing import Any, Awaitable, Callable, Dict, Iterator, List, Optional, Type, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])

class Pid:
    """An Erlang process identifier; compares and hashes by identity."""

    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

class Term:
    """An Erlang term with no Python type (reference, port, fun, ...)."""

    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

class CallbackError(Exception):
    """An Erlang function called from Python raised, exited or was killed."""

class ProcessError(Exception):
    """The Erlang process a message was sent to is not alive."""

class Interrupted(BaseException):
    """Raised into running code whose Elixir caller timed out, was cancelled or exited."""

class Function:
    """A callable standing for the Erlang function registered as ``name``."""

    name: str
    def __init__(self, name: str) -> None: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

class ErlangEventLoop(asyncio.SelectorEventLoop):
    """asyncio's selector event loop, minus signals and subprocesses."""

class ErlangEventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """Makes asyncio use ErlangEventLoop."""

def call(name: str, *args: Any, **kwargs: Any) -> Any:
    """Calls the Erlang function registered as ``name``; keyword arguments
    arrive as a trailing map."""

def async_call(name: str, *args: Any, **kwargs: Any) -> Awaitable[Any]:
    """``call`` as an awaitable that does not block the running event loop."""

def send(pid: Pid, message: Any) -> None:
    """Sends ``message`` to a local Erlang process; raises ProcessError if it
    is not alive."""

def self() -> Optional[Pid]:
    """The Elixir process whose call is running, or None."""

def is_registered(name: str) -> bool: ...
def registered() -> List[str]: ...
def is_sandboxed() -> bool: ...
def state_set(key: Any, value: Any) -> None: ...
def state_get(key: Any, default: Any = ...) -> Any: ...
def state_delete(key: Any) -> None: ...
def state_keys() -> List[Any]: ...
def state_incr(key: Any, by: int = ...) -> int: ...
def state_decr(key: Any, by: int = ...) -> int: ...

class ErlangHandler(logging.Handler):
    """A logging handler that forwards records to Elixir's Logger."""

def setup_logging(level: int = ..., format: Optional[str] = ...) -> ErlangHandler:
    """Sends logging records at ``level`` and above to Elixir's Logger, with
    ``format`` (default ``'%(message)s'``); returns the handler."""

class Span:
    """A timed operation, recorded while tracing is enabled (in Elixir,
    ``ErlangPython.Tracing``): ``with erlang.Span('name', key=value) as span:``."""

    name: str
    attributes: Dict[str, Any]
    events: List[Dict[str, Any]]
    span_id: Optional[int]
    parent_id: Optional[int]
    start_time: Optional[int]
    def __init__(self, name: str, **attributes: Any) -> None: ...
    def __enter__(self) -> "Span": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...
    def event(self, name: str, **attrs: Any) -> None:
        """Records an event; events are kept most recent first."""

def trace(name: Optional[str] = ...) -> Callable[[_F], _F]:
    """Decorator: each call of the function runs in a Span named ``name``
    (default ``module.qualname``)."""

class SharedDict:
    """Dict-like access to a SharedDict made in Erlang or Elixir
    (``ErlangPython.SharedDict``), from its handle."""

    def __init__(self, handle: Any) -> None: ...
    def __getitem__(self, key: Any) -> Any: ...
    def get(self, key: Any, default: Any = ...) -> Any: ...
    def __setitem__(self, key: Any, value: Any) -> None: ...
    def __delitem__(self, key: Any) -> None: ...
    def __contains__(self, key: object) -> bool: ...
    def keys(self) -> List[Any]: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Any]: ...

# Registered Erlang functions are attributes of the module (PEP 562).
def __getattr__(name: str) -> Function: ...

__all__: List[str]
