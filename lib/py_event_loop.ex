defmodule :py_event_loop do
  @moduledoc """
  Erlang facade for running Python functions and coroutines as tasks
  (`ErlangPython.async_call/4`): a coroutine function's coroutine becomes a
  task on the runtime's asyncio loop (an `ErlangEventLoop` on its own
  thread), so thousands can wait at once without holding a thread; a plain
  function runs on the interpreter's workers. Tasks run in the calling
  process's environment (`py:exec/1` definitions are visible to them).
  """

  @default_timeout 30_000

  @doc "The default loop: `{ok, LoopRef}` (the first of `py_event_loop_pool`'s)."
  @spec get_loop() :: {:ok, reference()}
  def get_loop, do: {:ok, hd(ErlangPython.EventLoopPool.loops_list())}

  @doc "Starts `Module.Func(*Args)` as a task: a reference for `await/1,2`."
  @spec create_task(atom() | binary(), atom() | binary(), list()) :: reference()
  def create_task(module, function, args), do: create_task(module, function, args, %{})

  @doc "`create_task/3` with keyword arguments (a map)."
  @spec create_task(atom() | binary(), atom() | binary(), list(), map()) :: reference()
  def create_task(module, function, args, kwargs) do
    ref = make_ref()

    pending =
      with {:ok, env} <- environment() do
        ErlangPython.async_call(name(module), name(function), args,
          context: env,
          kwargs: Map.new(kwargs)
        )
      end

    # Kept where py:async_await/2 looks, which shapes results as `py` does.
    Process.put({:py, :async, ref}, pending)
    ref
  end

  # Erlang code names modules with strings too: "__main__".
  defp name(name) when is_list(name), do: List.to_string(name)
  defp name(name), do: name

  # The environment the caller last worked in: its environment in a context
  # process it used (`py:exec(Ctx, Code)`), else its default one, so that
  # functions it defined are found.
  defp environment do
    used =
      for {{ErlangPython.Context, server}, %ErlangPython.Context{} = env} <- Process.get(),
          is_pid(server),
          Process.alive?(server),
          do: env

    case used do
      [env | _] -> {:ok, env}
      [] -> ErlangPython.Context.process()
    end
  end

  @doc "The task's result: `{ok, Result}` or `{error, Reason}` (30 s)."
  @spec await(reference()) :: {:ok, term()} | {:error, term()}
  def await(ref), do: await(ref, @default_timeout)

  @doc """
  The task's result, waiting up to `Timeout` ms: `{error, timeout}` after
  that, and the task is cancelled (a coroutine sees `CancelledError`, so its
  `finally` blocks run).
  """
  @spec await(reference(), timeout()) :: {:ok, term()} | {:error, term()}
  def await(ref, timeout), do: :py.async_await(ref, timeout)

  @doc "Runs a task and waits for it (30 s)."
  @spec run(atom() | binary(), atom() | binary(), list()) :: {:ok, term()} | {:error, term()}
  def run(module, function, args), do: run(module, function, args, %{})

  @doc "Runs a task and waits for it; options `#\{timeout => Ms, kwargs => Map}`."
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
    with {:ok, env} <- environment() do
      spawn(fn ->
        ErlangPython.call(name(module), name(function), args,
          context: env,
          kwargs: Map.new(kwargs),
          timeout: :infinity
        )
      end)
    end

    :ok
  end

  @doc "Executes statements in the calling process's environment."
  @spec exec(iodata()) :: :ok | {:error, term()}
  def exec(code), do: :py.exec(code)

  @doc "Evaluates an expression in the calling process's environment."
  @spec eval(iodata()) :: {:ok, term()} | {:error, term()}
  def eval(code), do: :py.eval(code)
end
