defmodule ErlangPython.EventQueue do
  @moduledoc """
  An event source driven by Erlang: timers, descriptor readiness and
  channel data collected as `{callback_id, :read | :write | :timer}`
  events that a process takes with `pending/1` or waits for with `poll/2`.

  These are the building blocks erlang_python's own event loop is made of
  (its `py_nif:event_loop_*` primitives). Nothing here runs Python: timers
  are Erlang timers, and descriptors are polled by one native thread that
  sends the queue a message when one is ready (not the VM's poller, which
  `ErlangPython.Reactor` uses: see `fd_watch.rs` for why both exist). A queue is a process owned
  by the process that created it, and stops when its owner exits or at
  `destroy/1`.

      iex> {:ok, queue} = ErlangPython.EventQueue.new()
      iex> {:ok, _timer} = ErlangPython.EventQueue.call_later(queue, 10, 7)
      iex> ErlangPython.EventQueue.poll(queue, 1000)
      {:ok, 1}
      iex> ErlangPython.EventQueue.pending(queue)
      [{7, :timer}]
      iex> ErlangPython.EventQueue.destroy(queue)
      :ok

  A descriptor watch (`add_reader/3`, `add_writer/3`) reports readiness
  once, then again after each `pending/1` that handed out its event while
  the descriptor stays ready (level-triggered, one event per round). Only
  `close/1` closes the descriptor, and never one of the VM's own.
  """

  use GenServer

  alias ErlangPython.Native

  @table :erlang_python_event_queues

  @typedoc "A queue: the reference `new/0` returns."
  @type t :: reference()
  @typedoc "A descriptor watch from `add_reader/3` or `add_writer/3`."
  @type watch :: reference()
  @type event :: {non_neg_integer(), :read | :write | :timer}

  @doc "A new queue owned by the caller: `{:ok, queue}`."
  @spec new() :: {:ok, t()}
  def new do
    ref = make_ref()
    {:ok, _pid} = GenServer.start(__MODULE__, {ref, self()})
    {:ok, ref}
  end

  @doc "Stops the queue, its timers and its watches: `:ok` (also when already stopped)."
  @spec destroy(t()) :: :ok
  def destroy(queue) do
    case whereis(queue) do
      nil -> :ok
      pid -> GenServer.stop(pid, :normal)
    end
  catch
    :exit, _ -> :ok
  end

  @doc """
  Makes `pid` the queue's worker: it gets `{:event_queue_ready, queue}`
  each time events become pending while none were.
  """
  @spec set_worker(t(), pid()) :: :ok
  def set_worker(queue, pid) when is_pid(pid), do: call(queue, {:set_worker, pid})

  @doc "Reports `{callback_id, :read}` when `fd` is readable: `{:ok, watch}`."
  @spec add_reader(t(), non_neg_integer(), non_neg_integer()) :: {:ok, watch()} | {:error, term()}
  def add_reader(queue, fd, callback_id), do: watch(queue, fd, false, callback_id)

  @doc "Reports `{callback_id, :write}` when `fd` is writable: `{:ok, watch}`."
  @spec add_writer(t(), non_neg_integer(), non_neg_integer()) :: {:ok, watch()} | {:error, term()}
  def add_writer(queue, fd, callback_id), do: watch(queue, fd, true, callback_id)

  defp watch(queue, fd, write?, callback_id)
       when is_integer(fd) and fd >= 0 and is_integer(callback_id) and callback_id >= 0,
       do: call(queue, {:watch, fd, write?, callback_id})

  defp watch(_queue, fd, _write?, callback_id),
    do:
      raise(
        ArgumentError,
        "expected a descriptor and a callback id (non-negative integers), got: #{inspect({fd, callback_id})}"
      )

  @doc """
  Stops and forgets a watch (the descriptor stays open); its events not
  yet taken are dropped: `:ok`.
  """
  @spec remove(t(), watch()) :: :ok
  def remove(_queue, watch) do
    _ = Native.fd_watch_release(watch)
    forget(watch)
  end

  @doc "Pauses a watch (`resume/1` starts it again); its events not yet taken are dropped: `:ok`."
  @spec pause(watch()) :: :ok
  def pause(watch) do
    Native.fd_watch_arm(watch, false)
    forget(watch)
  end

  @doc "Starts a paused watch again: `:ok`."
  @spec resume(watch()) :: :ok
  def resume(watch) do
    Native.fd_watch_arm(watch, true)
    :ok
  end

  @doc """
  Stops a watch and closes its descriptor, unless it is one of the VM's own
  (`ErlangPython.Descriptor.close/1`'s rule: closing one would break the
  VM). Idempotent: `:ok`; only the first call closes, so a descriptor
  number reused since is never closed.
  """
  @spec close(watch()) :: :ok
  def close(watch) do
    case Native.fd_watch_release(watch) do
      fd when is_integer(fd) -> _ = Native.fd_close(fd)
      nil -> :ok
    end

    forget(watch)
  end

  # Drops the watch's pending events in its queue (unless the caller is
  # that queue, or it has stopped).
  defp forget(watch) do
    {owner, callback_id, _live} = Native.fd_watch_info(watch)

    if owner != self() do
      try do
        GenServer.call(owner, {:forget, callback_id})
      catch
        :exit, _ -> :ok
      end
    end

    :ok
  end

  @doc "Reports `{callback_id, :timer}` after `delay` ms: `{:ok, timer}`."
  @spec call_later(t(), non_neg_integer(), non_neg_integer()) :: {:ok, reference()}
  def call_later(queue, delay, callback_id)
      when is_integer(delay) and delay >= 0 and is_integer(callback_id) and callback_id >= 0,
      do: call(queue, {:call_later, delay, callback_id})

  @doc "Cancels a timer; its event, if already pending, is dropped: `:ok`."
  @spec cancel_timer(t(), reference()) :: :ok
  def cancel_timer(queue, timer) when is_reference(timer), do: call(queue, {:cancel_timer, timer})

  @doc "The pending events, oldest first; the queue is empty afterwards."
  @spec pending(t()) :: [event()]
  def pending(queue), do: call(queue, :pending)

  @doc """
  Waits up to `timeout` ms until events are pending or `wakeup/1` is
  called: `{:ok, count}` of pending events (0 after a timeout or wake-up).
  """
  @spec poll(t(), non_neg_integer()) :: {:ok, non_neg_integer()}
  def poll(queue, timeout) when is_integer(timeout) and timeout >= 0,
    do: call(queue, {:poll, timeout}, timeout + 5000)

  @doc "Ends every `poll/2` waiting on the queue: `:ok`."
  @spec wakeup(t()) :: :ok
  def wakeup(queue), do: call(queue, :wakeup)

  @doc """
  Reports `{callback_id, :read}` when `channel` has an item or is closed:
  `:ok`, or `{:error, :waiter_exists}` while an Erlang process waits on it.
  """
  @spec wait_channel(t(), reference(), non_neg_integer()) :: :ok | {:error, :waiter_exists}
  def wait_channel(queue, channel, callback_id),
    do: call(queue, {:wait_channel, channel, callback_id})

  @doc "Withdraws channel waits registered under `callback_id`: `:ok`."
  @spec cancel_channel_wait(reference(), non_neg_integer()) :: :ok
  def cancel_channel_wait(channel, callback_id),
    do: Native.channel_cancel_wait_loop(channel, callback_id)

  defp whereis(queue) when is_reference(queue) do
    case :ets.lookup(@table, queue) do
      [{_, pid}] -> pid
      [] -> nil
    end
  end

  defp whereis(other), do: raise(ArgumentError, "expected an event queue, got: #{inspect(other)}")

  defp call(queue, request, timeout \\ 5000) do
    case whereis(queue) do
      nil -> raise ArgumentError, "no such event queue (destroyed?): #{inspect(queue)}"
      pid -> GenServer.call(pid, request, timeout)
    end
  end

  # Server

  @impl true
  def init({ref, owner}) do
    :ok = ErlangPython.Registry.register(@table, {ref, self()}, self())
    Process.monitor(owner)

    {:ok,
     %{
       ref: ref,
       worker: nil,
       events: :queue.new(),
       watches: %{},
       fired: [],
       timers: %{},
       pollers: []
     }}
  end

  @impl true
  def handle_call({:set_worker, pid}, _from, state), do: {:reply, :ok, %{state | worker: pid}}

  def handle_call({:watch, fd, write?, callback_id}, _from, state) do
    watch = Native.fd_watch_new(fd, write?, callback_id)
    {:reply, {:ok, watch}, %{state | watches: Map.put(state.watches, callback_id, watch)}}
  rescue
    ArgumentError -> {:reply, {:error, :badarg}, state}
    error in ErlangError -> {:reply, {:error, error.original}, state}
  end

  def handle_call({:call_later, delay, callback_id}, _from, state) do
    timer = make_ref()
    # A 0 ms Erlang timer still waits for the timer wheel's next tick.
    erlang_timer =
      if delay == 0,
        do: send(self(), {:timer, timer, callback_id}) && nil,
        else: Process.send_after(self(), {:timer, timer, callback_id}, delay)

    {:reply, {:ok, timer}, %{state | timers: Map.put(state.timers, timer, erlang_timer || :due)}}
  end

  def handle_call({:cancel_timer, timer}, _from, state) do
    {erlang_timer, timers} = Map.pop(state.timers, timer)
    if is_reference(erlang_timer), do: Process.cancel_timer(erlang_timer)
    # Fired but not taken yet: drop its event too.
    receive do
      {:timer, ^timer, _} -> :ok
    after
      0 -> :ok
    end

    {:reply, :ok, %{state | timers: timers}}
  end

  def handle_call(:pending, _from, state) do
    for callback_id <- state.fired,
        watch = state.watches[callback_id],
        do: Native.fd_watch_rearm(watch)

    {:reply, :queue.to_list(state.events), %{state | events: :queue.new(), fired: []}}
  end

  def handle_call({:poll, timeout}, from, state) do
    case :queue.len(state.events) do
      0 ->
        timer = Process.send_after(self(), {:poll_timeout, from}, timeout)
        {:noreply, %{state | pollers: [{from, timer} | state.pollers]}}

      count ->
        {:reply, {:ok, count}, state}
    end
  end

  def handle_call(:wakeup, _from, state), do: {:reply, :ok, answer_pollers(state)}

  def handle_call({:forget, callback_id}, _from, state) do
    events =
      :queue.filter(fn {id, type} -> not (id == callback_id and type != :timer) end, state.events)

    {:reply, :ok, %{state | events: events}}
  end

  def handle_call({:wait_channel, channel, callback_id}, _from, state),
    do: {:reply, Native.channel_wait_loop(channel, callback_id), state}

  @impl true
  def handle_info({:erlang_python_fd_ready, callback_id, direction}, state) do
    case state.watches do
      # A descriptor watch paused or removed after it fired: stale.
      %{^callback_id => watch} ->
        if elem(Native.fd_watch_info(watch), 2) do
          state = %{state | fired: [callback_id | state.fired]}
          {:noreply, add_event(state, {callback_id, direction})}
        else
          {:noreply, state}
        end

      # A channel's wait (no descriptor watch).
      _ ->
        {:noreply, add_event(state, {callback_id, direction})}
    end
  end

  def handle_info({:timer, timer, callback_id}, state) do
    case Map.pop(state.timers, timer) do
      {nil, _} -> {:noreply, state}
      {_, timers} -> {:noreply, add_event(%{state | timers: timers}, {callback_id, :timer})}
    end
  end

  def handle_info({:poll_timeout, from}, state) do
    case List.keytake(state.pollers, from, 0) do
      {{^from, _}, pollers} ->
        GenServer.reply(from, {:ok, :queue.len(state.events)})
        {:noreply, %{state | pollers: pollers}}

      nil ->
        {:noreply, state}
    end
  end

  def handle_info({:DOWN, _, :process, _owner, _}, state), do: {:stop, :normal, state}
  def handle_info(_other, state), do: {:noreply, state}

  @impl true
  def terminate(_reason, state) do
    for {_, watch} <- state.watches, do: Native.fd_watch_release(watch)
    :ok
  end

  defp add_event(state, event) do
    was_empty = :queue.is_empty(state.events)
    state = %{state | events: :queue.in(event, state.events)}
    if was_empty and state.worker, do: send(state.worker, {:event_queue_ready, state.ref})
    answer_pollers(state)
  end

  defp answer_pollers(%{pollers: []} = state), do: state

  defp answer_pollers(state) do
    count = :queue.len(state.events)

    for {from, timer} <- state.pollers do
      Process.cancel_timer(timer)
      GenServer.reply(from, {:ok, count})
    end

    %{state | pollers: []}
  end
end
