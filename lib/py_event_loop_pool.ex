defmodule :py_event_loop_pool do
  @moduledoc """
  Erlang facade for the event-loop pool (`ErlangPython.EventLoopPool`): a
  process is tied to one loop, so its tasks run in the order it submitted
  them, while different processes spread over the loops. Tasks run in the
  calling process's environment (`exec/1` definitions are visible to them).
  """

  alias ErlangPython.EventLoopPool

  @default_timeout 5000

  @doc "The calling process's loop: `{ok, LoopRef}`, the same at every call."
  @spec get_loop() :: {:ok, reference()}
  def get_loop, do: EventLoopPool.loop()

  @doc "All loops: `{ok, [{LoopRef, Pid}]}` (the pid is the pool's owner, `undefined` here)."
  @spec get_all_loops() :: {:ok, [{reference(), :undefined}]}
  def get_all_loops, do: {:ok, for(loop <- EventLoopPool.loops_list(), do: {loop, :undefined})}

  @doc "`#\{num_loops => N, supported => true, loops => [LoopRef], owngil_enabled => Bool}` (and `active_sessions` with own-GIL loops)."
  @spec get_stats() :: map()
  def get_stats, do: EventLoopPool.stats()

  @doc "Starts `Module:Func(Args)` on the caller's loop: a reference for `await/1,2`."
  @spec create_task(atom() | binary(), atom() | binary(), list()) :: reference()
  def create_task(module, function, args), do: create_task(module, function, args, %{})

  @doc "`create_task/3` with keyword arguments (a map)."
  @spec create_task(atom() | binary(), atom() | binary(), list(), map()) :: reference()
  def create_task(module, function, args, kwargs) do
    keep(EventLoopPool.create_task(module, function, args, kwargs: Map.new(kwargs)))
  end

  @doc "`create_task/4` on a given loop (from `get_loop/0` or `get_all_loops/0`)."
  @spec create_task_on_loop(reference(), atom() | binary(), atom() | binary(), list(), map()) ::
          reference()
  def create_task_on_loop(loop, module, function, args, kwargs) do
    keep(EventLoopPool.create_task(module, function, args, kwargs: Map.new(kwargs), loop: loop))
  end

  # Kept where py:async_await/2 looks, which shapes results as `py` does.
  defp keep(pending) do
    ref = make_ref()
    Process.put({:py, :async, ref}, pending)
    ref
  end

  @doc "The task's result: `{ok, Result}` or `{error, Reason}` (5 s)."
  @spec await(reference()) :: {:ok, term()} | {:error, term()}
  def await(ref), do: await(ref, @default_timeout)

  @doc """
  The task's result, waiting up to `Timeout` ms: `{error, timeout}` after
  that, and the task is cancelled (its coroutine's `finally` blocks run).
  """
  @spec await(reference(), timeout()) :: {:ok, term()} | {:error, term()}
  defdelegate await(ref, timeout), to: :py_event_loop

  @doc "Runs a task and waits for it (5 s)."
  @spec run(atom() | binary(), atom() | binary(), list()) :: {:ok, term()} | {:error, term()}
  def run(module, function, args), do: run(module, function, args, %{})

  @doc "Runs a task and waits; options `#\{timeout => Ms, kwargs => Map}`."
  @spec run(atom() | binary(), atom() | binary(), list(), map()) :: {:ok, term()} | {:error, term()}
  def run(module, function, args, opts) when is_map(opts) do
    ref = create_task(module, function, args, Map.get(opts, :kwargs, %{}))
    await(ref, Map.get(opts, :timeout, @default_timeout))
  end

  @doc "Starts a task whose result nobody waits for: `ok`."
  @spec spawn_task(atom() | binary(), atom() | binary(), list()) :: :ok
  def spawn_task(module, function, args), do: spawn_task(module, function, args, %{})

  @doc "`spawn_task/3` with keyword arguments."
  @spec spawn_task(atom() | binary(), atom() | binary(), list(), map()) :: :ok
  def spawn_task(module, function, args, kwargs) do
    # erlang_python answers ok whatever happens to the task.
    _ = EventLoopPool.spawn_task(module, function, args, kwargs: Map.new(kwargs))
    :ok
  end

  @doc "Executes statements in the calling process's environment (`py_event_loop:exec/1`)."
  @spec exec(iodata()) :: :ok | {:error, term()}
  defdelegate exec(code), to: :py_event_loop

  @doc "Evaluates an expression in the calling process's environment (`py_event_loop:eval/1`)."
  @spec eval(iodata()) :: {:ok, term()} | {:error, term()}
  defdelegate eval(code), to: :py_event_loop
end
