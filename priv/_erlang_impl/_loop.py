"""ErlangEventLoop: the asyncio event loop for Python running in the BEAM.

A full asyncio event loop (timers, futures, tasks, sockets through a
selector, run_in_executor), with two refusals: signal handlers (signals
belong to the Erlang VM) and subprocesses (fork/exec would corrupt it; the
sandbox would block them anyway, so fail early with a useful message).
Installed as the event loop policy at start, so asyncio.run() and
asyncio.new_event_loop() inside the VM use it.
"""

import asyncio

SIGNALS_MESSAGE = (
    "Signal handling is not supported in the Erlang event loop: signals "
    "belong to the Erlang VM. Handle them at the VM level (os:set_signal/2)."
)
SUBPROCESS_MESSAGE = (
    "Subprocesses cannot be started from Python inside the Erlang VM: "
    "fork()/exec() would corrupt the Erlang runtime. Use Erlang ports "
    "(open_port/2) for subprocess management."
)


class ErlangEventLoop(asyncio.SelectorEventLoop):
    """asyncio's selector event loop, minus signals and subprocesses."""

    def add_signal_handler(self, sig, callback, *args):
        raise NotImplementedError(SIGNALS_MESSAGE)

    def remove_signal_handler(self, sig):
        raise NotImplementedError(SIGNALS_MESSAGE)

    async def subprocess_exec(self, *args, **kwargs):
        raise NotImplementedError(SUBPROCESS_MESSAGE)

    async def subprocess_shell(self, *args, **kwargs):
        raise NotImplementedError(SUBPROCESS_MESSAGE)


class ErlangEventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """Makes every new event loop an ErlangEventLoop."""

    _loop_factory = ErlangEventLoop


def install():
    asyncio.set_event_loop_policy(ErlangEventLoopPolicy())
