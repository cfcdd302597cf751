defmodule :py_context_sup do
  @moduledoc """
  Erlang facade: a supervisor of context processes, started on demand, as
  the original's `py_context_sup` (a `DynamicSupervisor` here).

      {ok, _} = py_context_sup:start_link(),
      {ok, Ctx} = py_context_sup:start_context(1, worker),
      {ok, 4.0} = py_context:call(Ctx, math, sqrt, [16], #{}),
      ok = py_context_sup:stop_context(Ctx).

  In Elixir, put `{ErlangPython.ContextServer, opts}` children under any
  supervisor of your own (see `ErlangPython.ContextServer`), or use an
  `ErlangPython.Pool`, which restarts contexts that crash.
  """
  use DynamicSupervisor

  @doc "Starts the supervisor, registered as `py_context_sup`: `{ok, Pid}`."
  @spec start_link() :: Supervisor.on_start()
  def start_link, do: DynamicSupervisor.start_link(__MODULE__, [], name: __MODULE__)

  @doc """
  Starts a context under it (`py_context:start_link(Id, Mode)`): `{ok,
  Ctx}`. A context that dies is not restarted, as in the original.
  """
  @spec start_context(term(), atom()) :: DynamicSupervisor.on_start_child()
  def start_context(id, mode) do
    DynamicSupervisor.start_child(__MODULE__, %{
      id: :py_context,
      start: {:py_context, :start_link, [id, mode]},
      restart: :temporary,
      shutdown: 5_000
    })
  end

  @doc "Stops a context it supervises: `ok`, also when it supervises no such process."
  @spec stop_context(pid()) :: :ok
  def stop_context(context) when is_pid(context) do
    case DynamicSupervisor.terminate_child(__MODULE__, context) do
      :ok -> :ok
      {:error, :not_found} -> :ok
    end
  end

  @doc "The contexts it supervises."
  @spec which_contexts() :: [pid()]
  def which_contexts do
    for {_, pid, _, _} <- DynamicSupervisor.which_children(__MODULE__), is_pid(pid), do: pid
  end

  @impl true
  def init([]), do: DynamicSupervisor.init(strategy: :one_for_one, max_restarts: 5, max_seconds: 10)
end
