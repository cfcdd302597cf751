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

  ## Ceilings

  Python's allocations are counted for the whole interpreter, and for each
  context process started with a `:memory_limit` (see
  `ErlangPython.ContextServer`). A ceiling makes an allocation that would
  cross it fail: Python raises `MemoryError` (which code may catch), the
  call returns `{:error, %ErlangPython.Error{type: "MemoryError"}}`, and
  the VM, the context and every other context go on.

      iex> {:ok, ctx} = ErlangPython.ContextServer.start_link(memory_limit: 64_000_000)
      iex> {:error, %ErlangPython.Error{type: "MemoryError"}} =
      ...>   ErlangPython.eval("len(b'x' * 10**9)", %{}, context: ctx)
      iex> ErlangPython.eval("1 + 1", %{}, context: ctx)
      {:ok, 2}
      iex> {:ok, %{limit: 64_000_000, refused: refused}} = ErlangPython.Memory.usage(ctx)
      iex> refused
      1

  What is counted, and what is not, is in `guides/memory.md`: in short,
  everything Python allocates through its own allocator (objects, `bytes`,
  `bytearray`, list and dict storage), but not memory C extensions get
  from `malloc` themselves (numpy's array data among them).
  """

  alias ErlangPython.{ContextServer, Native}

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

  @typedoc """
  A ceiling: a positive number of bytes, or `:infinity` (none).
  """
  @type limit :: pos_integer() | :infinity

  @typedoc """
  Figures of an account, in bytes: `:used` now, the `:peak` since start
  (or `reset_peak/1`), the `:limit` (`:infinity` when there is none), and
  how many allocations the ceiling `:refused`.
  """
  @type usage :: %{
          used: non_neg_integer(),
          peak: non_neg_integer(),
          limit: limit(),
          refused: non_neg_integer()
        }

  @doc """
  The interpreter's figures (every context's allocations included), or a
  context process's (`{:error, :not_counted}` when it was started without
  `:memory_limit`).

      iex> {:ok, %{used: used, peak: peak}} = ErlangPython.Memory.usage()
      iex> used > 0 and peak >= used
      true
  """
  @spec usage(:interpreter | ContextServer.t()) ::
          {:ok, usage()} | {:error, :not_started | :not_counted | {:context_down, pid()}}
  def usage(of \\ :interpreter)

  def usage(:interpreter) do
    case Native.memory_interpreter_usage() do
      nil -> {:error, :not_started}
      figures -> {:ok, shape(figures)}
    end
  end

  def usage(context) when is_pid(context) do
    with {:ok, account} <- account(context), do: {:ok, shape(Native.memory_scope_usage(account))}
  end

  @doc """
  Sets the interpreter's ceiling, or a context process's (which is then
  counted on its own from now on, if it was not already). `:infinity`
  removes it; counting goes on. Under a ceiling below its current usage,
  the context's allocations fail (past a small reserve) until usage drops
  or the ceiling is raised.

  The interpreter's ceiling applies to everything that runs Python,
  erlang_python's own machinery included: leave it well above what the
  application needs, as a last line before the kernel's OOM killer. The
  application's `:memory_limit` configuration sets it at start.
  """
  @spec set_limit(:interpreter | ContextServer.t(), limit()) ::
          :ok | {:error, :not_started | {:context_down, pid()}}
  def set_limit(of \\ :interpreter, limit)

  def set_limit(:interpreter, limit) do
    if Native.memory_set_interpreter_limit(to_bytes(check_limit!(limit))),
      do: :ok,
      else: {:error, :not_started}
  end

  def set_limit(context, limit) when is_pid(context) do
    check_limit!(limit)
    GenServer.call(context, {:memory_limit, limit})
  catch
    :exit, _ -> {:error, {:context_down, context}}
  end

  @doc "Restarts the interpreter's or a context's `:peak` from its current usage."
  @spec reset_peak(:interpreter | ContextServer.t()) ::
          :ok | {:error, :not_counted | {:context_down, pid()}}
  def reset_peak(of \\ :interpreter)
  def reset_peak(:interpreter), do: Native.memory_reset_interpreter_peak()

  def reset_peak(context) when is_pid(context) do
    with {:ok, account} <- account(context), do: Native.memory_reset_scope_peak(account)
  end

  @doc false
  # Validates a ceiling; raises ArgumentError naming the bad value.
  @spec check_limit!(term()) :: limit()
  def check_limit!(limit) when (is_integer(limit) and limit > 0) or limit == :infinity,
    do: limit

  def check_limit!(limit) do
    raise ArgumentError,
          "memory_limit must be a positive integer (bytes) or :infinity, got: #{inspect(limit)}"
  end

  @doc false
  # A context's account (a NIF resource its process holds), for scope
  # `scope`; nil when the context is not counted on its own.
  @spec open_account(pos_integer(), limit() | nil) :: reference() | nil
  def open_account(_scope, nil), do: nil
  def open_account(scope, limit), do: Native.memory_open_scope(scope, to_bytes(limit))

  @doc false
  @spec set_account_limit(reference(), limit()) :: :ok
  def set_account_limit(account, limit),
    do: Native.memory_set_scope_limit(account, to_bytes(limit))

  defp account(context) do
    GenServer.call(context, :memory_account)
  catch
    :exit, _ -> {:error, {:context_down, context}}
  end

  defp to_bytes(:infinity), do: 0
  defp to_bytes(bytes), do: bytes

  defp shape(%{limit: 0} = figures), do: %{figures | limit: :infinity}
  defp shape(figures), do: figures
end
