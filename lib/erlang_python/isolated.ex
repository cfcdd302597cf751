defmodule ErlangPython.Isolated do
  @moduledoc """
  Isolated contexts: Python in its own OS process, started as an Erlang
  port, with the API of an embedded context.

      iex> {:ok, ctx} = ErlangPython.ContextServer.start_link(isolated: true)
      iex> ErlangPython.eval("2 ** 100", %{}, context: ctx)
      {:ok, 1267650600228229401496703205376}
      iex> {:ok, worker} = ErlangPython.Isolated.os_pid(ctx)
      iex> worker != String.to_integer(System.pid())
      true
      iex> ErlangPython.ContextServer.stop(ctx)
      :ok

  Start one with `ErlangPython.ContextServer.start_link(isolated: true)` (or
  a pool: `ErlangPython.Pool.start(name, size, isolated: true)`) and pass the
  pid as `context:` to `ErlangPython.call/4`, `eval/3`, `exec/2`,
  `getattr/3`, `call_method/4` and `stream/4`. The worker runs
  `erlang_python_worker`, built from this package's crate: the same
  conversions, the same `erlang` module (callbacks into Elixir, reentrant;
  `erlang.send`; output and logging routed to the caller), and the same
  sandbox unless `allow_subprocess: true`.

  A crash (a segfault in C code), a kill or a kernel limit ends the worker
  only: its pending callers get `{:error, {:python_exited, reason}}`
  (`reason` is `{:signal, :SIGSEGV}` or `{:exit_status, 3}`), and the server
  starts a fresh worker (a fresh namespace, with the preload code run
  again), up to `:max_restarts` within five seconds; past that it stops
  with `{:python_exited, reason}`, for its supervisor to decide. A timed-out
  call is interrupted (SIGINT raises `erlang.Interrupted` in it); when the
  interrupt does not land within `:interrupt_grace` (C code that never
  checks for signals), the worker is killed and restarted.

  ## Options (of `ErlangPython.ContextServer.start_link/1` with `isolated: true`)

  | option | default | meaning |
  |--------|---------|---------|
  | `:allow_subprocess` | `false` | turn the sandbox off in the worker: `subprocess`, `multiprocessing`, `os.fork` work (a fork there cannot corrupt the VM) |
  | `:memory_limit` | `nil` | bytes of address space (`RLIMIT_AS`) |
  | `:cpu_limit` | `nil` | seconds of CPU time (`RLIMIT_CPU`); past it the kernel ends the worker with SIGXCPU |
  | `:open_files` | `nil` | open descriptors (`RLIMIT_NOFILE`) |
  | `:transport` | `:shared_memory` | how frames travel: `:shared_memory` (rings mapped by both processes, futex doorbells; falls back to pipes when none can be made) or `:pipes` (the port's) |
  | `:venv` | `nil` | a virtualenv directory: the worker starts as its Python (`sys.prefix`, site-packages, `sys.executable`) |
  | `:interrupt_grace` | `1000` | milliseconds a timed-out call has to stop after its interrupt before the worker is killed |
  | `:max_restarts` | `5` | fresh workers allowed within five seconds |
  | `:timeout` | `30000` | milliseconds for the worker to start and run the preload code |
  | `:name`, `:pool`, `:id` | | as for every context |

  With shared memory, a call made while the worker is idle goes straight
  from the calling process into the worker's ring, and its reply straight
  back (a direct call); calls made while the worker is busy queue at the
  server. Either way the server owns the worker: a direct caller whose
  worker dies gets `{:error, {:python_exited, reason}}` too. The worker
  keeps up to 256 MB of freed large blocks in its heap, so a stream of
  large arguments does not fault in fresh memory for each.

  Handles (`%ErlangPython.Object{}`) made in an isolated context belong to
  its worker: the worker drops its object once the VM has garbage-collected
  every copy of the handle (or when the worker exits or the context stops),
  and a handle from an earlier worker is refused with a clear error.
  """
  use GenServer

  alias ErlangPython.{Imports, Native, Preload, Request}
  alias ErlangPython.Isolated.{Handles, Protocol, Transport}

  require Logger

  @table :erlang_python_isolated

  # What `receive_answer/3` gives when `timeout` passes first: never an
  # answer (those are tuples or reply frames).
  @no_answer {__MODULE__, :no_answer}

  @registered "__erlang_python_isolated_registered__"
  @restart_window 5_000

  @options [
    :name,
    :pool,
    :id,
    isolated: true,
    allow_subprocess: false,
    memory_limit: nil,
    cpu_limit: nil,
    open_files: nil,
    venv: nil,
    interrupt_grace: 1_000,
    max_restarts: 5,
    mode: :worker,
    transport: :shared_memory,
    timeout: ErlangPython.Options.default_timeout()
  ]

  @doc false
  def start_link(opts), do: start(opts, :link)

  @doc false
  def start(opts, link) do
    opts = Keyword.validate!(opts, @options)
    starter = if link == :link, do: :start_link, else: :start
    apply(GenServer, starter, [__MODULE__, opts, Keyword.take(opts, [:name])])
  end

  @doc "Whether `pid` is an isolated context's server."
  @spec isolated?(term()) :: boolean()
  def isolated?(pid) when is_pid(pid) do
    :ets.member(@table, pid)
  rescue
    ArgumentError -> false
  end

  def isolated?(_other), do: false

  @doc "The OS pid of the context's worker process."
  @spec os_pid(pid()) :: {:ok, pos_integer()} | {:error, {:context_down, pid()}}
  def os_pid(server) do
    GenServer.call(server, :os_pid)
  catch
    :exit, _ -> {:error, {:context_down, server}}
  end

  @ring_fields [
    :frames,
    :caught_spinning,
    :parked,
    :no_spin_slow,
    :no_spin_busy,
    :wait_ns,
    :data_wakes,
    :space_wakes,
    :arrival_ns
  ]

  @doc """
  Counters of an isolated context's shared-memory channel, for benchmarks
  and diagnosis: `nil` with the pipes transport.

  `:to_worker` and `:to_vm` count each ring since the worker started:
  frames read, waits for a frame caught while spinning or `:parked` (of
  those, how many did not spin at all: `:no_spin_slow`, recent frames came
  late; `:no_spin_busy`, no core was free), nanoseconds waited, and wake-up
  system calls made by the writer (`:data_wakes`) and by the reader
  (`:space_wakes`). `:arrival_ns` is the part of `:wait_ns` until the
  writer published what ended each wait (by its clock): the rest is what
  waking the parked reader took. `:direct_calls` counts direct calls, `:direct_polled`
  those whose callers polled the ring for their replies (briefly, on their
  schedulers), `:direct_taken` those whose callers took their replies that
  way, and `:direct_reply_ns` the nanoseconds from the requests of the
  others entering the ring to their replies leaving the VM's reader thread.
  `:unpolled_caller_busy` and `:unpolled_worker_busy` count direct calls
  that did not poll because other work kept the caller's thread, or the
  worker process, off a core, and `:unpolled_slow` those that did not poll
  because recent polls found their replies late (or not at all). `:core_samples` and `:core_samples_busy` are
  the VM's samples of that free-core signal (all threads, all contexts)
  and those that showed other work.
  """
  @spec channel_stats(pid()) :: map() | nil
  def channel_stats(server) do
    case channel(server) do
      nil ->
        nil

      channel ->
        fields = length(@ring_fields)
        {to_worker, rest} = channel |> Native.isolated_channel_stats() |> Enum.split(fields)
        {to_vm, direct} = Enum.split(rest, fields)
        [calls, reply_ns, taken, polled, caller_busy, worker_busy, samples, busy, slow] = direct

        %{
          to_worker: Map.new(Enum.zip(@ring_fields, to_worker)),
          to_vm: Map.new(Enum.zip(@ring_fields, to_vm)),
          direct_calls: calls,
          direct_polled: polled,
          direct_taken: taken,
          direct_reply_ns: reply_ns,
          unpolled_caller_busy: caller_busy,
          unpolled_worker_busy: worker_busy,
          unpolled_slow: slow,
          core_samples: samples,
          core_samples_busy: busy
        }
    end
  end

  @doc false
  # Whether direct callers of `server`'s current worker poll for their
  # replies (see isolated_channel.rs, `poll_reply`): `:adaptive` (the
  # default: when replies came quickly and a core is free), `:always`
  # (tests: the polling path on a busy machine too) or `:never` (every
  # reply through the reader thread; benchmarks compare). `:ok`, or
  # `:no_channel` with pipes. A new worker starts adaptive again.
  def set_reply_polling(server, mode) when mode in [:adaptive, :always, :never] do
    case channel(server) do
      nil -> :no_channel
      channel -> Native.isolated_channel_polling(channel, polling_mode(mode))
    end
  end

  defp polling_mode(:adaptive), do: 0
  defp polling_mode(:always), do: 1
  defp polling_mode(:never), do: 2

  @doc false
  # ErlangPython.ContextServer.interrupt/1 for an isolated context.
  def interrupt(server) do
    GenServer.call(server, :interrupt)
  catch
    :exit, _ -> {:error, {:context_down, server}}
  end

  @doc false
  # Runs an ErlangPython.Request in the context `server` and waits for its
  # answer; on timeout the call is cancelled (and interrupted if running).
  #
  # When the worker is idle, the request goes straight into its ring from
  # this process and the reply comes straight back from the channel's
  # reader thread (a direct call): no hop through the server either way.
  # Otherwise (the worker is busy, pipes, a large request) it queues at the
  # server. The server still fails a direct caller whose worker dies.
  def run(server, request, timeout) do
    case {unsupported(request), channel(server)} do
      {nil, nil} ->
        with {:ok, ref} <- send_request(server, request), do: await(server, ref, timeout)

      {nil, channel} ->
        ref = make_ref()
        encoded = Protocol.encode_request(request)

        case Native.isolated_channel_call(channel, ref, Protocol.direct_call(self(), encoded)) do
          # The reply came while the NIF polled for it (see
          # isolated_channel.rs, `poll_reply`): nothing was sent, and the
          # server was never watched (a monitor and its removal are two
          # signals the server would handle on every call).
          {:reply, frame} ->
            direct_result(frame)

          # Watched from now on: a server that died meanwhile is reported
          # at once (`:noproc`).
          {:ok, id} ->
            await_direct(server, ref, Process.monitor(server), channel, id, timeout)

          _busy_closed_or_too_large ->
            ref = Process.monitor(server)
            send(server, {:isolated_request, self(), ref, encoded})
            await(server, ref, timeout)
        end

      {what, _channel} ->
        {:error, {:not_supported_in_isolated, what}}
    end
  end

  # The reply frame of a direct call, `{:reply, id, result}`, decoded here
  # (a result is never a binary: the channel sends frames as binaries).
  defp direct_result(frame) do
    case Protocol.decode(frame) do
      {:ok, {:reply, _id, result}} -> result
      _malformed -> {:error, :malformed_reply}
    end
  end

  # The shared-memory channel of the server's current worker, nil with pipes.
  defp channel(server) do
    case :ets.lookup(@table, server) do
      [{_server, channel}] -> channel
      _ -> nil
    end
  rescue
    ArgumentError -> nil
  end

  # A direct call's answer, tagged `ref`, while `monitor` watches the server.
  defp await_direct(server, ref, monitor, channel, id, timeout) do
    case receive_answer(server, ref, monitor, timeout) do
      @no_answer ->
        if Native.isolated_channel_cancel(channel, id) do
          # Still running: its reply will be dropped; the server interrupts
          # it (and kills the worker past the grace period).
          send(server, {:isolated_cancel_direct, id})
          Process.demonitor(monitor, [:flush])
          {:error, :timeout}
        else
          # Answered (or failed) just now: the answer is on its way.
          server |> receive_answer(ref, monitor, :infinity) |> direct_answer()
        end

      answer ->
        direct_answer(answer)
    end
  end

  # A direct call's answer: the reply frame from the reader thread, or a
  # result the server or the channel sent as a term (an error).
  defp direct_answer(frame) when is_binary(frame), do: direct_result(frame)
  defp direct_answer(result), do: result

  @doc false
  # ErlangPython.async_call/4 for an isolated context: the request is on its
  # way when this returns; `await/3` (through ErlangPython.await/2) takes
  # the answer. An async call never awaited still runs to the end, and its
  # answer is left in the caller's mailbox.
  def start_request(server, request) do
    with {:ok, ref} <- send_request(server, request),
         do: %ErlangPython.AsyncCall{ref: ref, handle: {:isolated, server}, owner: self()}
  end

  defp send_request(server, request) do
    case unsupported(request) do
      nil ->
        ref = Process.monitor(server)
        # Encoded here, so the server never copies a large request.
        send(server, {:isolated_request, self(), ref, Protocol.encode_request(request)})
        {:ok, ref}

      what ->
        {:error, {:not_supported_in_isolated, what}}
    end
  end

  # Channels and buffers are queues in the VM's memory that Python reads
  # through the NIF; a worker process cannot reach them. One passed in is
  # refused up front, by name, instead of failing inside Python on an
  # opaque reference. Only the top level of the arguments is looked at:
  # that is where they are passed, and the look costs nothing per item.
  defp unsupported({:raw, request}), do: unsupported(request)
  defp unsupported({:call, _module, _function, args, kwargs}), do: queue_in(args, kwargs)
  defp unsupported({:call_method, _object, _method, args, kwargs}), do: queue_in(args, kwargs)
  defp unsupported({:eval, _code, locals}) when is_map(locals), do: queue_in([], locals)
  defp unsupported(_request), do: nil

  defp queue_in(args, kwargs) do
    values = if is_map(kwargs), do: Map.values(kwargs), else: []
    Enum.find_value(args, &queue_kind/1) || Enum.find_value(values, &queue_kind/1)
  end

  defp queue_kind(ref) when is_reference(ref) do
    cond do
      resource?(&ErlangPython.Native.channel_info/1, ref) -> :channel
      resource?(&ErlangPython.Native.buffer_info/1, ref) -> :buffer
      true -> nil
    end
  end

  defp queue_kind(_other), do: nil

  # The NIF refuses a reference of another resource type with badarg.
  defp resource?(info, ref) do
    _ = info.(ref)
    true
  rescue
    ArgumentError -> false
  end

  @doc false
  def await(server, ref, timeout) do
    with @no_answer <- receive_answer(server, ref, timeout) do
      send(server, {:isolated_cancel, ref})
      Process.demonitor(ref, [:flush])

      receive do
        {^ref, result} -> result
      after
        0 -> {:error, :timeout}
      end
    end
  end

  # The answer tagged `ref` (the monitor of the server dropped), the
  # server's end as `{:context_down, server}`, or `@no_answer`; `ref` is
  # the monitor itself, or `monitor` is.
  defp receive_answer(server, ref, timeout), do: receive_answer(server, ref, ref, timeout)

  defp receive_answer(server, ref, monitor, timeout) do
    receive do
      {^ref, answer} ->
        Process.demonitor(monitor, [:flush])
        answer

      {:DOWN, ^monitor, :process, _, _reason} ->
        {:error, {:context_down, server}}
    after
      timeout -> @no_answer
    end
  end

  @impl true
  def init(opts) do
    Process.flag(:trap_exit, true)

    state = %{
      opts: opts,
      # an ErlangPython.Isolated.Transport while a worker runs
      port: nil,
      os_pid: nil,
      next: 1,
      # id => {caller, ref}, for requests sent to the worker
      in_flight: %{},
      # ref => id, to cancel
      refs: %{},
      queue: :queue.new(),
      callbacks: 0,
      cancelled: MapSet.new(),
      restarts: [],
      # handle ids the VM dropped, for the worker to release
      releases: []
    }

    case start_worker(state) do
      {:ok, state} ->
        :ok = ErlangPython.Registry.register(@table, {self(), state.port.channel}, self())
        if pool = opts[:pool], do: ErlangPython.Pool.joined(pool, self())
        {:ok, state}

      {:error, reason} ->
        {:stop, {:context_start_failed, reason}}
    end
  end

  @impl true
  def handle_call(:os_pid, _from, state), do: {:reply, {:ok, state.os_pid}, state}

  def handle_call(:interrupt, _from, state) do
    if map_size(state.in_flight) > 0 or direct_caller(state) != nil do
      signal(state.os_pid, "INT")
      {:reply, :ok, state}
    else
      {:reply, :not_running, state}
    end
  end

  @impl true
  def handle_info({:isolated_request, caller, ref, request}, state) do
    state = %{state | queue: :queue.in({caller, ref, request}, state.queue)}
    {:noreply, dispatch(state)}
  end

  def handle_info({:isolated_cancel, ref}, state) do
    case Map.pop(state.refs, ref) do
      {nil, _refs} ->
        queue = :queue.filter(fn {_caller, r, _request} -> r != ref end, state.queue)
        {:noreply, %{state | queue: queue}}

      {id, refs} ->
        # Running in the worker: interrupt it; a worker still busy after the
        # grace period is killed (C code that never checks for signals).
        signal(state.os_pid, "INT")

        Process.send_after(
          self(),
          {:kill_if_running, id, state.os_pid},
          state.opts[:interrupt_grace]
        )

        # It stays in flight, without a caller, until the worker answers or
        # dies: nothing else is sent to a worker that may be about to die.
        {:noreply,
         %{
           state
           | refs: refs,
             cancelled: MapSet.put(state.cancelled, id),
             in_flight: Map.put(state.in_flight, id, :cancelled)
         }}
    end
  end

  # A direct call's caller gave up while the worker runs it.
  def handle_info({:isolated_cancel_direct, id}, state) do
    if direct_running?(state, id) do
      signal(state.os_pid, "INT")

      Process.send_after(
        self(),
        {:kill_if_direct_running, id, state.os_pid},
        state.opts[:interrupt_grace]
      )
    end

    {:noreply, state}
  end

  def handle_info({:kill_if_direct_running, id, os_pid}, state) do
    if os_pid == state.os_pid and direct_running?(state, id), do: signal(os_pid, "KILL")
    {:noreply, state}
  end

  # The direct calls the server waited for are done.
  def handle_info({:isolated_idle, _tag}, state), do: {:noreply, dispatch(state)}

  def handle_info({:kill_if_running, id, os_pid}, state) do
    if os_pid == state.os_pid and MapSet.member?(state.cancelled, id), do: signal(os_pid, "KILL")
    {:noreply, state}
  end

  def handle_info({:isolated_callback_done, id, answer}, state) do
    if state.port, do: Transport.send(state.port, Protocol.callback_reply(id, answer))
    {:noreply, dispatch(%{state | callbacks: max(state.callbacks - 1, 0)})}
  end

  # A handle's release guard was freed: gather the ids that arrive
  # together and send them in one message.
  def handle_info({:isolated_release, os_pid, id}, %{os_pid: os_pid} = state) do
    if state.releases == [], do: send(self(), :isolated_flush_releases)
    {:noreply, %{state | releases: [id | state.releases]}}
  end

  def handle_info(:isolated_flush_releases, state) do
    if state.port != nil and state.releases != [],
      do: Transport.send(state.port, Protocol.release(state.releases))

    {:noreply, %{state | releases: []}}
  end

  def handle_info({:EXIT, _from, reason}, state) when reason != :normal,
    do: {:stop, reason, state}

  def handle_info(message, %{port: %Transport{} = transport} = state) do
    case Transport.classify(transport, message) do
      {:frame, frame} ->
        case Protocol.decode(frame) do
          {:ok, message} -> {:noreply, handle_worker(message, state)}
          {:error, :malformed} -> {:noreply, state}
        end

      {:exit, status} ->
        Transport.release(transport)
        worker_exited(status, state)

      {:broken, _why} ->
        # The worker wrote nonsense into the shared memory: it is no longer
        # trusted; its exit status follows and fails its callers.
        signal(state.os_pid, "KILL")
        {:noreply, state}

      :other ->
        {:noreply, state}
    end
  end

  def handle_info(_other, state), do: {:noreply, state}

  defp worker_exited(status, state) do
    reason = exit_reason(status)

    if channel = state.port.channel,
      do: Native.isolated_channel_fail(channel, {:python_exited, reason})

    state = fail_all(state, {:python_exited, reason})
    now = System.monotonic_time(:millisecond)
    restarts = [now | Enum.filter(state.restarts, &(now - &1 < @restart_window))]

    if length(restarts) > state.opts[:max_restarts] do
      {:stop, {:python_exited, reason}, %{state | port: nil}}
    else
      case start_worker(%{state | port: nil, os_pid: nil, restarts: restarts}) do
        {:ok, state} ->
          :ets.insert(@table, {self(), state.port.channel})
          {:noreply, dispatch(state)}

        {:error, why} ->
          {:stop, {:python_exited, {reason, {:restart_failed, why}}}, state}
      end
    end
  end

  @impl true
  def terminate(_reason, state) do
    if state.port do
      os_pid = state.os_pid
      Transport.close(state.port)
      # A worker stuck in C code never reads the closed pipe.
      if os_pid, do: signal(os_pid, "KILL")
    end

    :ok
  catch
    _, _ -> :ok
  end

  # A request goes to the worker when it is idle, or when it waits for a
  # callback (which may be the request's very caller: reentrancy); others
  # wait here, so one that times out while waiting never reaches Python.
  # Direct calls share the worker: the server claims it before sending (a
  # direct call in it makes the claim wait for `{:isolated_idle, tag}`),
  # and frees it when nothing of its own is left in it.
  defp dispatch(%{port: nil} = state), do: state

  defp dispatch(state) do
    cond do
      state.callbacks > 0 ->
        send_next(state)

      map_size(state.in_flight) > 0 ->
        state

      :queue.is_empty(state.queue) ->
        if channel = state.port.channel, do: Native.isolated_channel_unclaim(channel)
        state

      claim(state, false) == :ok ->
        send_next(state)

      true ->
        state
    end
  end

  defp claim(state, force) do
    case state.port.channel do
      nil -> :ok
      channel -> Native.isolated_channel_claim(channel, force)
    end
  end

  defp send_next(state) do
    case :queue.out(state.queue) do
      {{:value, {caller, ref, request}}, queue} ->
        if state.callbacks > 0, do: claim(state, true)
        id = state.next
        Transport.send(state.port, Protocol.call(id, caller, request))

        state = %{
          state
          | queue: queue,
            next: id + 1,
            in_flight: Map.put(state.in_flight, id, {caller, ref}),
            refs: Map.put(state.refs, ref, id)
        }

        if state.callbacks > 0, do: send_next(state), else: state

      {:empty, _queue} ->
        state
    end
  end

  defp direct_running?(%{port: %Transport{channel: channel}}, id) when channel != nil,
    do: Native.isolated_channel_running(channel, id)

  defp direct_running?(_state, _id), do: false

  defp direct_caller(%{port: %Transport{channel: channel}}) when channel != nil,
    do: Native.isolated_channel_innermost(channel)

  defp direct_caller(_state), do: nil

  # A message whose terms hold new handles lists their ids last.
  defp handle_worker({:reply, id, result, made}, state),
    do: handle_worker({:reply, id, Handles.guard(result, made, state.os_pid)}, state)

  defp handle_worker({:callback, id, name, args, made}, state),
    do: handle_worker({:callback, id, name, Handles.guard(args, made, state.os_pid)}, state)

  defp handle_worker({:send, pid, term, made}, state),
    do: handle_worker({:send, pid, Handles.guard(term, made, state.os_pid)}, state)

  defp handle_worker({:reply, id, result}, state) do
    state =
      case Map.pop(state.in_flight, id) do
        {{caller, ref}, in_flight} ->
          send(caller, {ref, result})
          %{state | in_flight: in_flight, refs: Map.delete(state.refs, ref)}

        {:cancelled, in_flight} ->
          %{state | in_flight: in_flight, cancelled: MapSet.delete(state.cancelled, id)}

        {nil, _} ->
          # A direct call's reply the server had to see (its new handles
          # are guarded above).
          with %Transport{channel: channel} when channel != nil <- state.port,
               {caller, ref} <- Native.isolated_channel_take(channel, id),
               do: send(caller, {ref, result})

          state
      end

    dispatch(state)
  end

  defp handle_worker({:callback, id, @registered, _args}, state) do
    Transport.send(
      state.port,
      Protocol.callback_reply(id, {:ok, ErlangPython.Native.registered_functions()})
    )

    state
  end

  defp handle_worker({:callback, id, name, args}, state) do
    server = self()
    caller = innermost_caller(state)

    spawn(fn ->
      answer = run_callback(name, args, caller)
      send(server, {:isolated_callback_done, id, answer})
    end)

    dispatch(%{state | callbacks: state.callbacks + 1})
  end

  defp handle_worker({:send, pid, term}, state) when is_pid(pid) do
    if Protocol.sendable?(term) do
      send(pid, term)
    else
      Logger.warning(
        "erlang_python: isolated worker #{state.os_pid} sent a message no conversion makes " <>
          "(an atom Python cannot write, or a fun): dropped"
      )
    end

    state
  end

  defp handle_worker(_other, state), do: state

  defp innermost_caller(state) do
    case Enum.max_by(state.in_flight, fn {id, _} -> id end, fn -> nil end) do
      {_id, {caller, _ref}} -> caller
      nil -> direct_caller(state)
      _cancelled -> nil
    end
  end

  # As ErlangPython.Callbacks runs them for embedded contexts: with the
  # caller's group leader (so output reaches it), failures as answers.
  defp run_callback(name, args, caller) do
    if is_pid(caller) do
      case Process.info(caller, :group_leader) do
        {:group_leader, leader} -> Process.group_leader(self(), leader)
        nil -> :ok
      end
    end

    case ErlangPython.Native.registered_function(name) do
      nil ->
        {:error, "no Erlang function is registered as #{inspect(name)}"}

      target ->
        try do
          {:ok, invoke(target, args)}
        rescue
          error -> {:error, Exception.format_banner(:error, error, __STACKTRACE__)}
        catch
          kind, reason -> {:error, Exception.format_banner(kind, reason, __STACKTRACE__)}
        end
    end
  end

  defp invoke(fun, args) when is_function(fun, 1), do: fun.(args)
  defp invoke({module, function}, args), do: apply(module, function, [args])

  defp fail_all(state, reason) do
    for {_id, {caller, ref}} <- state.in_flight, do: send(caller, {ref, {:error, reason}})
    %{state | in_flight: %{}, refs: %{}, cancelled: MapSet.new(), callbacks: 0, releases: []}
  end

  defp start_worker(state) do
    opts = state.opts

    with {:ok, executable} <- executable() do
      transport = Transport.open(executable, worker_args(opts), opts[:transport])
      deadline = opts[:timeout]

      case await_worker(transport, deadline) do
        {:frame, frame} ->
          {:ok, {:ready, os_pid}} = Protocol.decode(frame)
          state = %{state | port: transport, os_pid: os_pid}

          with {:error, _} = failed <- prepare(state, deadline) do
            Transport.close(transport)
            failed
          end

        {:exit, status} ->
          Transport.release(transport)
          {:error, {:python_exited, exit_reason(status)}}

        {:broken, why} ->
          Transport.close(transport)
          {:error, {:channel_broken, why}}

        :timeout ->
          Transport.close(transport)
          {:error, :timeout}
      end
    end
  end

  # The registered imports, then the preload code, as embedded contexts
  # get them; a failing preload fails the start.
  defp prepare(state, timeout) do
    modules = Imports.modules()
    preload = Preload.code() || ""
    code = "globals().update(__import__('_erlang_impl._context', fromlist=['create']).create(m, p))"

    Transport.send(
      state.port,
      Protocol.call(
        0,
        self(),
        Protocol.encode_request(Request.eval(code, %{m: modules, p: preload}))
      )
    )

    case await_worker(state.port, timeout) do
      {:frame, frame} ->
        case Protocol.decode(frame) do
          {:ok, {:reply, 0, {:ok, _}}} -> {:ok, state}
          {:ok, {:reply, 0, {:error, reason}}} -> {:error, reason}
        end

      {:exit, status} ->
        {:error, {:python_exited, exit_reason(status)}}

      {:broken, why} ->
        {:error, {:channel_broken, why}}

      :timeout ->
        {:error, :timeout}
    end
  end

  # The worker's next frame or its exit, during start-up; other messages
  # wait in the mailbox for the server's loop.
  defp await_worker(%Transport{port: port, tag: tag} = transport, timeout) do
    receive do
      {^port, {:data, _}} = message -> Transport.classify(transport, message)
      {:isolated_frame, ^tag, _} = message -> Transport.classify(transport, message)
      {^port, {:exit_status, _}} = message -> Transport.classify(transport, message)
      {:isolated_closed, ^tag, _} = message -> Transport.classify(transport, message)
    after
      timeout -> :timeout
    end
  end

  defp worker_args(opts) do
    limits = [
      memory_bytes: opts[:memory_limit],
      cpu_seconds: opts[:cpu_limit],
      open_files: opts[:open_files]
    ]

    mapset = MapSet.new() |> Map.from_struct() |> Map.get(:version)
    paths = Application.get_env(:erlang_python, :python_paths, [])

    ["priv=#{:code.priv_dir(:erlang_python)}", "sandbox=#{not opts[:allow_subprocess]}"] ++
      for({key, value} <- limits, value != nil, do: "#{key}=#{value}") ++
      if(mapset, do: ["mapset_version=#{mapset}"], else: []) ++
      if(opts[:venv], do: ["venv=#{Path.expand(opts[:venv])}"], else: []) ++
      for(path <- paths, do: "path=#{path}")
  end

  @doc false
  # The worker executable, installed next to the NIF by the Mix compiler.
  def executable do
    path = Path.join([:code.priv_dir(:erlang_python), "native", "erlang_python_worker"])

    if File.exists?(path),
      do: {:ok, path},
      else: {:error, {:worker_not_installed, path}}
  end

  defp signal(nil, _name), do: :ok

  defp signal(os_pid, name) do
    System.cmd("kill", ["-s", name, Integer.to_string(os_pid)], stderr_to_stdout: true)
    :ok
  end

  @signals %{
    1 => :SIGHUP,
    2 => :SIGINT,
    3 => :SIGQUIT,
    4 => :SIGILL,
    5 => :SIGTRAP,
    6 => :SIGABRT,
    7 => :SIGBUS,
    8 => :SIGFPE,
    9 => :SIGKILL,
    11 => :SIGSEGV,
    13 => :SIGPIPE,
    14 => :SIGALRM,
    15 => :SIGTERM,
    24 => :SIGXCPU,
    25 => :SIGXFSZ
  }

  # The port reports a death by signal as 128 + the signal's number.
  @doc false
  def exit_reason(status) when status > 128 and is_map_key(@signals, status - 128),
    do: {:signal, Map.fetch!(@signals, status - 128)}

  def exit_reason(status), do: {:exit_status, status}
end
