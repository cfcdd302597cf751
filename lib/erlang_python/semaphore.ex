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

  The Elixir API does not use it: `ErlangPython.Runtime.set_max_queue/1`
  bounds the interpreter's queue for every caller.
  """

  # Slot 1: slots taken; slot 2: the limit, read from the configuration
  # when the counters are made (at the first use).
  @key {__MODULE__, :counters}
  @poll_ms 1

  @doc """
  Takes a slot, waiting up to `timeout` ms (or `:infinity`) for one to free.
  """
  @spec acquire(timeout()) :: :ok | {:error, :max_concurrent}
  def acquire(timeout \\ :infinity) do
    deadline = if timeout == :infinity, do: :infinity, else: now() + timeout
    take(counters(), deadline)
  end

  defp take(counters, deadline) do
    if :atomics.add_get(counters, 1, 1) <= max(counters) do
      :ok
    else
      :atomics.sub(counters, 1, 1)

      if deadline != :infinity and now() >= deadline do
        {:error, :max_concurrent}
      else
        Process.sleep(@poll_ms)
        take(counters, deadline)
      end
    end
  end

  @doc "Gives back a slot taken with `acquire/1`."
  @spec release() :: :ok
  def release do
    counters = counters()

    # Never below zero, even after an unbalanced release.
    if :atomics.sub_get(counters, 1, 1) < 0, do: :atomics.add(counters, 1, 1)
    :ok
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
  def current, do: max(:atomics.get(counters(), 1), 0)

  @doc "The limit."
  @spec max_concurrent() :: pos_integer()
  def max_concurrent, do: max(counters())

  @doc "Sets the limit (slots already taken stay taken)."
  @spec set_max(pos_integer()) :: :ok
  def set_max(limit) when is_integer(limit) and limit > 0 do
    :atomics.put(counters(), 2, limit)
    :ok
  end

  defp max(counters), do: :atomics.get(counters, 2)

  defp configured_max, do: ErlangPython.Runtime.config(:max_concurrent)

  defp counters do
    case :persistent_term.get(@key, nil) do
      nil ->
        # The lock's requester is this process: processes sharing one
        # requester id hold a :global lock together, and racing first
        # callers then each made and published counters of their own
        # (slots taken on one set were given back to another). Only this
        # node's processes share the counters, so only it is locked.
        :global.trans({@key, self()}, &make_counters/0, [node()])

      counters ->
        counters
    end
  end

  # Under the lock: a caller that waited for it finds the counters made.
  defp make_counters do
    case :persistent_term.get(@key, nil) do
      nil ->
        counters = :atomics.new(2, signed: true)
        :atomics.put(counters, 2, configured_max())
        :persistent_term.put(@key, counters)
        counters

      counters ->
        counters
    end
  end

  defp now, do: System.monotonic_time(:millisecond)
end
