"""Type stubs for the ``erlang`` module (Python running inside the BEAM)."""

import asyncio
from typing import Any, Awaitable, List, Optional

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

# Registered Erlang functions are attributes of the module (PEP 562).
def __getattr__(name: str) -> Function: ...

__all__: List[str]
