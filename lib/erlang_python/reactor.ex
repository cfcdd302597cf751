defmodule ErlangPython.Reactor do
  @moduledoc """
  Python protocol objects serving connections that Erlang accepted.

  Erlang keeps doing what it is good at (listening, accepting, deciding who
  serves a connection, supervising); Python implements the protocol. A
  reactor is a process that holds connections handed over to it: it asks
  the VM's own poller (`enif_select`) when each descriptor is readable or
  writable and then calls the connection's `erlang.reactor.Protocol` object,
  whose return value (an *action*) says what to wait for next. No thread
  blocks on a connection, and no Python runs on a BEAM scheduler.

      setup = \"\"\"
      import erlang.reactor as reactor

      class Echo(reactor.Protocol):
          def data_received(self, data):
              self.write_buffer.extend(data)
              return "write_pending"

      reactor.set_protocol_factory(Echo)
      \"\"\"

      {:ok, reactor} = ErlangPython.Reactor.start_link(setup: setup)
      {:ok, listen} = :gen_tcp.listen(0, [:binary, active: false])
      {:ok, port} = :inet.port(listen)
      {:ok, client} = :gen_tcp.connect(~c"127.0.0.1", port, [:binary, active: false])
      {:ok, server} = :gen_tcp.accept(listen)
      :ok = ErlangPython.Reactor.handoff(reactor, server)
      :ok = :gen_tcp.close(server)
      :ok = :gen_tcp.send(client, "ping")
      {:ok, "ping"} = :gen_tcp.recv(client, 0, 5000)

  ## Protocol actions

  | action            | the reactor then                                     |
  |-------------------|------------------------------------------------------|
  | `"continue"`      | waits for the same event again                       |
  | `"read_pending"`  | waits until the descriptor is readable               |
  | `"write_pending"` | waits until it is writable, then calls `write_ready` |
  | `"async_pending"` | waits until Python calls `reactor.signal_write_ready(fd)` |
  | `"close"`         | calls `connection_lost()` and closes the descriptor  |

  End of stream (the peer closed) and a failing callback also close the
  connection; `connection_lost()` runs once in every case.

  ## Ownership

  A handed-over descriptor belongs to the reactor, which closes it. Handing
  over a socket (a port or a `:socket`) gives the reactor a duplicate
  (`ErlangPython.Descriptor.dup/1`): close your socket when you like, the
  peer sees the end of the connection when the reactor closes its copy too.
  Handing over a descriptor number gives the reactor that very descriptor.

  Each reactor has its own protocol factory and connections: the setup code
  runs in a namespace of its own, and `erlang.reactor`'s functions act on
  the reactor whose callback is running.
  """

  use GenServer

  alias ErlangPython.{Descriptor, Native}

  @impl_module "_erlang_impl._reactor"

  @start_options [
    setup: nil,
    name: nil,
    callback_timeout: 5_000
  ]

  @typedoc "A reactor: its pid or registered name."
  @type reactor :: GenServer.server()

  @typedoc """
  Options of `start_link/1`:

  | option              | default | meaning                                          |
  |---------------------|---------|--------------------------------------------------|
  | `:setup`            | `nil`   | Python code run once in the reactor's namespace; it calls `erlang.reactor.set_protocol_factory/1` |
  | `:name`             | `nil`   | a name to register the reactor under             |
  | `:callback_timeout` | `5000`  | ms a protocol callback may run; past it the callback is interrupted (at its next bytecode: a blocking C call such as `time.sleep` ends first) and the connection closed |
  """
  @type option ::
          {:setup, String.t() | nil} | {:name, GenServer.name()} | {:callback_timeout, timeout()}

  @doc """
  Starts a reactor linked to the caller. `{:error, {:setup_failed, error}}`
  when the setup code raises. Options: see `t:option/0`.
  """
  @spec start_link([option()]) :: GenServer.on_start()
  def start_link(opts \\ []), do: start(:start_link, opts)

  @doc "Starts a reactor not linked to the caller (for supervisors, use `start_link/1`)."
  @spec start([option()]) :: GenServer.on_start()
  def start(opts \\ []), do: start(:start, opts)

  defp start(how, opts) do
    opts = Keyword.validate!(opts, @start_options)

    unless is_nil(opts[:setup]) or is_binary(opts[:setup]) do
      raise ArgumentError, ":setup must be Python code (a string), got: #{inspect(opts[:setup])}"
    end

    unless opts[:callback_timeout] == :infinity or
             (is_integer(opts[:callback_timeout]) and opts[:callback_timeout] > 0) do
      raise ArgumentError,
            ":callback_timeout must be a positive integer or :infinity, " <>
              "got: #{inspect(opts[:callback_timeout])}"
    end

    server_opts = if opts[:name], do: [name: opts[:name]], else: []
    apply(GenServer, how, [__MODULE__, opts, server_opts])
  end

  @doc """
  Hands a connection over: a descriptor number (the reactor takes it) or a
  socket (the reactor takes a duplicate). `info` reaches the protocol's
  `connection_made(fd, client_info)` as a dict; for a connected socket,
  `"addr"` and `"port"` of the peer are added unless given.

  `:ok`, or `{:error, reason}`: `:ebadf` for a closed descriptor,
  `:vm_descriptor` for one of the VM's own, `:already_served` for one this
  reactor serves already, the Python exception when `connection_made`
  raises; on error the descriptor stays the caller's. Raises `ArgumentError` when `source` is neither a
  descriptor nor a socket.
  """
  @spec handoff(reactor(), Descriptor.source(), map()) :: :ok | {:error, term()}
  def handoff(reactor, source, info \\ %{}) when is_map(info) do
    {fd, info, duplicated?} = descriptor(source, info)

    case fd do
      {:error, _} = error ->
        error

      fd ->
        result = GenServer.call(reactor, {:handoff, fd, info}, :infinity)
        if result != :ok and duplicated?, do: Native.fd_close(fd)
        result
    end
  end

  defp descriptor(fd, info) when is_integer(fd) do
    case Descriptor.fd_of(fd) do
      {:ok, fd} -> {fd, info, false}
      {:error, _} = error -> {error, info, false}
    end
  end

  defp descriptor(socket, info) do
    case Descriptor.dup(socket) do
      {:ok, fd} -> {fd, Map.merge(peer(socket), info), true}
      {:error, _} = error -> {error, info, false}
    end
  end

  defp peer(socket) do
    result = if is_port(socket), do: :inet.peername(socket), else: :socket.peername(socket)

    case result do
      {:ok, {address, port}} when is_tuple(address) ->
        %{"addr" => List.to_string(:inet.ntoa(address)), "port" => port}

      {:ok, %{addr: address, port: port}} when is_tuple(address) ->
        %{"addr" => List.to_string(:inet.ntoa(address)), "port" => port}

      _ ->
        %{}
    end
  end

  @doc """
  Counters: `:connections` open now, `:handed_off` and `:closed` since
  start, `:reads` and `:writes` (readiness events handled; a reply written
  at once after `data_received`, because the descriptor was writable
  already, needs no write event).
  """
  @spec stats(reactor()) :: %{atom() => non_neg_integer()}
  def stats(reactor), do: GenServer.call(reactor, :stats, :infinity)

  @doc """
  Stops the reactor, closing its connections (each protocol's
  `connection_lost()` runs). A reactor killed outright still closes its
  descriptors: the VM tells each of them that their owner is gone.
  """
  @spec stop(reactor()) :: :ok
  def stop(reactor) do
    GenServer.stop(reactor, :normal, :infinity)
  catch
    :exit, {:noproc, _} -> :ok
  end

  # Server

  @impl true
  def init(opts) do
    id = System.unique_integer([:positive])

    case py(:_server_start, [id, self(), opts[:setup]], :infinity) do
      {:ok, _} ->
        Process.flag(:trap_exit, true)
        forget_when_gone(self(), id)

        {:ok,
         %{
           id: id,
           timeout: opts[:callback_timeout],
           # fd => the event last waited for (:read, :write or :none)
           conns: %{},
           watches: %{},
           stats: %{handed_off: 0, closed: 0, reads: 0, writes: 0}
         }}

      {:error, error} ->
        {:stop, {:setup_failed, error}}
    end
  end

  @impl true
  def handle_call({:handoff, fd, _info}, _from, state) when is_map_key(state.conns, fd),
    do: {:reply, {:error, :already_served}, state}

  def handle_call({:handoff, fd, info}, _from, state) do
    with :ok <- open_check(fd),
         {:ok, _} <- py(:_server_open, [state.id, fd, info], state.timeout),
         {:ok, watch} <- Native.fd_select(fd, :read, true) do
      state = put_in(state.conns[fd], :read)
      state = put_in(state.watches[watch], fd)
      {:reply, :ok, bump(state, :handed_off)}
    else
      {:error, reason} ->
        py(:_server_close, [state.id, fd], state.timeout)
        {:reply, {:error, reason}, state}
    end
  end

  def handle_call(:stats, _from, state) do
    {:reply, Map.put(state.stats, :connections, map_size(state.conns)), state}
  end

  @impl true
  def handle_info({:select, watch, _ref, event}, state) do
    case state.watches do
      %{^watch => fd} when is_map_key(state.conns, fd) ->
        {callback, mode, counter} =
          if event == :ready_input,
            do: {:_server_read, :read, :reads},
            else: {:_server_write, :write, :writes}

        action = py(callback, [state.id, fd], state.timeout)
        {:noreply, state |> bump(counter) |> act(fd, mode, action)}

      _ ->
        # A late event for a connection closed meanwhile.
        {:noreply, state}
    end
  end

  # reactor.signal_write_ready(fd), from Python: the reply is ready.
  def handle_info({"write_ready", fd}, state) when is_map_key(state.conns, fd),
    do: {:noreply, wait(state, fd, :write)}

  def handle_info({:EXIT, _pid, reason}, state) when reason != :normal,
    do: {:stop, reason, state}

  def handle_info(_other, state), do: {:noreply, state}

  @impl true
  def terminate(_reason, state) do
    py(:_server_stop, [state.id], :infinity)
    Enum.each(Map.keys(state.conns), &Native.fd_close/1)
  end

  # A reactor killed outright runs no terminate/2: its descriptors are
  # closed by the VM (their watches monitor it), and this forgets its Python
  # side (each protocol's connection_lost runs). After a normal stop it
  # finds nothing left to do.
  defp forget_when_gone(reactor, id) do
    spawn(fn ->
      monitor = Process.monitor(reactor)

      receive do
        {:DOWN, ^monitor, :process, _, _} -> py(:_server_stop, [id], :infinity)
      end
    end)
  end

  defp act(state, fd, mode, {:ok, "continue"}), do: wait(state, fd, mode)
  defp act(state, fd, _mode, {:ok, "read_pending"}), do: wait(state, fd, :read)
  defp act(state, fd, _mode, {:ok, "write_pending"}), do: wait(state, fd, :write)
  defp act(state, fd, _mode, {:ok, "async_pending"}), do: put_in(state.conns[fd], :none)
  defp act(state, fd, _mode, {:ok, "close"}), do: close(state, fd)

  defp act(state, fd, _mode, {:error, error}) do
    require Logger
    Logger.warning("erlang_python reactor: closing fd #{fd}: #{inspect(error)}")
    close(state, fd)
  end

  defp wait(state, fd, mode) do
    case Native.fd_select(fd, mode, true) do
      {:ok, watch} ->
        state = put_in(state.watches[watch], fd)
        put_in(state.conns[fd], mode)

      {:error, _} ->
        close(state, fd)
    end
  end

  defp close(state, fd) do
    py(:_server_close, [state.id, fd], state.timeout)
    Native.fd_close(fd)

    watches =
      for {watch, ^fd} <- state.watches, reduce: state.watches, do: (w -> Map.delete(w, watch))

    state = %{state | conns: Map.delete(state.conns, fd), watches: watches}
    bump(state, :closed)
  end

  defp bump(state, counter), do: update_in(state.stats[counter], &(&1 + 1))

  defp open_check(fd) do
    # The VM's own descriptors are never served (nor closed) by a reactor;
    # a descriptor we cannot duplicate is not open.
    if Native.fd_protected(fd), do: {:error, :vm_descriptor}, else: dup_check(fd)
  end

  defp dup_check(fd) do
    case Native.dup_fd(fd) do
      {:ok, copy} ->
        Native.fd_close(copy)
        :ok

      {:error, _} = error ->
        error
    end
  end

  defp py(function, args, timeout),
    do: ErlangPython.call(@impl_module, function, args, timeout: timeout)
end
