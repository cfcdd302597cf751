defmodule ErlangPython.Semaphore do
  @moduledoc """
  A counting semaphore bounding how many calls run at once.

  The `:py` facade takes a slot for each `py:call` (as erlang_python does)
  and answers `{error, {overloaded, Current, Max}}` when none frees within
  the call's timeout. The limit is `config :erlang_python, max_concurrent:
  n` (default: twice the schedulers, plus one) or `set_max/1`.

      iex> :ok = ErlangPython.Semaphore.acquire(1_000)
      iex> ErlangPython.Semaphore.current() >= 1
      true
      iex> ErlangPython.Semaphore.release()
      :ok

  Callers that find no slot free wait in line: each freed slot goes to the
  one that has waited longest, at once. A slot belongs to the process that
  took it: when that process ends without `release/0`, its slots free
  themselves, and a waiter that ends (or times out) leaves the line.

  The Elixir API does not use it: `ErlangPython.Runtime.set_max_queue/1`
  bounds the interpreter's queue for every caller.
  """

  use GenServer

  @doc """
  Takes a slot for the calling process, waiting up to `timeout` ms (or
  `:infinity`) behind the callers that came first.
  """
  @spec acquire(timeout()) :: :ok | {:error, :max_concurrent}
  def acquire(timeout \\ :infinity)
      when timeout == :infinity or (is_integer(timeout) and timeout >= 0) do
    # The server answers by `timeout` itself, so this call waits for it.
    GenServer.call(__MODULE__, {:acquire, timeout}, :infinity)
  end

  @doc """
  Gives back a slot the calling process took with `acquire/1` (nothing
  when it holds none).
  """
  @spec release() :: :ok
  def release, do: GenServer.cast(__MODULE__, {:release, self()})

  @doc "Runs `fun` holding a slot; `{:error, :max_concurrent}` if none frees in time."
  # `(... -> result)`: Elixir 1.14 and 1.18 format a zero-arity fun type
  # differently (`(() -> t)` and `(-> t)`); both keep this one.
  @spec with_slot(timeout(), (... -> result)) :: result | {:error, :max_concurrent}
        when result: term()
  def with_slot(timeout, fun) do
    with :ok <- acquire(timeout) do
      try do
        fun.()
      after
        release()
      end
    end
  end

  @doc "Slots taken now."
  @spec current() :: non_neg_integer()
  def current, do: GenServer.call(__MODULE__, :current)

  @doc "The limit."
  @spec max_concurrent() :: pos_integer()
  def max_concurrent, do: GenServer.call(__MODULE__, :max)

  @doc "Sets the limit (slots already taken stay taken; a higher one lets waiters in)."
  @spec set_max(pos_integer()) :: :ok
  def set_max(limit) when is_integer(limit) and limit > 0,
    do: GenServer.call(__MODULE__, {:set_max, limit})

  @doc "Callers waiting for a slot now."
  @spec waiting() :: non_neg_integer()
  def waiting, do: GenServer.call(__MODULE__, :waiting)

  @doc false
  def start_link(_options), do: GenServer.start_link(__MODULE__, [], name: __MODULE__)

  # State:
  # * `held`: monitor ref => pid, one per slot taken (a holder's monitor
  #   frees its slot when the holder ends);
  # * `by_pid`: pid => the monitor refs of the slots it holds, newest first;
  # * `line`: the waiters, oldest first, as monitor refs; an entry no
  #   longer in `waiters` (timed out, or its process ended) is skipped;
  # * `waiters`: monitor ref => {from, timer}.

  @impl true
  def init([]) do
    max = ErlangPython.Runtime.config(:max_concurrent)
    {:ok, %{max: max, held: %{}, by_pid: %{}, line: :queue.new(), waiters: %{}}}
  end

  @impl true
  def handle_call({:acquire, timeout}, {pid, _} = from, state) do
    cond do
      map_size(state.held) < state.max and map_size(state.waiters) == 0 ->
        {:reply, :ok, hold(state, pid, Process.monitor(pid))}

      timeout == 0 ->
        {:reply, {:error, :max_concurrent}, state}

      true ->
        ref = Process.monitor(pid)
        timer = if timeout != :infinity, do: Process.send_after(self(), {:expired, ref}, timeout)
        waiters = Map.put(state.waiters, ref, {from, timer})
        {:noreply, %{state | line: :queue.in(ref, state.line), waiters: waiters}}
    end
  end

  def handle_call(:current, _from, state), do: {:reply, map_size(state.held), state}
  def handle_call(:max, _from, state), do: {:reply, state.max, state}
  def handle_call(:waiting, _from, state), do: {:reply, map_size(state.waiters), state}

  def handle_call({:set_max, limit}, _from, state),
    do: {:reply, :ok, admit(%{state | max: limit})}

  @impl true
  def handle_cast({:release, pid}, state) do
    case Map.get(state.by_pid, pid, []) do
      [] ->
        {:noreply, state}

      [ref | _] ->
        Process.demonitor(ref, [:flush])
        {:noreply, state |> unhold(ref) |> admit()}
    end
  end

  @impl true
  def handle_info({:DOWN, ref, :process, _pid, _reason}, state) do
    cond do
      Map.has_key?(state.held, ref) -> {:noreply, state |> unhold(ref) |> admit()}
      Map.has_key?(state.waiters, ref) -> {:noreply, leave_line(state, ref)}
      true -> {:noreply, state}
    end
  end

  def handle_info({:expired, ref}, state) do
    case Map.fetch(state.waiters, ref) do
      {:ok, {from, _timer}} ->
        Process.demonitor(ref, [:flush])
        GenServer.reply(from, {:error, :max_concurrent})
        {:noreply, leave_line(state, ref)}

      :error ->
        {:noreply, state}
    end
  end

  defp hold(state, pid, ref) do
    by_pid = Map.update(state.by_pid, pid, [ref], &[ref | &1])
    %{state | held: Map.put(state.held, ref, pid), by_pid: by_pid}
  end

  defp unhold(state, ref) do
    {pid, held} = Map.pop(state.held, ref)

    by_pid =
      case List.delete(Map.fetch!(state.by_pid, pid), ref) do
        [] -> Map.delete(state.by_pid, pid)
        refs -> Map.put(state.by_pid, pid, refs)
      end

    %{state | held: held, by_pid: by_pid}
  end

  # Gives free slots to the waiters that came first; their monitor now
  # watches the slot.
  defp admit(state) do
    with true <- map_size(state.held) < state.max,
         {{:value, ref}, line} <- :queue.out(state.line) do
      case Map.pop(state.waiters, ref) do
        {nil, _} ->
          admit(%{state | line: line})

        {{{pid, _} = from, timer}, waiters} ->
          if timer, do: Process.cancel_timer(timer)
          GenServer.reply(from, :ok)
          admit(hold(%{state | line: line, waiters: waiters}, pid, ref))
      end
    else
      _ -> state
    end
  end

  # The entry stays in `line` until it reaches the front, unless entries
  # that left outnumber those waiting (callers timing out while no slot
  # frees): then the line is rebuilt without them.
  defp leave_line(state, ref) do
    waiters = Map.delete(state.waiters, ref)

    if :queue.len(state.line) > 2 * map_size(waiters) + 16 do
      line = :queue.filter(&Map.has_key?(waiters, &1), state.line)
      %{state | waiters: waiters, line: line}
    else
      %{state | waiters: waiters}
    end
  end
end
