defmodule ErlangPython.Memory do
  @moduledoc """
  Python's memory: garbage-collector statistics, collections, and
  allocation tracing with `tracemalloc`.

      iex> {:ok, stats} = ErlangPython.Memory.stats()
      iex> {is_list(stats.gc_stats), tuple_size(stats.gc_count), tuple_size(stats.gc_threshold)}
      {true, 3, 3}
      iex> {:ok, collected} = ErlangPython.Memory.gc()
      iex> collected >= 0
      true

  While tracing runs (`tracemalloc_start/1`), `stats/0` also has
  `:traced_memory_current` and `:traced_memory_peak`, in bytes.
  """

  @module "_erlang_impl._memory"
  @keys ~w(gc_stats gc_count gc_threshold tracemalloc traced_memory_current traced_memory_peak)a
  @by_name Map.new(@keys, &{Atom.to_string(&1), &1})

  @typedoc "See the module documentation."
  @type stats :: %{
          required(:gc_stats) => [map()],
          required(:gc_count) => {non_neg_integer(), non_neg_integer(), non_neg_integer()},
          required(:gc_threshold) => {non_neg_integer(), non_neg_integer(), non_neg_integer()},
          required(:tracemalloc) => boolean(),
          optional(:traced_memory_current) => non_neg_integer(),
          optional(:traced_memory_peak) => non_neg_integer()
        }

  @doc """
  The collector's per-generation statistics (`:gc_stats`, maps with
  `"collections"`, `"collected"`, `"uncollectable"`), object counts
  (`:gc_count`) and thresholds (`:gc_threshold`), whether tracemalloc runs,
  and its figures when it does.
  """
  @spec stats() :: {:ok, stats()} | {:error, ErlangPython.reason()}
  def stats do
    with {:ok, raw} <- ErlangPython.call(@module, :stats, []) do
      {:ok, Map.new(raw, fn {key, value} -> {Map.fetch!(@by_name, key), value} end)}
    end
  end

  @doc """
  Runs a collection of generations 0 to `generation` (default 2, a full
  one); returns how many unreachable objects it found.
  """
  @spec gc(0..2) :: {:ok, non_neg_integer()} | {:error, ErlangPython.reason()}
  def gc(generation \\ 2)

  def gc(generation) when generation in 0..2,
    do: ErlangPython.call(@module, :collect, [generation])

  def gc(generation),
    do: {:error, {:badarg, "generation must be 0, 1 or 2, got: #{inspect(generation)}"}}

  @doc "Starts tracing allocations, keeping `frames` frames of traceback each (default 1)."
  @spec tracemalloc_start(pos_integer()) :: :ok | {:error, ErlangPython.reason()}
  def tracemalloc_start(frames \\ 1)

  def tracemalloc_start(frames) when is_integer(frames) and frames > 0 do
    with {:ok, nil} <- ErlangPython.call(@module, :tracemalloc_start, [frames]), do: :ok
  end

  def tracemalloc_start(frames),
    do: {:error, {:badarg, "frames must be a positive integer, got: #{inspect(frames)}"}}

  @doc "Stops tracing allocations (and frees the traces)."
  @spec tracemalloc_stop() :: :ok | {:error, ErlangPython.reason()}
  def tracemalloc_stop do
    with {:ok, nil} <- ErlangPython.call(@module, :tracemalloc_stop, []), do: :ok
  end
end
