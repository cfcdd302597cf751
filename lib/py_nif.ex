defmodule :py_nif do
  @moduledoc """
  The feature probes of erlang_python's private NIF module, so code (and
  test suites) that check for optional features find out they are absent:
  this implementation runs one interpreter, without sub-interpreters; and
  the functions erlang_python documents for memory ceilings
  (`context_set_memory_limit/2`, `context_memory_usage/1`, over
  `ErlangPython.Memory`). The rest of that module is private to
  erlang_python and has no equivalent.
  """

  @doc """
  Whether the original's OWN_GIL mode would be available: it requires
  Python 3.14 (extension modules' global state in earlier versions), so
  this is `false` below 3.14 even where erlang_python's own-GIL contexts
  work (3.12+, `ErlangPython.Interpreter.own_gil_supported?/0`).
  """
  @spec owngil_supported() :: boolean()
  def owngil_supported do
    {_executable, version} = ErlangPython.Native.build_info()
    [major, minor] = version |> String.split(".") |> Enum.map(&String.to_integer/1)
    ErlangPython.Interpreter.own_gil_supported?() and {major, minor} >= {3, 14}
  end

  @doc "Whether contexts can be sub-interpreters (Python 3.12+)."
  @spec subinterp_supported() :: boolean()
  def subinterp_supported, do: ErlangPython.Interpreter.subinterpreters_supported?()

  @doc "Python's version string: `{ok, Binary}`."
  @spec version() :: {:ok, binary()} | {:error, term()}
  defdelegate version, to: :py

  @doc """
  The request counters this implementation keeps
  (`ErlangPython.pool_stats/0`), under the original's names:
  `complete_count` (requests run to the end since start) and `queued`
  (requests waiting now). The original's other counters (GIL
  ensure/release, suspended states, contexts created and destroyed,
  rejected requests) count internals of its C core that have no
  counterpart here, so they are absent: a request refused when the queue
  is full is answered `{error, overloaded}` to its caller, not counted.
  """
  @spec get_debug_counters() :: %{complete_count: non_neg_integer(), queued: non_neg_integer()}
  def get_debug_counters do
    %{shared_queue: shared, workers: workers} = ErlangPython.pool_stats()

    %{
      complete_count: workers |> Enum.map(& &1.completed) |> Enum.sum(),
      queued: shared + (workers |> Enum.map(& &1.queued) |> Enum.sum())
    }
  end

  # The event-loop primitives (ErlangPython.EventQueue) and the test
  # descriptors (ErlangPython.EventQueue.TestFd): no Python runs in them.

  alias ErlangPython.EventQueue
  alias ErlangPython.EventQueue.TestFd

  @doc "A new event queue owned by the caller: `{ok, LoopRef}`."
  @spec event_loop_new() :: {:ok, reference()}
  defdelegate event_loop_new, to: EventQueue, as: :new

  @doc "Stops an event queue: `ok`."
  @spec event_loop_destroy(reference()) :: :ok
  defdelegate event_loop_destroy(loop), to: EventQueue, as: :destroy

  @doc "Sends `Pid` `{event_queue_ready, LoopRef}` when events become pending: `ok`."
  @spec event_loop_set_worker(reference(), pid()) :: :ok
  defdelegate event_loop_set_worker(loop, pid), to: EventQueue, as: :set_worker

  @doc "Ends the `poll_events/2` calls waiting on the queue: `ok`."
  @spec event_loop_wakeup(reference()) :: :ok
  defdelegate event_loop_wakeup(loop), to: EventQueue, as: :wakeup

  @doc "Reports `{CallbackId, read}` when `Fd` is readable: `{ok, FdRef}`."
  @spec add_reader(reference(), non_neg_integer(), non_neg_integer()) ::
          {:ok, reference()} | {:error, term()}
  defdelegate add_reader(loop, fd, callback_id), to: EventQueue

  @doc "Reports `{CallbackId, write}` when `Fd` is writable: `{ok, FdRef}`."
  @spec add_writer(reference(), non_neg_integer(), non_neg_integer()) ::
          {:ok, reference()} | {:error, term()}
  defdelegate add_writer(loop, fd, callback_id), to: EventQueue

  @doc "Stops watching (the descriptor stays open): `ok`."
  @spec remove_reader(reference(), reference()) :: :ok
  defdelegate remove_reader(loop, fd_ref), to: EventQueue, as: :remove

  @doc "Stops watching (the descriptor stays open): `ok`."
  @spec remove_writer(reference(), reference()) :: :ok
  defdelegate remove_writer(loop, fd_ref), to: EventQueue, as: :remove

  @doc "Pauses a reader: `ok`."
  @spec stop_reader(reference()) :: :ok
  defdelegate stop_reader(fd_ref), to: EventQueue, as: :pause

  @doc "Pauses a writer: `ok`."
  @spec stop_writer(reference()) :: :ok
  defdelegate stop_writer(fd_ref), to: EventQueue, as: :pause

  @doc "Restarts a paused reader: `ok`."
  @spec start_reader(reference()) :: :ok
  defdelegate start_reader(fd_ref), to: EventQueue, as: :resume

  @doc "Restarts a paused writer: `ok`."
  @spec start_writer(reference()) :: :ok
  defdelegate start_writer(fd_ref), to: EventQueue, as: :resume

  @doc "Stops a watch and closes its descriptor unless it is the VM's own: `ok` (idempotent)."
  @spec close_fd(reference()) :: :ok
  defdelegate close_fd(fd_ref), to: EventQueue, as: :close

  @doc "Reports `{CallbackId, timer}` after `Ms`: `{ok, TimerRef}`."
  @spec call_later(reference(), non_neg_integer(), non_neg_integer()) :: {:ok, reference()}
  defdelegate call_later(loop, ms, callback_id), to: EventQueue

  @doc "Cancels a timer: `ok`."
  @spec cancel_timer(reference(), reference()) :: :ok
  defdelegate cancel_timer(loop, timer), to: EventQueue

  @doc "The pending `{CallbackId, Type}` events; clears them."
  @spec get_pending(reference()) :: [{non_neg_integer(), :read | :write | :timer}]
  defdelegate get_pending(loop), to: EventQueue, as: :pending

  @doc "Waits up to `Timeout` ms for events or a wake-up: `{ok, NumPending}`."
  @spec poll_events(reference(), non_neg_integer()) :: {:ok, non_neg_integer()}
  defdelegate poll_events(loop, timeout), to: EventQueue, as: :poll

  @doc "Reports `{CallbackId, read}` to `Loop` at the channel\'s next item or close."
  @spec channel_wait(reference(), non_neg_integer(), reference()) :: :ok | {:error, :waiter_exists}
  def channel_wait(channel, callback_id, loop),
    do: EventQueue.wait_channel(loop, channel, callback_id)

  @doc "Withdraws `channel_wait/3` registrations under `CallbackId`: `ok`."
  @spec channel_cancel_wait(reference(), non_neg_integer()) :: :ok
  defdelegate channel_cancel_wait(channel, callback_id), to: EventQueue, as: :cancel_channel_wait

  @doc "A non-blocking pipe: `{ok, {ReadFd, WriteFd}}`."
  @spec create_test_pipe() :: {:ok, {non_neg_integer(), non_neg_integer()}} | {:error, atom()}
  defdelegate create_test_pipe, to: TestFd, as: :pipe

  @doc "Writes all of `Data` to a descriptor: `ok`."
  @spec write_test_fd(non_neg_integer(), iodata()) :: :ok | {:error, atom()}
  defdelegate write_test_fd(fd, data), to: TestFd, as: :write

  @doc "Up to `Max` bytes from a descriptor: `{ok, Binary}`."
  @spec read_test_fd(non_neg_integer(), pos_integer()) :: {:ok, binary()} | {:error, atom()}
  defdelegate read_test_fd(fd, max), to: TestFd, as: :read

  @doc "Closes a descriptor (never the VM's own): `ok`."
  @spec close_test_fd(non_neg_integer()) :: :ok | {:error, atom()}
  defdelegate close_test_fd(fd), to: TestFd, as: :close

  @doc "A loopback TCP listener: `{ok, {Fd, Port}}`."
  @spec create_test_tcp_listener(non_neg_integer()) ::
          {:ok, {non_neg_integer(), pos_integer()}} | {:error, atom()}
  defdelegate create_test_tcp_listener(port), to: TestFd, as: :tcp_listener

  @doc "A non-blocking TCP connection: `{ok, Fd}`."
  @spec connect_test_tcp(iodata(), pos_integer()) :: {:ok, non_neg_integer()} | {:error, atom()}
  defdelegate connect_test_tcp(host, port), to: TestFd, as: :tcp_connect

  @doc "Accepts a pending connection: `{ok, Fd}`."
  @spec accept_test_tcp(non_neg_integer()) :: {:ok, non_neg_integer()} | {:error, atom()}
  defdelegate accept_test_tcp(listener), to: TestFd, as: :tcp_accept

  @doc "A loopback UDP socket: `{ok, {Fd, Port}}`."
  @spec create_test_udp_socket(non_neg_integer()) ::
          {:ok, {non_neg_integer(), pos_integer()}} | {:error, atom()}
  defdelegate create_test_udp_socket(port), to: TestFd, as: :udp_open

  @doc "Sends one datagram to `Host` and `Port`: `ok`."
  @spec sendto_test_udp(non_neg_integer(), iodata(), iodata(), pos_integer()) ::
          :ok | {:error, atom()}
  defdelegate sendto_test_udp(fd, data, host, port), to: TestFd, as: :udp_sendto

  @doc "One datagram: `{ok, {Data, {Host, Port}}}`, or `{error, would_block}` (the original's name) when none waits."
  @spec recvfrom_test_udp(non_neg_integer(), pos_integer()) ::
          {:ok, {binary(), {binary(), non_neg_integer()}}} | {:error, atom()}
  def recvfrom_test_udp(fd, max) do
    case TestFd.udp_recvfrom(fd, max) do
      {:error, :eagain} -> {:error, :would_block}
      other -> other
    end
  end

  @doc "Sets SO_BROADCAST (`true`/`false` or `1`/`0`): `ok`."
  @spec set_udp_broadcast(non_neg_integer(), boolean() | 0 | 1) :: :ok | {:error, atom()}
  def set_udp_broadcast(fd, enabled) when enabled in [0, 1], do: set_udp_broadcast(fd, enabled == 1)
  def set_udp_broadcast(fd, enabled), do: TestFd.udp_broadcast(fd, enabled)

  # The channel primitives the original's suites call directly.

  @doc "The next channel item without waiting: `{ok, Term}`, `{error, empty}` or `{error, closed}`."
  @spec channel_try_receive(reference()) :: {:ok, term()} | {:error, :empty | :closed}
  def channel_try_receive(channel), do: ErlangPython.Channel.try_receive(channel)

  @doc "The next byte-channel chunk without waiting."
  @spec byte_channel_try_receive_bytes(reference()) :: {:ok, binary()} | {:error, :empty | :closed}
  def byte_channel_try_receive_bytes(channel), do: ErlangPython.Channel.try_receive(channel)

  @doc """
  Makes the caller the channel's waiter: it receives `channel_data_ready` or
  `channel_closed`. `ok`, or `{error, waiter_exists}`.
  """
  @spec channel_register_sync_waiter(reference()) :: :ok | {:error, :waiter_exists}
  def channel_register_sync_waiter(channel),
    do: ErlangPython.Native.channel_register_sync_waiter(channel)

  # The descriptor primitives the original's suites call directly
  # (ErlangPython.Descriptor and ErlangPython.Native's fd_* functions).

  @doc "Two connected, non-blocking Unix stream sockets: `{ok, {Fd1, Fd2}}`."
  @spec socketpair() :: {:ok, {integer(), integer()}} | {:error, term()}
  def socketpair, do: ErlangPython.Native.fd_socketpair()

  @doc "Up to `Max` bytes from `Fd`: `{ok, Binary}` or `{error, Reason}` (`eagain` when none is ready)."
  @spec fd_read(integer(), non_neg_integer()) :: {:ok, binary()} | {:error, term()}
  def fd_read(fd, max), do: ErlangPython.Native.fd_read(fd, max)

  @doc "Writes `Data` to `Fd`: `{ok, BytesWritten}`."
  @spec fd_write(integer(), iodata()) :: {:ok, non_neg_integer()} | {:error, term()}
  def fd_write(fd, data), do: ErlangPython.Native.fd_write(fd, IO.iodata_to_binary(data))

  @doc "Closes `Fd` (taking it out of the VM's poller first if watched); the VM's own descriptors are refused."
  @spec fd_close(integer()) :: :ok | {:error, term()}
  def fd_close(fd), do: ErlangPython.Native.fd_close(fd)

  @doc "The caller receives `{select, FdRef, undefined, ready_input}` once `Fd` is readable: `{ok, FdRef}`."
  @spec fd_select_read(integer()) :: {:ok, reference()} | {:error, term()}
  def fd_select_read(fd), do: ErlangPython.Native.fd_select(fd, :read, false)

  @doc "The caller receives `{select, FdRef, undefined, ready_output}` once `Fd` is writable."
  @spec fd_select_write(integer()) :: {:ok, reference()} | {:error, term()}
  def fd_select_write(fd), do: ErlangPython.Native.fd_select(fd, :write, false)

  @doc "A duplicate of `Fd` (`py:dup_fd/1`)."
  @spec dup_fd(integer()) :: {:ok, integer()} | {:error, term()}
  def dup_fd(fd), do: ErlangPython.Native.dup_fd(fd)

  # Memory ceilings, over ErlangPython.Memory.

  @doc """
  Sets a context's memory ceiling in bytes (0: none; usage is still
  counted). `Ref` is `py_context:get_nif_ref(Ctx)`. `ok` or `{error, Reason}`.
  """
  @spec context_set_memory_limit(pid(), non_neg_integer()) :: :ok | {:error, term()}
  def context_set_memory_limit(context, 0) when is_pid(context),
    do: ErlangPython.Memory.set_limit(context, :infinity)

  def context_set_memory_limit(context, bytes)
      when is_pid(context) and is_integer(bytes) and bytes > 0,
      do: ErlangPython.Memory.set_limit(context, bytes)

  def context_set_memory_limit(context, bytes) when is_pid(context),
    do: {:error, {:invalid_memory_limit, bytes}}

  @doc """
  A context's memory: `{ok, UsedBytes, LimitBytes}` (limit 0: none), or
  `{error, Reason}`.
  """
  @spec context_memory_usage(pid()) ::
          {:ok, non_neg_integer(), non_neg_integer()} | {:error, term()}
  def context_memory_usage(context) when is_pid(context) do
    with {:ok, %{used: used, limit: limit}} <- ErlangPython.Memory.usage(context) do
      {:ok, used, if(limit == :infinity, do: 0, else: limit)}
    end
  end
end
