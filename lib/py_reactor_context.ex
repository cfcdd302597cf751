defmodule :py_reactor_context do
  @moduledoc """
  Erlang facade for reactors (`ErlangPython.Reactor`), with erlang_python's
  names and shapes.

      {ok, R} = py_reactor_context:start_link(1, worker, \#{setup_code => Setup}),
      {ok, Sock} = gen_tcp:accept(Listen),
      {ok, Fd} = inet:getfd(Sock),
      {ok, Dup} = py:dup_fd(Fd),
      ok = py_reactor_context:handoff(R, Dup, \#{type => tcp}),
      ok = gen_tcp:close(Sock).

  `handoff/3` with a descriptor number gives the reactor that descriptor
  (it closes it): hand over a duplicate (`py:dup_fd/1`) of a descriptor
  you keep. Only the `worker` mode exists: every reactor runs in the one
  interpreter, with a protocol factory and connections of its own.
  """

  alias ErlangPython.Reactor

  @doc "Starts a reactor; options `\#{setup_code => Code, callback_timeout => Ms}`."
  @spec start_link(term(), atom(), map()) :: {:ok, pid()} | {:error, term()}
  def start_link(_id, mode, opts) when is_map(opts) do
    if mode in [:worker, :auto] do
      Reactor.start_link(
        setup: opts |> Map.get(:setup_code) |> code(),
        callback_timeout: Map.get(opts, :callback_timeout, 5_000)
      )
    else
      {:error, {:unsupported_mode, mode}}
    end
  end

  @doc "`start_link(Id, Mode, \#{})`."
  @spec start_link(term(), atom()) :: {:ok, pid()} | {:error, term()}
  def start_link(id, mode), do: start_link(id, mode, %{})

  defp code(nil), do: nil
  defp code(code), do: IO.chardata_to_string(code)

  @doc "Hands descriptor `Fd` (or a socket) over with client info `Info`."
  @spec handoff(pid(), ErlangPython.Descriptor.source(), map()) :: :ok | {:error, term()}
  def handoff(reactor, fd, info) when is_map(info) do
    Reactor.handoff(reactor, fd, info) |> :py.erlang_shape()
  end

  @doc "The reactor's counters (a map)."
  @spec stats(pid()) :: map()
  defdelegate stats(reactor), to: Reactor

  @doc "Stops the reactor and closes its connections: `ok`."
  @spec stop(pid()) :: :ok
  defdelegate stop(reactor), to: Reactor
end
