//! Every atom the NIF ever creates. Atoms are never made from Python data:
//! the atom table is global and never garbage-collected.

rustler::atoms! {
    ok,
    error,
    // {:etf, binary}: a reply in the external format (convert::external).
    etf,
    nil,
    true_ = "true",
    false_ = "false",
    none,
    undefined,
    nan,
    infinity,
    neg_infinity,
    bytes,
    cancelled,
    // {:erlang_python_kept, ref}: an async call's reference (kept_reply).
    erlang_python_kept,
    claimed,
    delivered,
    // A polled request's reply (polled_reply): {:reply, _}, :waiting, :sent;
    // {:poll, handle} from submit_call.
    waiting,
    sent,
    poll,
    done,
    pong,
    overloaded,
    not_started,
    already_started,
    badarg,
    too_deep,
    duplicate_key,
    integer_too_large,
    sandbox_blocked,
    internal_error,
    python_init_failed,
    // Isolated contexts' shared-memory channel (isolated_channel.rs).
    isolated_frame,
    isolated_closed,
    closed,
    isolated_release,
    isolated_idle,
    reply,
    busy,
    // Keys and module of the %ErlangPython.Error{} exception struct.
    __struct__,
    __exception__,
    error_module = "Elixir.ErlangPython.Error",
    type_ = "type",
    message,
    traceback,
    // %MapSet{map: %{elem => []}}, plus version: 2 before Elixir 1.18
    mapset_module = "Elixir.MapSet",
    map,
    version,
    erlang_python_callback,
    too_large,
    ref_ = "ref",
    object_module = "Elixir.ErlangPython.Object",
    // fd_watch, fd, channel
    erlang_python_fd_ready,
    read,
    write,
}
