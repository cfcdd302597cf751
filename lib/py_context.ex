defmodule :py_context do
  @moduledoc """
  Erlang facade for context processes (`ErlangPython.ContextServer`), with
  erlang_python's names and shapes.

      {ok, Ctx} = py_context:new(\#{mode => worker}),
      ok = py_context:exec(Ctx, <<"x = 21">>),
      {ok, 42} = py_context:eval(Ctx, <<"x * 2">>, \#{}),
      {ok, 4.0} = py_context:call(Ctx, math, sqrt, [16], \#{}),
      ok = py_context:stop(Ctx).

  These functions run in the context's own namespace; `py:eval(Ctx, ...)`
  and friends run in the calling process's environment inside the context.
  Timeouts default to `infinity`; a call whose timeout expires returns
  `{error, timeout}` and is interrupted. `mode => owngil` gives the context
  a sub-interpreter with its own GIL where the Python has them (3.12+,
  `ErlangPython.OwnGil`).
  """

  alias ErlangPython.{Context, ContextServer}

  @type context :: pid()

  @doc """
  A new context linked to the caller (it dies with it). Options:
  `\#{mode => worker, memory_limit => Bytes}`: a ceiling on what the
  context allocates (0: none), past which its Python code gets
  `MemoryError`; `{error, {invalid_memory_limit, Value}}` for anything but
  a non-negative integer. Its usage is `py_nif:context_memory_usage/1`.
  """
  @spec new(map()) :: {:ok, context()} | {:error, term()}
  def new(opts) when is_map(opts) do
    case Map.get(opts, :memory_limit, 0) do
      0 -> start(Map.get(opts, :mode, :worker), :infinity)
      bytes when is_integer(bytes) and bytes > 0 -> start(Map.get(opts, :mode, :worker), bytes)
      other -> {:error, {:invalid_memory_limit, other}}
    end
  end

  @doc "`start_link(Id, Mode)`: a context linked to the caller (`Id` is informational)."
  @spec start_link(term(), atom()) :: {:ok, context()} | {:error, term()}
  def start_link(_id, mode), do: start(mode, :infinity)

  @doc "`start_link/2` with an options map (only `mode` is understood)."
  @spec start_link(term(), atom(), map()) :: {:ok, context()} | {:error, term()}
  def start_link(_id, mode, opts) when is_map(opts), do: start(mode, :infinity)

  # Erlang contexts are always counted on their own, as erlang_python's
  # are, so py_nif:context_memory_usage/1 answers for each.
  defp start(mode, memory_limit) do
    case ContextServer.start_link(mode: mode, memory_limit: memory_limit) do
      {:ok, pid} -> {:ok, pid}
      {:error, {:context_start_failed, reason}} -> {:error, :py.erlang_shape({:error, reason})}
      {:error, _} = error -> error
    end
  end

  @doc "Stops the context; `ok` also when it is not running."
  @spec stop(context()) :: :ok
  defdelegate stop(context), to: ContextServer

  @doc "Same as `stop/1`."
  @spec destroy(context()) :: :ok
  defdelegate destroy(context), to: ContextServer, as: :stop

  @doc "Calls `Module:Function(*Args)` in the context."
  @spec call(context(), term(), term(), list()) :: :py.result()
  def call(context, module, function, args), do: call(context, module, function, args, %{})

  @doc "`call/4` with keyword arguments."
  @spec call(context(), term(), term(), list(), map()) :: :py.result()
  def call(context, module, function, args, kwargs),
    do: call(context, module, function, args, kwargs, :infinity)

  @doc "`call/5` with a timeout."
  @spec call(context(), term(), term(), list(), map(), timeout()) :: :py.result()
  def call(context, module, function, args, kwargs, timeout) when is_pid(context) do
    module
    |> ErlangPython.call(function, args, context: context, kwargs: kwargs, timeout: timeout)
    |> :py.erlang_shape()
  end

  @doc """
  `call/6` in a process environment of the context (`py:get_local_env/1`):
  the names that environment's `exec/3` defined are visible.
  """
  @spec call(context(), term(), term(), list(), map(), timeout(), ErlangPython.Context.t()) ::
          :py.result()
  def call(context, module, function, args, kwargs, timeout, %ErlangPython.Context{} = env)
      when is_pid(context) do
    module
    |> ErlangPython.call(function, args, context: env, kwargs: kwargs, timeout: timeout)
    |> :py.erlang_shape()
  end

  @doc "Evaluates an expression in the context."
  @spec eval(context(), iodata()) :: :py.result()
  def eval(context, code), do: eval(context, code, %{})

  @doc "`eval/2` with local variables."
  @spec eval(context(), iodata(), map()) :: :py.result()
  def eval(context, code, locals), do: eval(context, code, locals, :infinity)

  @doc "`eval/3` with a timeout."
  @spec eval(context(), iodata(), map(), timeout()) :: :py.result()
  def eval(context, code, locals, timeout) when is_pid(context) do
    code
    |> IO.chardata_to_string()
    |> ErlangPython.eval(locals, context: context, timeout: timeout)
    |> :py.erlang_shape()
  end

  @doc "Executes statements in the context."
  @spec exec(context(), iodata()) :: :ok | :py.error()
  def exec(context, code) when is_pid(context) do
    code
    |> IO.chardata_to_string()
    |> ErlangPython.exec(context: context, timeout: :infinity)
    |> :py.erlang_shape()
  end

  @doc "Executes statements in a process environment of the context (`py:get_local_env/1`)."
  @spec exec(context(), iodata(), ErlangPython.Context.t()) :: :ok | :py.error()
  def exec(context, code, %ErlangPython.Context{} = env) when is_pid(context) do
    code
    |> IO.chardata_to_string()
    |> ErlangPython.exec(context: env, timeout: :infinity)
    |> :py.erlang_shape()
  end

  @doc """
  Starts `Module:Func(*Args)` in the context as a task and returns at once:
  `{ok, TaskRef}`, for `py_event_loop:await/1,2`. A coroutine function's
  coroutine runs on the interpreter's event loop (an `ErlangEventLoop`),
  where servers and connections it opens keep being served after it
  returns; a plain function runs on the context's worker thread
  (`ErlangPython.async_call/4` with `context:`).
  """
  @spec submit(context(), term(), term(), list()) :: {:ok, reference()} | :py.error()
  def submit(context, module, function, args), do: submit(context, module, function, args, %{})

  @doc "`submit/4` with keyword arguments."
  @spec submit(context(), term(), term(), list(), map()) :: {:ok, reference()} | :py.error()
  def submit(context, module, function, args, kwargs)
      when is_pid(context) and is_list(args) and is_map(kwargs) do
    case ErlangPython.async_call(name(module), name(function), args,
           context: context,
           kwargs: kwargs
         ) do
      {:error, _} = error ->
        :py.erlang_shape(error)

      pending ->
        ref = make_ref()
        # Where py_event_loop:await/2 looks for it.
        Process.put({:py, :async, ref}, pending)
        {:ok, ref}
    end
  end

  defp name(name) when is_list(name), do: List.to_string(name)
  defp name(name), do: name

  @doc "`submit/4` and `py_event_loop:await/2` in one step (5 s)."
  @spec submit_await(context(), term(), term(), list()) :: :py.result()
  def submit_await(context, module, function, args),
    do: submit_await(context, module, function, args, %{}, 5_000)

  @doc "`submit_await/4` with keyword arguments."
  @spec submit_await(context(), term(), term(), list(), map()) :: :py.result()
  def submit_await(context, module, function, args, kwargs),
    do: submit_await(context, module, function, args, kwargs, 5_000)

  @doc "`submit_await/5` with a timeout (the task is cancelled when it expires)."
  @spec submit_await(context(), term(), term(), list(), map(), timeout()) :: :py.result()
  def submit_await(context, module, function, args, kwargs, timeout) do
    with {:ok, ref} <- submit(context, module, function, args, kwargs) do
      :py_event_loop.await(ref, timeout)
    end
  end

  @doc "Calls a method of a Python object reference, in the context."
  @spec call_method(context(), ErlangPython.Object.t(), term(), list()) :: :py.result()
  def call_method(context, ref, method, args) when is_pid(context) do
    ref |> ErlangPython.call_method(method, args, context: context) |> :py.erlang_shape()
  end

  @doc "Converts a Python object reference as far as it goes."
  @spec to_term(ErlangPython.Object.t()) :: :py.result()
  defdelegate to_term(ref), to: :py

  @doc "Interrupts what the context runs: `ok` or `not_running`."
  @spec interrupt(context()) :: :ok | :not_running | {:error, term()}
  defdelegate interrupt(context), to: ContextServer

  @doc "The calling process's environment in the context: `{ok, Env}`."
  @spec create_local_env(context()) :: {:ok, Context.t()} | {:error, term()}
  defdelegate create_local_env(context), to: Context, as: :process

  @doc """
  `{ok, Id}`: the context's id, a positive integer no other context of this
  VM has (as the original's, which counts contexts from 1; the id also
  picks the context's worker thread).
  """
  @spec get_interp_id(context()) :: {:ok, pos_integer()} | {:error, term()}
  def get_interp_id(context) when is_pid(context) do
    with {:ok, namespace} <- ContextServer.namespace(context), do: {:ok, namespace.scope}
  end

  @doc """
  The handle `py_nif`'s context functions take
  (`py_nif:context_memory_usage/1`): here, the context itself.
  """
  @spec get_nif_ref(context()) :: context()
  def get_nif_ref(context) when is_pid(context), do: context

  @doc "Whether the context runs on a sub-interpreter of its own (`mode => owngil`)."
  @spec is_subinterp(context()) :: boolean()
  def is_subinterp(context) when is_pid(context) do
    # CPython numbers the main interpreter 0 and each sub-interpreter above.
    with {:ok, namespace} <- ContextServer.namespace(context),
         {:ok, id} when id > 0 <-
           ErlangPython.eval(
             "int(__import__('_interpreters').get_current()[0]) if __import__('sys').version_info >= (3, 13) " <>
               "else int(__import__('_xxsubinterpreters').get_current())",
             %{},
             context: namespace
           ) do
      true
    else
      _ -> false
    end
  end
end
