defmodule ErlangPython.Pool do
  @moduledoc """
  Named pools of supervised context processes, and routing calls to them.

  A pool is a fixed number of `ErlangPython.ContextServer`s under a
  supervisor: a context that crashes is restarted with a clean namespace,
  and the pool hands out the new pid. The `:default` pool starts with the
  application, with `config :erlang_python, num_contexts: n` contexts
  (default: the number of schedulers).

      iex> {:ok, contexts} = ErlangPython.Pool.start(:doc_pool, 2)
      iex> length(contexts)
      2
      iex> {:ok, ctx} = ErlangPython.Pool.context(:doc_pool)
      iex> ErlangPython.call(:math, :sqrt, [16], context: ctx)
      {:ok, 4.0}
      iex> ErlangPython.Pool.stop(:doc_pool)
      :ok

  `context/1` gives the calling process the same context every time (chosen
  from its pid), unless the process has bound one with `bind/1`.

  ## Routing

  `register/2` routes a module, or one `{module, function}`, to a pool;
  `lookup/2` answers which pool a call goes to (a function's registration
  beats its module's; anything unregistered goes to `:default`). The `:py`
  facade follows these routes for `py:call/3,4,5`.

      iex> :ok = ErlangPython.Pool.register(:io, :requests)
      iex> :ok = ErlangPython.Pool.register(:default, {:requests, :utils})
      iex> {ErlangPython.Pool.lookup(:requests, :get), ErlangPython.Pool.lookup(:requests, :utils)}
      {:io, :default}
      iex> ErlangPython.Pool.unregister(:requests)
      :ok
      iex> ErlangPython.Pool.unregister({:requests, :utils})
      :ok

  Contexts run on the interpreter's worker threads (`config :erlang_python,
  workers: n`): consecutive contexts are spread over them round-robin. With
  one worker (the default) every context shares that thread, so a context
  blocked in a C call (`time.sleep`, a socket read) delays the others; give
  I/O pools their own threads with more workers. See `guides/contexts.md`.
  """

  alias ErlangPython.ContextServer

  @pools :erlang_python_pools
  @routes :erlang_python_pool_routes

  @typedoc "A pool name."
  @type name :: atom()

  @doc """
  Starts pool `name` with `size` contexts. Returns their pids in order; when
  the pool runs already, returns its contexts (stop it first to resize).
  """
  @spec start(name(), pos_integer(), keyword()) :: {:ok, [pid()]} | {:error, term()}
  def start(name, size, opts \\ [])

  def start(name, size, opts) when is_atom(name) and is_integer(size) and size > 0 do
    # Raised here, not as a failed child start inside the supervisor.
    priority = opts[:thread_priority]
    unless is_nil(priority), do: ErlangPython.OwnGil.check_thread_priority!(priority)

    :global.trans({__MODULE__, name}, fn ->
      if started?(name), do: {:ok, contexts(name)}, else: start_supervised(name, size, opts)
    end)
  end

  def start(name, size, _opts),
    do:
      {:error,
       {:badarg, "expected an atom and a positive size, got: #{inspect(name)}, #{inspect(size)}"}}

  defp start_supervised(name, size, opts) do
    members =
      for index <- 1..size do
        Supervisor.child_spec(
          {ContextServer, Keyword.merge(opts, pool: {name, index}, id: {name, index})},
          id: {ContextServer, index}
        )
      end

    spec = %{
      id: {__MODULE__, name},
      start: {Supervisor, :start_link, [members, [strategy: :one_for_one]]},
      type: :supervisor,
      restart: :temporary
    }

    case DynamicSupervisor.start_child(ErlangPython.PoolSupervisor, spec) do
      {:ok, supervisor} ->
        :ok = ErlangPython.Registry.register(@pools, {{:pool, name}, supervisor, size}, supervisor)
        {:ok, contexts(name)}

      {:error, {:shutdown, {:failed_to_start_child, _id, reason}}} ->
        {:error, reason}

      {:error, reason} ->
        {:error, reason}
    end
  end

  @doc "Stops pool `name` and its contexts; `:ok` also when it was not running."
  @spec stop(name()) :: :ok
  def stop(name) do
    case :ets.lookup(@pools, {:pool, name}) do
      [{_, supervisor, _size}] ->
        _ = DynamicSupervisor.terminate_child(ErlangPython.PoolSupervisor, supervisor)
        :ets.delete(@pools, {:pool, name})
        :ok

      [] ->
        :ok
    end
  end

  @doc "Whether pool `name` runs."
  @spec started?(name()) :: boolean()
  def started?(name), do: :ets.member(@pools, {:pool, name})

  @doc "How many contexts pool `name` has (0 when it does not run)."
  @spec size(name()) :: non_neg_integer()
  def size(name) do
    case :ets.lookup(@pools, {:pool, name}) do
      [{_, _supervisor, size}] -> size
      [] -> 0
    end
  end

  @doc "The contexts of pool `name`, in order (`[]` when it does not run)."
  @spec contexts(name()) :: [pid()]
  def contexts(name) do
    for index <- 1..size(name)//1, {:ok, pid} <- [context_at(name, index)], do: pid
  end

  @doc """
  The context of pool `name` (default `:default`) for the calling process:
  the one it bound with `bind/1`, else the same one every time. The
  `:default` pool is started on demand.
  """
  @spec context(name()) :: {:ok, pid()} | {:error, {:pool_not_started, name()}}
  def context(name \\ :default) do
    case Process.get({__MODULE__, :bound}) do
      pid when is_pid(pid) and name == :default ->
        {:ok, pid}

      _ ->
        with {:ok, size} <- ensure_started(name),
             do: context_at(name, :erlang.phash2(self(), size) + 1)
    end
  end

  @doc "The `index`th context (from 1) of pool `name`."
  @spec context_at(name(), pos_integer()) ::
          {:ok, pid()} | {:error, {:pool_not_started, name()} | {:no_such_context, integer()}}
  def context_at(name, index) when is_integer(index) do
    case :ets.lookup(@pools, {:member, name, index}) do
      [{_, pid}] ->
        {:ok, pid}

      [] ->
        if started?(name),
          do: {:error, {:no_such_context, index}},
          else: {:error, {:pool_not_started, name}}
    end
  end

  @doc """
  Makes `context/0` return `context` in the calling process, until
  `unbind/0`.
  """
  @spec bind(pid()) :: :ok
  def bind(context) when is_pid(context) do
    Process.put({__MODULE__, :bound}, context)
    :ok
  end

  @doc "Undoes `bind/1`; `:ok` also when nothing was bound."
  @spec unbind() :: :ok
  def unbind do
    Process.delete({__MODULE__, :bound})
    :ok
  end

  @doc "Routes calls of `module` (or only `{module, function}`) to `pool`."
  @spec register(name(), ErlangPython.name() | {ErlangPython.name(), ErlangPython.name()}) ::
          :ok | {:error, {:badarg, String.t()}}
  def register(pool, {module, function}) when is_atom(pool) do
    with {:ok, key} <- route_key(module, function) do
      :ets.insert(@routes, {key, pool})
      :ok
    end
  end

  def register(pool, module) when is_atom(pool) do
    with {:ok, key} <- route_key(module, :_) do
      :ets.insert(@routes, {key, pool})
      :ok
    end
  end

  @doc "Removes a route made by `register/2`; `:ok` also when there was none."
  @spec unregister(ErlangPython.name() | {ErlangPython.name(), ErlangPython.name()}) ::
          :ok | {:error, {:badarg, String.t()}}
  def unregister({module, function}) do
    with {:ok, key} <- route_key(module, function) do
      :ets.delete(@routes, key)
      :ok
    end
  end

  def unregister(module) do
    with {:ok, key} <- route_key(module, :_) do
      :ets.delete(@routes, key)
      :ok
    end
  end

  @doc "The pool a call of `module.function` goes to."
  @spec lookup(ErlangPython.name(), ErlangPython.name()) :: name()
  def lookup(module, function) do
    # No route at all (the usual case): no names to convert, no lookups.
    with false <- :ets.info(@routes, :size) == 0,
         {:ok, exact} <- route_key(module, function),
         [] <- :ets.lookup(@routes, exact),
         {:ok, whole} <- route_key(module, :_),
         [] <- :ets.lookup(@routes, whole) do
      :default
    else
      [{_key, pool}] -> pool
      true -> :default
      {:error, _} -> :default
    end
  end

  @doc "All routes, as `{{module, function | :_}, pool}` with names as strings."
  @spec registrations() :: [{{String.t(), String.t() | :_}, name()}]
  def registrations, do: :ets.tab2list(@routes)

  @doc false
  # Called by a pool member as it starts (and restarts).
  def joined({name, index}, pid),
    do: ErlangPython.Registry.register(@pools, {{:member, name, index}, pid}, pid)

  defp ensure_started(name) do
    case size(name) do
      0 when name == :default ->
        with {:ok, contexts} <- start(:default, default_size()), do: {:ok, length(contexts)}

      0 ->
        {:error, {:pool_not_started, name}}

      size ->
        {:ok, size}
    end
  end

  @doc false
  # The default pool's size: `config :erlang_python, num_contexts: n`.
  def default_size, do: ErlangPython.Runtime.config(:num_contexts)

  defp route_key(module, function) do
    with {:ok, module} <- name_text(module),
         {:ok, function} <- if(function == :_, do: {:ok, :_}, else: name_text(function)) do
      {:ok, {module, function}}
    end
  end

  defp name_text(name) when is_atom(name) and not is_nil(name), do: {:ok, Atom.to_string(name)}
  defp name_text(name) when is_binary(name) and name != "", do: {:ok, name}
  defp name_text(name) when is_list(name), do: name_text(List.to_string(name))

  defp name_text(name),
    do: {:error, {:badarg, "expected a module or function name, got: #{inspect(name)}"}}
end
