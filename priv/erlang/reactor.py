"""erlang.reactor: protocol objects serving descriptors handed over by Erlang.

See ``ErlangPython.Reactor`` (Elixir), ``py_reactor_context`` (Erlang) and
the reactors guide; the implementation is ``_erlang_impl._reactor``.
"""

from _erlang_impl._reactor import (  # noqa: F401
    Protocol,
    ReactorBuffer,
    __all__,
    close_connection,
    get_protocol,
    init_connection,
    on_read_ready,
    on_write_ready,
    set_protocol_factory,
    signal_write_ready,
)
