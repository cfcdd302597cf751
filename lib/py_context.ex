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

  @doc "A new context linked to the caller (it dies with it). Options: `\#{mode => worker}`."
  @spec new(map()) :: {:ok, context()} | {:error, term()}
  def new(opts) when is_map(opts), do: start(Map.get(opts, :mode, :worker))

  @doc "`start_link(Id, Mode)`: a context linked to the caller (`Id` is informational)."
  @spec start_link(term(), atom()) :: {:ok, context()} | {:error, term()}
  def start_link(_id, mode), do: start(mode)

  @doc "`start_link/2` with an options map (only `mode` is understood)."
  @spec start_link(term(), atom(), map()) :: {:ok, context()} | {:error, term()}
  def start_link(_id, mode, opts) when is_map(opts), do: start(mode)

  defp start(mode) do
    case ContextServer.start_link(mode: mode) do
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

  @doc "`{ok, Id}`: CPython's id of the context's interpreter (0: the main one; own-GIL contexts have their own)."
  @spec get_interp_id(context()) :: {:ok, non_neg_integer()} | {:error, term()}
  def get_interp_id(context) when is_pid(context) do
    with {:ok, namespace} <- ContextServer.namespace(context) do
      ErlangPython.eval(
        "int(__import__('_interpreters').get_current()[0]) if __import__('sys').version_info >= (3, 13) " <>
          "else int(__import__('_xxsubinterpreters').get_current())",
        %{},
        context: namespace
      )
    end
  end

  @doc "Whether the context runs on a sub-interpreter of its own (`mode => owngil`)."
  @spec is_subinterp(context()) :: boolean()
  def is_subinterp(context) when is_pid(context),
    do: match?({:ok, id} when id > 0, get_interp_id(context))
end
