defmodule :py_context_router do
  @moduledoc """
  Erlang facade for pools of contexts and call routing (`ErlangPython.Pool`),
  with erlang_python's names and shapes. Functions without a pool name act
  on the `default` pool.

      {ok, _} = py_context_router:start_pool(io, 10, worker),
      ok = py:register_pool(io, requests),
      io = py_context_router:lookup_pool(requests, get).
  """

  alias ErlangPython.Pool

  @doc "Starts the default pool (`num_contexts` contexts): `{ok, Contexts}`."
  @spec start() :: {:ok, [pid()]} | {:error, term()}
  def start, do: start(%{})

  @doc "`start/0` with `\#{contexts => N}`."
  @spec start(map()) :: {:ok, [pid()]} | {:error, term()}
  def start(opts) when is_map(opts),
    do: Pool.start(:default, Map.get(opts, :contexts, Pool.default_size()))

  @doc "Stops the default pool."
  @spec stop() :: :ok
  def stop, do: Pool.stop(:default)

  @doc "Whether the default pool runs."
  @spec is_started() :: boolean()
  def is_started, do: Pool.started?(:default)

  @doc "The default pool's context for the calling process (the bound one, if any)."
  @spec get_context() :: pid()
  def get_context, do: ok!(Pool.context(:default))

  @doc "`get_context(N)`: the default pool's `N`th context; `get_context(Pool)`: a pool's."
  @spec get_context(pos_integer() | atom()) :: pid()
  def get_context(index) when is_integer(index) do
    _ = ok!(Pool.context(:default))
    ok!(Pool.context_at(:default, index))
  end

  def get_context(pool) when is_atom(pool), do: ok!(Pool.context(pool))

  @doc "Makes `get_context/0` return `Ctx` in this process."
  @spec bind_context(pid()) :: :ok
  defdelegate bind_context(context), to: Pool, as: :bind

  @doc "Undoes `bind_context/1`."
  @spec unbind_context() :: :ok
  defdelegate unbind_context, to: Pool, as: :unbind

  @doc "How many contexts the default pool has (0 when stopped)."
  @spec num_contexts() :: non_neg_integer()
  def num_contexts, do: Pool.size(:default)

  @doc "How many contexts a pool has."
  @spec num_contexts(atom()) :: non_neg_integer()
  defdelegate num_contexts(pool), to: Pool, as: :size

  @doc "The default pool's contexts, in order."
  @spec contexts() :: [pid()]
  def contexts, do: Pool.contexts(:default)

  @doc "A pool's contexts, in order."
  @spec contexts(atom()) :: [pid()]
  defdelegate contexts(pool), to: Pool

  @doc "Starts pool `Pool` with `Size` contexts."
  @spec start_pool(atom(), pos_integer()) :: {:ok, [pid()]} | {:error, term()}
  def start_pool(pool, size), do: Pool.start(pool, size)

  @doc "Starts pool `Pool` with `Size` contexts in mode `Mode` (`worker`)."
  @spec start_pool(atom(), pos_integer(), atom()) :: {:ok, [pid()]} | {:error, term()}
  def start_pool(pool, size, mode), do: Pool.start(pool, size, mode: mode)

  @doc "Stops a pool."
  @spec stop_pool(atom()) :: :ok
  defdelegate stop_pool(pool), to: Pool, as: :stop

  @doc "Whether a pool runs."
  @spec pool_started(atom()) :: boolean()
  defdelegate pool_started(pool), to: Pool, as: :started?

  @doc "Routes a module, or `{Module, Function}`, to a pool."
  @spec register_pool(atom(), term()) :: :ok | {:error, term()}
  defdelegate register_pool(pool, target), to: Pool, as: :register

  @doc "Routes `Module.Function` to a pool."
  @spec register_pool(atom(), term(), term()) :: :ok | {:error, term()}
  def register_pool(pool, module, function), do: Pool.register(pool, {module, function})

  @doc "Removes a module's (or `{Module, Function}`'s) route."
  @spec unregister_pool(term()) :: :ok | {:error, term()}
  defdelegate unregister_pool(target), to: Pool, as: :unregister

  @doc "Removes `Module.Function`'s route."
  @spec unregister_pool(term(), term()) :: :ok | {:error, term()}
  def unregister_pool(module, function), do: Pool.unregister({module, function})

  @doc "The pool a call of `Module:Function` goes to."
  @spec lookup_pool(term(), term()) :: atom()
  defdelegate lookup_pool(module, function), to: Pool, as: :lookup

  @doc "All routes: `[{{Module, Function | '_'}, Pool}]`, names as binaries."
  @spec list_pool_registrations() :: [{{binary(), binary() | :_}, atom()}]
  defdelegate list_pool_registrations, to: Pool, as: :registrations

  defp ok!({:ok, value}), do: value
  defp ok!({:error, reason}), do: :erlang.error(reason)
end
