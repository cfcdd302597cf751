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

  While a slot is free and nobody waits, `acquire/1` and `release/0` touch
  only a shared table (no message to the server); only callers that must
  wait go through the server's line.

  The Elixir API does not use it: `ErlangPython.Runtime.set_max_queue/1`
  bounds the interpreter's queue for every caller.
  """

  use GenServer

  # How it works, and why it is race-free.
  #
  # Slots are the rows of a public ETS set, `{index, holder_pid}`, index in
  # 1..max. Taking a slot is one `:ets.insert_new/2`: atomic, so two
  # processes never get the same index, and a process killed at any point
  # leaves either no row or a row naming itself (which the server clears
  # once it sees the process dead). The indexes a process holds are on a
  # stack in its own dictionary, so `release/0` deletes exactly its own row
  # (`delete_object` of `{index, self()}`: a non-holder deletes nothing).
  #
  # The server owns the line of waiters and publishes how many wait in an
  # `:atomics` cell (`@waiting`; :atomics operations are sequentially
  # consistent, and ETS operations take the table's locks, so the orders
  # below hold across schedulers):
  #
  # * Fast path: `acquire` tries a slot itself only when `@waiting` reads
  #   0, so it never overtakes a waiter already in line (FIFO). One that
  #   read 0 just before a waiter joined is ordered before that waiter.
  # * No lost wake-up: the server publishes `@waiting` BEFORE it looks for
  #   a free slot for a waiter; `release` deletes its row BEFORE it reads
  #   `@waiting`, and pokes the server when it reads more than 0. Either
  #   the releaser sees the waiter (and pokes), or the server's search
  #   comes after the delete (and finds the slot).
  # * Crashed holders: while anybody waits, the server monitors every
  #   holder (a scan of the table each time a waiter joins). A fast-path
  #   taker that read `@waiting` as 0 may insert after that scan, so after
  #   taking a slot it reads `@waiting` again and, when it is not 0, asks
  #   the server to watch it: the scan follows the publish, the re-read
  #   follows the insert, so one of the two sees the other. When nobody
  #   waits, a dead holder's slot is reclaimed when it is needed: the
  #   server checks holders are alive before it makes a caller wait or
  #   answers `current/0`.
  # * The fast path probes at most @probes indexes from one based on the
  #   scheduler; when all of those are taken it falls back to the server,
  #   which searches all of them.

  @table __MODULE__
  # An atom key: persistent_term hashes it faster than a tuple.
  @cells ErlangPython.Semaphore.Cells
  @slots {__MODULE__, :slots}
  # :atomics cells
  @max 1
  @waiting 2
  @probes 8

  @doc """
  Takes a slot for the calling process, waiting up to `timeout` ms (or
  `:infinity`) behind the callers that came first.
  """
  @spec acquire(timeout()) :: :ok | {:error, :max_concurrent}
  def acquire(timeout \\ :infinity)
      when timeout == :infinity or (is_integer(timeout) and timeout >= 0) do
    cells = :persistent_term.get(@cells)

    with 0 <- :atomics.get(cells, @waiting),
         index when is_integer(index) <- take_free_slot(cells, self()) do
      # A waiter may have joined after the server's scan of holders.
      if :atomics.get(cells, @waiting) > 0, do: GenServer.cast(__MODULE__, {:watch, self()})
      held(index)
    else
      _ ->
        # The server answers by `timeout` itself, so this call waits for it.
        case GenServer.call(__MODULE__, {:acquire, timeout}, :infinity) do
          {:ok, index} -> held(index)
          error -> error
        end
    end
  end

  defp held(index) do
    Process.put(@slots, [index | Process.get(@slots, [])])
    :ok
  end

  @doc """
  Gives back a slot the calling process took with `acquire/1` (nothing
  when it holds none).
  """
  @spec release() :: :ok
  def release do
    case Process.get(@slots) do
      [index | rest] ->
        Process.put(@slots, rest)
        :ets.delete_object(@table, {index, self()})

        # After the delete (see the module's notes): a waiter that joined
        # meanwhile is seen here, or found the slot free itself.
        if :atomics.get(:persistent_term.get(@cells), @waiting) > 0,
          do: GenServer.cast(__MODULE__, :slot_freed)

        :ok

      _ ->
        :ok
    end
  end

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
  def max_concurrent, do: :atomics.get(:persistent_term.get(@cells), @max)

  @doc "Sets the limit (slots already taken stay taken; a higher one lets waiters in)."
  @spec set_max(pos_integer()) :: :ok
  def set_max(limit) when is_integer(limit) and limit > 0,
    do: GenServer.call(__MODULE__, {:set_max, limit})

  @doc "Callers waiting for a slot now."
  @spec waiting() :: non_neg_integer()
  def waiting, do: GenServer.call(__MODULE__, :waiting)

  @doc false
  def start_link(_options), do: GenServer.start_link(__MODULE__, [], name: __MODULE__)

  # A free index for `pid` among a few probed from the scheduler's own
  # (so callers on different schedulers start apart), or nil.
  defp take_free_slot(cells, pid) do
    max = :atomics.get(cells, @max)

    if :ets.info(@table, :size) < max do
      start = rem(:erlang.system_info(:scheduler_id) - 1, max) + 1
      probe(pid, start, max, min(max, @probes))
    end
  end

  defp probe(_pid, _index, _max, 0), do: nil

  defp probe(pid, index, max, tries) do
    if :ets.insert_new(@table, {index, pid}),
      do: index,
      else: probe(pid, rem(index, max) + 1, max, tries - 1)
  end

  # The server's search: every index, not a few (nil when none is free).
  defp take_any_slot(cells, pid) do
    max = :atomics.get(cells, @max)

    cond do
      :ets.info(@table, :size) >= max -> nil
      max <= 64 -> probe(pid, 1, max, max)
      true -> take_unlisted_slot(pid, max)
    end
  end

  defp take_unlisted_slot(pid, max) do
    taken = MapSet.new(:ets.select(@table, [{{:"$1", :_}, [], [:"$1"]}]))

    case Enum.find(1..max, &(not MapSet.member?(taken, &1))) do
      nil ->
        nil

      # Only a fast-path taker that read @waiting before it was published
      # can race for it: then search again.
      index ->
        if :ets.insert_new(@table, {index, pid}), do: index, else: take_unlisted_slot(pid, max)
    end
  end

  # State:
  # * `cells`: the :atomics (limit, waiters published);
  # * `line`: the waiters, oldest first, as monitor refs; an entry no
  #   longer in `waiters` (timed out, or its process ended) is skipped;
  # * `waiters`: monitor ref => {from, timer};
  # * `watched`: holder pid => its monitor ref, and `watch_refs` the
  #   reverse: holders watched while anybody waits, so a dead one's slots
  #   come back to the line.

  @impl true
  def init([]) do
    cells =
      case :persistent_term.get(@cells, nil) do
        nil ->
          cells = :atomics.new(2, signed: false)
          :persistent_term.put(@cells, cells)
          cells

        # A restarted server keeps the cells: no persistent_term update
        # (which makes every process scan its heap).
        cells ->
          cells
      end

    :atomics.put(cells, @max, ErlangPython.Runtime.config(:max_concurrent))
    :atomics.put(cells, @waiting, 0)
    # No write_concurrency: its finer locks made insert_new + delete_object
    # cost 1.5 us instead of 0.45 us uncontended (OTP 25, bench/semaphore.exs
    # and a loop of the two calls), more than they save here.
    :ets.new(@table, [:set, :public, :named_table])

    {:ok, %{cells: cells, line: :queue.new(), waiters: %{}, watched: %{}, watch_refs: %{}}}
  end

  @impl true
  def handle_call({:acquire, timeout}, {pid, _} = from, state) do
    # The first waiter of a line: fast-path holders are not watched yet.
    first? = map_size(state.waiters) == 0
    ref = Process.monitor(pid)
    timer = if timeout != :infinity, do: Process.send_after(self(), {:expired, ref}, timeout)
    waiters = Map.put(state.waiters, ref, {from, timer})
    # Published before any search for a slot (see the module's notes).
    state = admit(publish(%{state | line: :queue.in(ref, state.line), waiters: waiters}))

    cond do
      not Map.has_key?(state.waiters, ref) ->
        {:noreply, state}

      # An answer now: the slots of holders that died count as free.
      timeout == 0 ->
        state = state |> clear_dead_holders() |> admit()

        if Map.has_key?(state.waiters, ref) do
          Process.demonitor(ref, [:flush])
          {:reply, {:error, :max_concurrent}, leave_line(state, ref)}
        else
          {:noreply, state}
        end

      # While the line stays, holders come only through it (watched by
      # their waiter's monitor) or say so themselves ({:watch, pid}).
      first? ->
        {:noreply, watch_holders(state)}

      true ->
        {:noreply, state}
    end
  end

  def handle_call(:current, _from, state) do
    state = clear_dead_holders(state)
    {:reply, :ets.info(@table, :size), admit(state)}
  end

  def handle_call(:waiting, _from, state), do: {:reply, map_size(state.waiters), state}

  def handle_call({:set_max, limit}, _from, state) do
    :atomics.put(state.cells, @max, limit)
    {:reply, :ok, admit(state)}
  end

  @impl true
  def handle_cast(:slot_freed, state), do: {:noreply, admit(state)}

  def handle_cast({:watch, pid}, state) do
    if map_size(state.waiters) > 0, do: {:noreply, watch(state, pid)}, else: {:noreply, state}
  end

  @impl true
  def handle_info({:DOWN, ref, :process, _pid, _reason}, state) do
    cond do
      Map.has_key?(state.waiters, ref) ->
        {:noreply, leave_line(state, ref)}

      Map.has_key?(state.watch_refs, ref) ->
        {pid, watch_refs} = Map.pop(state.watch_refs, ref)
        :ets.match_delete(@table, {:_, pid})

        {:noreply,
         admit(%{state | watch_refs: watch_refs, watched: Map.delete(state.watched, pid)})}

      true ->
        {:noreply, state}
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

  defp publish(state) do
    :atomics.put(state.cells, @waiting, map_size(state.waiters))
    state
  end

  # Gives free slots to the waiters that came first; their monitor now
  # watches the slot.
  defp admit(state) do
    case :queue.out(state.line) do
      {{:value, ref}, line} ->
        case Map.fetch(state.waiters, ref) do
          :error ->
            admit(%{state | line: line})

          {:ok, {{pid, _} = from, timer}} ->
            case take_any_slot(state.cells, pid) do
              nil ->
                state

              index ->
                if timer, do: Process.cancel_timer(timer)
                GenServer.reply(from, {:ok, index})
                state = %{state | line: line, waiters: Map.delete(state.waiters, ref)}
                state |> publish() |> watch(pid, ref) |> admit()
            end
        end

      {:empty, _} ->
        state
    end
  end

  # Holders that are no longer alive: their rows go (a dead process stays
  # dead, so this cannot free a live holder's slot).
  defp clear_dead_holders(state) do
    for {_index, pid} <- :ets.tab2list(@table), not Process.alive?(pid) do
      :ets.match_delete(@table, {:_, pid})
    end

    state
  end

  # Every holder watched; watches of processes that hold nothing now end.
  defp watch_holders(state) do
    holders = MapSet.new(:ets.select(@table, [{{:_, :"$1"}, [], [:"$1"]}]))

    state =
      Enum.reduce(state.watched, state, fn {pid, ref}, state ->
        if MapSet.member?(holders, pid), do: state, else: unwatch(state, pid, ref)
      end)

    Enum.reduce(holders, state, &watch(&2, &1))
  end

  defp watch(state, pid, ref \\ nil) do
    cond do
      Map.has_key?(state.watched, pid) ->
        if ref, do: Process.demonitor(ref, [:flush])
        state

      true ->
        ref = ref || Process.monitor(pid)

        %{
          state
          | watched: Map.put(state.watched, pid, ref),
            watch_refs: Map.put(state.watch_refs, ref, pid)
        }
    end
  end

  defp unwatch(state, pid, ref) do
    Process.demonitor(ref, [:flush])

    %{
      state
      | watched: Map.delete(state.watched, pid),
        watch_refs: Map.delete(state.watch_refs, ref)
    }
  end

  # The entry stays in `line` until it reaches the front, unless entries
  # that left outnumber those waiting (callers timing out while no slot
  # frees): then the line is rebuilt without them.
  defp leave_line(state, ref) do
    waiters = Map.delete(state.waiters, ref)
    state = publish(%{state | waiters: waiters})

    if :queue.len(state.line) > 2 * map_size(waiters) + 16 do
      %{state | line: :queue.filter(&Map.has_key?(waiters, &1), state.line)}
    else
      state
    end
  end
end
