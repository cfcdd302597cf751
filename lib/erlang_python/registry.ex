defmodule ErlangPython.Registry do
  @moduledoc false
  # Owns the ETS tables of the context, pool, import and stream registries,
  # so they outlive the processes that write them, and removes the rows a
  # process registered with `register/3` when that process exits (however it
  # exits, `kill` included: a context process killed outright leaves no
  # stale entry behind).
  #
  # Tables (all public, read directly by their modules):
  #   :erlang_python_contexts      {pid, %ErlangPython.Context{}}      context processes
  #   :erlang_python_pools         {{:pool, name}, supervisor, size}   pools
  #                                {{:member, name, index}, pid}       a pool's contexts
  #   :erlang_python_pool_routes   {{module, function | :_}, pool}    register_pool
  #   :erlang_python_imports       {{module, function | :all}}        ensure_imported
  #   :erlang_python_paths         {seq, path}  (ordered_set)          add_path
  #   :erlang_python_streams       {ref, driver_pid}                   stream_start
  #   :erlang_python_event_queues  {ref, queue_pid}                    ErlangPython.EventQueue
  #   :erlang_python_isolated      {pid}                               isolated context processes
  use GenServer

  @tables [
    {:erlang_python_contexts, [:set, read_concurrency: true]},
    {:erlang_python_pools, [:set, read_concurrency: true]},
    {:erlang_python_pool_routes, [:set, read_concurrency: true]},
    {:erlang_python_imports, [:set]},
    {:erlang_python_paths, [:ordered_set]},
    {:erlang_python_streams, [:set]},
    {:erlang_python_event_queues, [:set, read_concurrency: true]},
    {:erlang_python_isolated, [:set, read_concurrency: true]}
  ]

  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)

  @doc false
  # Inserts `row` into `table`; the row is deleted when `owner` exits.
  @spec register(atom(), tuple(), pid()) :: :ok
  def register(table, row, owner), do: GenServer.call(__MODULE__, {:register, table, row, owner})

  @impl true
  def init(_opts) do
    for {name, options} <- @tables, do: :ets.new(name, [:named_table, :public | options])
    # monitor ref => [{table, key}]; pid => monitor ref
    {:ok, %{monitors: %{}, watched: %{}}}
  end

  @impl true
  def handle_call({:register, table, row, owner}, _from, state) do
    :ets.insert(table, row)
    key = elem(row, 0)

    state =
      case Map.fetch(state.watched, owner) do
        {:ok, monitor} ->
          update_in(state.monitors[monitor], &[{table, key} | &1])

        :error ->
          monitor = Process.monitor(owner)

          %{
            state
            | monitors: Map.put(state.monitors, monitor, [{table, key}]),
              watched: Map.put(state.watched, owner, monitor)
          }
      end

    {:reply, :ok, state}
  end

  @impl true
  def handle_info({:DOWN, monitor, :process, pid, _reason}, state) do
    {rows, monitors} = Map.pop(state.monitors, monitor, [])

    for {table, key} <- rows, row <- :ets.lookup(table, key), names?(row, pid) do
      :ets.delete_object(table, row)
    end

    {:noreply, %{state | monitors: monitors, watched: Map.delete(state.watched, pid)}}
  end

  def handle_info(_other, state), do: {:noreply, state}

  # A row may have been replaced since by a newer owner's (a restarted pool
  # member under the same key): only a row that still names the dead
  # process is deleted.
  defp names?(row, pid), do: elem(row, 0) == pid or elem(row, 1) == pid
end
