defmodule ErlangPython.Telemetry do
  @moduledoc """
  Events about the worker pool, in the shape of the `:telemetry` library's,
  without depending on it.

  A handler is a function of four arguments, `(event, measurements,
  metadata, config)`, attached under an id to one or more event names,
  as with `:telemetry.attach/4`. When the `:telemetry` library is loaded
  (a Phoenix application has it), every event is also given to
  `:telemetry.execute/3`, so its handlers, `Telemetry.Metrics` reporters
  and LiveDashboard see erlang_python's events with nothing attached here.

  ## Events

  Emitted by `emit_pool_stats/0`: every `:pool_stats_interval` milliseconds
  when the application is configured so (`config :erlang_python,
  pool_stats_interval: 5_000`; off by default), by an
  `ErlangPython.Telemetry.Poller` in your own supervision tree, or by
  `telemetry_poller` given `{ErlangPython.Telemetry, :emit_pool_stats, []}`.

  | event | measurements | metadata |
  |---|---|---|
  | `[:erlang_python, :pool, :stats]` | `:shared_queue` (requests bound to no worker, waiting), `:queued` (waiting, all queues), `:busy_workers`, `:workers` | `%{}` |
  | `[:erlang_python, :worker, :stats]`, one per worker | every key of the worker's map in `ErlangPython.pool_stats/0` but `:index`, `:busy` as 1 or 0 | `%{index: index}` |

  The worker's counters (`:busy_us`, `:completed`, the waits) grow for the
  VM's life: a reporter takes their differences, or shows them as sums.

      iex> test = self()
      iex> handler = fn event, measurements, metadata, _config ->
      ...>   send(test, {event, measurements, metadata})
      ...> end
      iex> :ok = ErlangPython.Telemetry.attach("doc-example", [:erlang_python, :worker, :stats], handler, nil)
      iex> :ok = ErlangPython.Telemetry.emit_pool_stats()
      iex> receive do
      ...>   {[:erlang_python, :worker, :stats], %{queued: queued}, %{index: 0}} -> is_integer(queued)
      ...> end
      true
      iex> ErlangPython.Telemetry.detach("doc-example")
      :ok

  A handler that raises or throws is detached, and the failure logged, as
  `:telemetry` does: an event is never lost to the others, nor crashes
  what emitted it.
  """

  require Logger

  @typedoc "An event's name: a list of atoms, `[:erlang_python, ...]`."
  @type event_name :: [atom(), ...]

  @typedoc "Called as `handler.(event, measurements, metadata, config)`."
  @type handler ::
          (event_name(), map(), map(), term() -> any())

  @handlers {__MODULE__, :handlers}

  @doc """
  Attaches `handler` under `id` to `event`. Returns `{:error,
  :already_exists}` when a handler is attached under `id` already.
  """
  @spec attach(term(), event_name(), handler(), term()) :: :ok | {:error, :already_exists}
  def attach(id, event, handler, config), do: attach_many(id, [event], handler, config)

  @doc """
  Attaches `handler` under `id` to each of `events`. Returns `{:error,
  :already_exists}` when a handler is attached under `id` already.
  """
  @spec attach_many(term(), [event_name()], handler(), term()) ::
          :ok | {:error, :already_exists}
  def attach_many(id, events, handler, config) when is_function(handler, 4) do
    Enum.each(events, &check_event!/1)

    updating(fn handlers ->
      if Enum.any?(handlers, &(elem(&1, 0) == id)),
        do: {{:error, :already_exists}, handlers},
        else: {:ok, handlers ++ for(event <- events, do: {id, event, handler, config})}
    end)
  end

  def attach_many(_id, _events, handler, _config) do
    raise ArgumentError, "a handler is a function of 4 arguments, got: #{inspect(handler)}"
  end

  @doc """
  Detaches the handler attached under `id`; `{:error, :not_found}` if none is.
  """
  @spec detach(term()) :: :ok | {:error, :not_found}
  def detach(id) do
    updating(fn handlers ->
      case Enum.reject(handlers, &(elem(&1, 0) == id)) do
        ^handlers -> {{:error, :not_found}, handlers}
        rest -> {:ok, rest}
      end
    end)
  end

  @doc """
  Gives an event to the handlers attached to it, then to `:telemetry` when
  that library is loaded.
  """
  @spec execute(event_name(), map(), map()) :: :ok
  def execute(event, measurements, metadata \\ %{}) do
    for {id, ^event, handler, config} <- :persistent_term.get(@handlers, []) do
      try do
        handler.(event, measurements, metadata, config)
      catch
        kind, reason ->
          detach(id)

          Logger.error(
            "erlang_python: the handler #{inspect(id)} for #{inspect(event)} failed and was detached: " <>
              Exception.format(kind, reason, __STACKTRACE__)
          )
      end
    end

    # Only a loaded :telemetry can hold handlers (attaching loads it), so
    # asking whether it is loaded is enough, and a BIF's lookup, where
    # Code.ensure_loaded?/1 searched the code path for every event of a VM
    # without the library. Through apply/3: no compile-time dependency on a
    # library we may not have.
    if :erlang.module_loaded(:telemetry),
      do: apply(:telemetry, :execute, [event, measurements, metadata])

    :ok
  end

  @doc """
  Emits the pool's events (see "Events" above) from `ErlangPython.pool_stats/0`,
  now. Before the interpreter starts the pool has no workers: only the pool
  event is emitted, with zeros.
  """
  @spec emit_pool_stats() :: :ok
  def emit_pool_stats do
    %{shared_queue: shared, workers: workers} = ErlangPython.pool_stats()

    execute([:erlang_python, :pool, :stats], %{
      shared_queue: shared,
      queued: shared + Enum.sum(Enum.map(workers, & &1.queued)),
      busy_workers: Enum.count(workers, & &1.busy),
      workers: length(workers)
    })

    for %{index: index, busy: busy} = worker <- workers do
      measurements = %{Map.delete(worker, :index) | busy: if(busy, do: 1, else: 0)}
      execute([:erlang_python, :worker, :stats], measurements, %{index: index})
    end

    :ok
  end

  defp check_event!([_ | _] = event) do
    unless Enum.all?(event, &is_atom/1), do: bad_event!(event)
  end

  defp check_event!(event), do: bad_event!(event)

  defp bad_event!(event),
    do: raise(ArgumentError, "an event name is a non-empty list of atoms, got: #{inspect(event)}")

  # Handlers are read at every event and change rarely: a persistent term,
  # updated one writer at a time.
  defp updating(change) do
    :global.trans(
      {__MODULE__, self()},
      fn ->
        {result, handlers} = change.(:persistent_term.get(@handlers, []))
        :persistent_term.put(@handlers, handlers)
        result
      end,
      [node()]
    )
  end
end
