defmodule :py do
  @moduledoc """
  Erlang-style facade, with erlang_python-compatible names and return shapes.

  From Erlang:

      {ok, 4.0} = py:call(math, sqrt, [16]),
      {ok, 45} = py:eval(<<"sum(range(10))">>),
      ok = py:exec(<<"x = 1">>),
      {ok, 1} = py:eval(<<"x">>),
      {error, {'ZeroDivisionError', <<"division by zero">>}} = py:eval(<<"1/0">>).

  Every function here is a thin layer over the Elixir API (`ErlangPython`
  and its modules, named in each function's documentation); only the shapes
  differ:

    * **Process-bound environments.** Code runs in the calling process's own
      Python globals (`ErlangPython.Context.process/0`), as in
      erlang_python: names one process defines are invisible to the others,
      and they are freed when the process exits. With a context first
      (`py:eval(Ctx, Code)`), in the process's own environment inside that
      context (`ErlangPython.Context.process/1`). The Elixir API's default
      is the shared `__main__` instead; see `guides/contexts.md`.
    * **`none`.** Python's `None` comes back as `none` (`nil` in Elixir);
      `none`, `nil` and `undefined` all go to Python as `None`.
    * **Errors.** A Python exception is `{error, {TypeAtom, Message}}`,
      where `TypeAtom` is the exception's class name when an atom of that
      name already exists (every builtin exception class of Python 3.11 to 3.13 qualifies) and a binary
      otherwise: no atom is ever created from Python data. An interrupted
      call is `{error, interrupted}`; a sandbox block keeps the Elixir
      shape, `{error, {sandbox_blocked, Event, Message}}`. A bad argument
      (code with a NUL byte, keyword arguments that are neither a map nor a
      proplist) is `{error, {badarg, Text}}`, where the Elixir API raises
      `ArgumentError`.
    * Code may be a binary or a charlist (`py:eval("1 + 1")`).
  """

  alias ErlangPython.{
    Batch,
    Context,
    ContextServer,
    Error,
    Interpreter,
    Logging,
    Memory,
    Pool,
    Semaphore,
    SharedDict,
    State,
    Streaming,
    Tracing,
    Venv
  }

  @default_timeout ErlangPython.Options.default_timeout()

  @typedoc "An error as `:py` returns it."
  @type error :: {:error, {atom() | binary(), binary()} | atom() | term()}
  @typedoc "A result as `:py` returns it."
  @type result :: {:ok, term()} | error()
  @typedoc "A context process (`py:context/0`, `py_context:new/1`)."
  @type context :: pid()
  @typedoc "Keyword arguments: a map or a proplist (a bare atom means `true`)."
  @type kwargs :: map() | list()

  # ===========================================================================
  # call
  # ===========================================================================

  @doc """
  Calls `Module:Function(*Args)` in the calling process's environment
  (`ErlangPython.call/4`).
  """
  @spec call(ErlangPython.name(), ErlangPython.name(), list()) :: result()
  def call(module, function, args), do: call(module, function, args, %{})

  @doc """
  `call(Ctx, Module, Function, Args)`: in the process's environment in
  context `Ctx`. `call(Pool, Module, Function, Args)`: on a context of pool
  `Pool` (`ErlangPython.Pool`). `call(Module, Function, Args, Kwargs)`:
  with keyword arguments.
  """
  @spec call(context() | atom() | ErlangPython.name(), term(), term(), term()) :: result()
  def call(context, module, function, args) when is_pid(context),
    do: call(context, module, function, args, %{})

  def call(pool, module, function, args)
      when is_atom(pool) and not is_list(function) and is_list(args),
      do: call(pool, module, function, args, %{})

  def call(module, function, args, kwargs),
    do: call(module, function, args, kwargs, @default_timeout)

  @doc """
  `call(Ctx, Module, Function, Args, \#{kwargs => Map, timeout => Ms})`,
  `call(Pool, Module, Function, Args, Kwargs)`, or
  `call(Module, Function, Args, Kwargs, Timeout)`, where `Timeout` is
  milliseconds, `infinity`, or options `[{timeout, Ms}, {node, Node}]`
  (`node` runs the call on another connected node).

  Calls without a context take a slot of `py_semaphore` first and return
  `{error, {overloaded, Current, Max}}` when none frees in time.
  """
  @spec call(term(), term(), term(), term(), term()) :: result()
  def call(context, module, function, args, opts) when is_pid(context) and is_map(opts) do
    in_context(context, fn env ->
      ErlangPython.call(module, function, args,
        context: env,
        kwargs: kwargs_map(Map.get(opts, :kwargs, %{})),
        timeout: Map.get(opts, :timeout, :infinity)
      )
    end)
  end

  def call(pool, module, function, args, kwargs)
      when is_atom(pool) and not is_list(function) and is_list(args) do
    on_pool(pool, fn env ->
      ErlangPython.call(module, function, args,
        context: env,
        kwargs: kwargs_map(kwargs),
        timeout: @default_timeout
      )
    end)
  end

  def call(module, function, args, kwargs, options) when is_list(options) do
    if Keyword.keyword?(options) and Keyword.has_key?(options, :node) do
      shaped(fn ->
        ErlangPython.call(module, function, args, [kwargs: kwargs_map(kwargs)] ++ options)
      end)
    else
      routed_call(module, function, args, kwargs, Keyword.get(options, :timeout, @default_timeout))
    end
  end

  def call(module, function, args, kwargs, timeout),
    do: routed_call(module, function, args, kwargs, timeout)

  # An implicit call goes to the pool registered for it, else to the
  # process's own environment; either way holding a semaphore slot.
  defp routed_call(module, function, args, kwargs, timeout) do
    with_slot(timeout, fn ->
      run = fn env ->
        ErlangPython.call(module, function, args,
          context: env,
          kwargs: kwargs_map(kwargs),
          timeout: timeout
        )
      end

      case Pool.lookup(module, function) do
        :default -> in_process_env(run)
        pool -> on_pool(pool, run)
      end
    end)
  end

  defp with_slot(timeout, fun) do
    case Semaphore.with_slot(timeout, fun) do
      {:error, :max_concurrent} ->
        {:error, {:overloaded, Semaphore.current(), Semaphore.max_concurrent()}}

      result ->
        result
    end
  end

  # ===========================================================================
  # eval / exec
  # ===========================================================================

  @doc "Evaluates an expression in the process's environment (`ErlangPython.eval/3`)."
  @spec eval(iodata()) :: result()
  def eval(code), do: eval(code, %{})

  @doc """
  `eval(Ctx, Code)`: in the process's environment in context `Ctx`;
  `eval(Code, Locals)`: with local variables (a map or proplist).
  """
  @spec eval(context() | iodata(), iodata() | kwargs()) :: result()
  def eval(context, code) when is_pid(context), do: eval(context, code, %{})
  def eval(code, locals), do: eval(code, locals, @default_timeout)

  @doc """
  `eval(Ctx, Code, Locals)`, or `eval(Code, Locals, Timeout)` with
  `Timeout` in milliseconds, `infinity`, or options `[{timeout, Ms},
  {node, Node}]`.
  """
  @spec eval(context() | iodata(), iodata() | kwargs(), kwargs() | timeout() | list()) ::
          result()
  def eval(context, code, locals) when is_pid(context) do
    with {:ok, code} <- code_binary(code) do
      in_context(context, fn env ->
        ErlangPython.eval(code, kwargs_map(locals), context: env, timeout: :infinity)
      end)
    end
  end

  def eval(code, locals, options) when is_list(options) do
    with {:ok, code} <- code_binary(code) do
      if Keyword.keyword?(options) and Keyword.has_key?(options, :node) do
        shaped(fn -> ErlangPython.eval(code, kwargs_map(locals), options) end)
      else
        timeout = Keyword.get(options, :timeout, @default_timeout)

        in_process_env(fn env ->
          ErlangPython.eval(code, kwargs_map(locals), context: env, timeout: timeout)
        end)
      end
    end
  end

  def eval(code, locals, timeout) do
    with {:ok, code} <- code_binary(code) do
      in_process_env(fn env ->
        ErlangPython.eval(code, kwargs_map(locals), context: env, timeout: timeout)
      end)
    end
  end

  @doc "Executes statements in the process's environment (`ErlangPython.exec/2`)."
  @spec exec(iodata()) :: :ok | error()
  def exec(code), do: exec(code, [])

  @doc """
  `exec(Ctx, Code)`: in the process's environment in context `Ctx`;
  `exec(Code, Options)` with options `[{timeout, Ms}, {node, Node}]`.
  """
  @spec exec(context() | iodata(), iodata() | list()) :: :ok | error()
  def exec(context, code) when is_pid(context) do
    with {:ok, code} <- code_binary(code) do
      in_context(context, fn env ->
        ErlangPython.exec(code, context: env, timeout: :infinity)
      end)
    end
  end

  def exec(code, options) when is_list(options) do
    with {:ok, code} <- code_binary(code) do
      if Keyword.keyword?(options) and Keyword.has_key?(options, :node) do
        shaped(fn -> ErlangPython.exec(code, options) end)
      else
        timeout = Keyword.get(options, :timeout, @default_timeout)
        in_process_env(fn env -> ErlangPython.exec(code, context: env, timeout: timeout) end)
      end
    end
  end

  # ===========================================================================
  # Asynchronous calls
  # ===========================================================================

  @doc """
  Runs a call in a new process and returns `ok` at once; the result is
  discarded. The call runs in the caller's environment.
  """
  @spec cast(term(), term(), term()) :: :ok
  def cast(module, function, args), do: cast(module, function, args, %{})

  @doc "`cast(Ctx, Module, Function, Args)` or `cast(Module, Function, Args, Kwargs)`."
  @spec cast(term(), term(), term(), term()) :: :ok
  def cast(context, module, function, args) when is_pid(context),
    do: cast(context, module, function, args, %{})

  def cast(module, function, args, kwargs) do
    _ = background(fn env -> ErlangPython.call(module, function, args, call_opts(env, kwargs)) end)
    :ok
  end

  @doc "`cast(Ctx, Module, Function, Args, Kwargs)`."
  @spec cast(context(), term(), term(), list(), kwargs()) :: :ok
  def cast(context, module, function, args, kwargs) when is_pid(context) do
    _ =
      background(context, fn env ->
        ErlangPython.call(module, function, args, call_opts(env, kwargs))
      end)

    :ok
  end

  @doc """
  Runs a call in a new process and returns a reference at once; `await/1,2`
  gives the result (`{py_response, Ref, Result}` is the message).
  """
  @spec spawn_call(term(), term(), term()) :: reference()
  def spawn_call(module, function, args), do: spawn_call(module, function, args, %{})

  @doc "`spawn_call(Ctx, Module, Function, Args)` or `spawn_call(Module, Function, Args, Kwargs)`."
  @spec spawn_call(term(), term(), term(), term()) :: reference()
  def spawn_call(context, module, function, args) when is_pid(context),
    do: spawn_call(context, module, function, args, %{})

  def spawn_call(module, function, args, kwargs),
    do: reply_later(background(fn env -> call_shaped(env, module, function, args, kwargs) end))

  @doc "`spawn_call(Ctx, Module, Function, Args, Kwargs)`."
  @spec spawn_call(context(), term(), term(), list(), kwargs()) :: reference()
  def spawn_call(context, module, function, args, kwargs) when is_pid(context) do
    reply_later(background(context, fn env -> call_shaped(env, module, function, args, kwargs) end))
  end

  @doc "Waits for a `spawn_call` result (default 30 s): `{error, timeout}` after that."
  @spec await(reference(), timeout()) :: result()
  def await(ref, timeout \\ @default_timeout) when is_reference(ref) do
    receive do
      {:py_response, ^ref, result} -> result
      {:py_error, ^ref, error} -> {:error, error}
    after
      timeout -> {:error, :timeout}
    end
  end

  @doc """
  Starts a call (coroutine functions run on the asyncio loop) and returns a
  reference; `async_await/1,2` gives the result, in the same process
  (`ErlangPython.async_call/4`).
  """
  @spec async_call(term(), term(), list()) :: reference()
  def async_call(module, function, args), do: async_call(module, function, args, %{})

  @doc "`async_call/3` with keyword arguments."
  @spec async_call(term(), term(), list(), kwargs()) :: reference()
  def async_call(module, function, args, kwargs) do
    ref = make_ref()

    pending =
      case Context.process() do
        {:ok, env} ->
          shaped(fn -> ErlangPython.async_call(module, function, args, call_opts(env, kwargs)) end)

        {:error, _} = error ->
          error
      end

    Process.put({__MODULE__, :async, ref}, pending)
    ref
  end

  @doc "Waits for an `async_call` result (default 30 s)."
  @spec async_await(reference(), timeout()) :: result()
  def async_await(ref, timeout \\ @default_timeout) when is_reference(ref) do
    case Process.delete({__MODULE__, :async, ref}) do
      nil -> {:error, :badarg}
      {:error, _} = error -> erlang_shape(error)
      pending -> pending |> ErlangPython.await(timeout) |> erlang_shape()
    end
  end

  @doc """
  Runs `[{Module, Function, Args}]` concurrently (`ErlangPython.Batch.gather/2`):
  `{ok, Results}` in order, or `{error, {gather_failed, [{Index, Reason}]}}`.
  """
  @spec async_gather([{term(), term(), list()}], timeout()) :: result()
  def async_gather(calls, timeout \\ @default_timeout) when is_list(calls) do
    in_process_env(fn env -> Batch.gather(calls, context: env, timeout: timeout) end)
  end

  @doc """
  Runs `[{Module, Function, Args}]` in parallel on the default pool's
  contexts (`ErlangPython.Batch.parallel/2`): `{ok, Results}` in order, or
  the first error.
  """
  @spec parallel([{term(), term(), list()}]) :: result()
  def parallel(calls) when is_list(calls), do: calls |> Batch.parallel() |> erlang_shape()

  # ===========================================================================
  # Streams
  # ===========================================================================

  @doc "All items of `Module:Function(*Args)` (a generator or iterable), as `{ok, List}`."
  @spec stream(term(), term(), list()) :: result()
  def stream(module, function, args), do: stream(module, function, args, %{})

  @doc """
  `stream/3` with keyword arguments. A module, function or keyword name
  that is not a Python identifier exits with `{invalid_python_identifier,
  Name}`.
  """
  @spec stream(term(), term(), list(), kwargs()) :: result()
  def stream(module, function, args, kwargs) do
    kwargs = kwargs_map(kwargs)
    check_identifier!(module, :dotted)
    check_identifier!(function, :plain)
    if is_map(kwargs), do: Enum.each(Map.keys(kwargs), &check_identifier!(&1, :plain))

    in_process_env(fn env ->
      collect(fn -> ErlangPython.stream(module, function, args, call_opts(env, kwargs)) end)
    end)
  end

  @doc "All items of the generator or iterable an expression evaluates to."
  @spec stream_eval(iodata()) :: result()
  def stream_eval(code), do: stream_eval(code, %{})

  @doc "`stream_eval/1` with local variables."
  @spec stream_eval(iodata(), kwargs()) :: result()
  def stream_eval(code, locals) do
    with {:ok, code} <- code_binary(code) do
      in_process_env(fn env ->
        collect(fn -> ErlangPython.stream_eval(code, kwargs_map(locals), context: env) end)
      end)
    end
  end

  @doc """
  Streams `Module:Function(*Args)`'s items as messages
  (`ErlangPython.Streaming.start/4`): `{py_stream, Ref, {data, Item}}`,
  then `{py_stream, Ref, done}` or `{py_stream, Ref, {error, Text}}`.
  """
  @spec stream_start(term(), term(), list()) :: {:ok, reference()} | error()
  def stream_start(module, function, args), do: stream_start(module, function, args, %{})

  @doc "`stream_start/3` with options `\#{owner => Pid}`."
  @spec stream_start(term(), term(), list(), map()) :: {:ok, reference()} | error()
  def stream_start(module, function, args, opts) when is_map(opts) do
    with {:ok, env} <- Context.process() do
      Streaming.start(module, function, args,
        owner: Map.get(opts, :owner, self()),
        context: env,
        kwargs: kwargs_map(Map.get(opts, :kwargs, %{}))
      )
    end
  end

  @doc "Stops a stream started with `stream_start/3,4`."
  @spec stream_cancel(reference()) :: :ok
  defdelegate stream_cancel(ref), to: Streaming, as: :cancel

  # ===========================================================================
  # The interpreter
  # ===========================================================================

  @doc "Python's version string (`sys.version`)."
  @spec version() :: {:ok, binary()} | error()
  def version, do: Interpreter.version() |> erlang_shape()

  @doc "`worker`: one interpreter on worker threads (`ErlangPython.Interpreter`)."
  @spec execution_mode() :: :worker
  defdelegate execution_mode, to: Interpreter

  @doc "Whether contexts can be sub-interpreters with their own GIL (Python 3.12+)."
  @spec subinterp_supported() :: boolean()
  def subinterp_supported, do: Interpreter.subinterpreters_supported?()

  @doc "Garbage-collector and tracemalloc statistics (`ErlangPython.Memory.stats/0`)."
  @spec memory_stats() :: {:ok, map()} | error()
  def memory_stats, do: Memory.stats() |> erlang_shape()

  @doc "A full garbage collection: `{ok, Collected}`."
  @spec gc() :: {:ok, non_neg_integer()} | error()
  def gc, do: Memory.gc() |> erlang_shape()

  @doc "A collection of generations 0 to `Generation`."
  @spec gc(0..2) :: {:ok, non_neg_integer()} | error()
  def gc(generation), do: Memory.gc(generation) |> erlang_shape()

  @doc "Starts tracemalloc."
  @spec tracemalloc_start() :: :ok | error()
  def tracemalloc_start, do: Memory.tracemalloc_start() |> erlang_shape()

  @doc "Starts tracemalloc keeping `Frames` frames per allocation."
  @spec tracemalloc_start(pos_integer()) :: :ok | error()
  def tracemalloc_start(frames), do: Memory.tracemalloc_start(frames) |> erlang_shape()

  @doc "Stops tracemalloc."
  @spec tracemalloc_stop() :: :ok | error()
  def tracemalloc_stop, do: Memory.tracemalloc_stop() |> erlang_shape()

  @doc "Reloads a module if it is imported (`ErlangPython.Interpreter.reload/1`)."
  @spec reload(atom() | binary() | charlist()) :: :ok | error()
  def reload(module), do: Interpreter.reload(module) |> erlang_shape()

  @doc """
  A duplicate of descriptor `Fd` (or of a socket's), owned by the caller:
  `{ok, DupFd}` or `{error, Reason}` (`ErlangPython.Descriptor.dup/1`).
  """
  @spec dup_fd(ErlangPython.Descriptor.source()) :: {:ok, non_neg_integer()} | error()
  def dup_fd(fd), do: ErlangPython.Descriptor.dup(fd)

  # ===========================================================================
  # Erlang functions callable from Python
  # ===========================================================================

  @doc """
  Makes `Fun` callable from Python as `erlang.Name`; `Fun` takes the
  argument list: `py:register_function(run_shell, fun([Cmd]) -> ... end)`.
  """
  @spec register_function(ErlangPython.name(), (list() -> term())) :: :ok | {:error, term()}
  defdelegate register_function(name, fun), to: ErlangPython

  @doc "Makes `Module:Function(Args)` callable from Python as `erlang.Name`."
  @spec register_function(ErlangPython.name(), module(), atom()) :: :ok | {:error, term()}
  defdelegate register_function(name, module, function), to: ErlangPython

  @doc "Removes a registered function."
  @spec unregister_function(ErlangPython.name()) :: :ok | {:error, term()}
  defdelegate unregister_function(name), to: ErlangPython

  # ===========================================================================
  # Virtual environments
  # ===========================================================================

  @doc "`ensure_venv(Path, Requirements, [])`."
  @spec ensure_venv(iodata(), iodata()) :: :ok | error()
  def ensure_venv(path, requirements), do: ensure_venv(path, requirements, [])

  @doc """
  Creates the venv if needed, installs the requirements when they changed,
  and activates it (`ErlangPython.Venv.ensure/3`). Options: `{installer,
  pip | uv}`, `force`, `{python, Path}`, `{extras, [Name]}`.
  """
  @spec ensure_venv(iodata(), iodata(), list()) :: :ok | error()
  def ensure_venv(path, requirements, opts) when is_list(opts) do
    opts =
      Enum.flat_map(opts, fn
        :force -> [force: true]
        {key, value} when key in [:installer, :python, :extras, :force, :timeout] -> [{key, value}]
        _ -> []
      end)

    case Venv.ensure(chars(path), chars(requirements), opts) do
      {:ok, _info} -> :ok
      other -> erlang_shape(other)
    end
  end

  @doc "Activates a venv (`ErlangPython.activate_venv/1`): `ok`."
  @spec activate_venv(iodata()) :: :ok | error()
  def activate_venv(path) do
    case Venv.activate(chars(path)) do
      {:ok, _info} -> :ok
      other -> erlang_shape(other)
    end
  end

  @doc "Deactivates the active venv."
  @spec deactivate_venv() :: :ok | error()
  def deactivate_venv, do: Venv.deactivate() |> erlang_shape()

  @doc "`{ok, \#{<<\"active\">> => Bool, <<\"venv_path\">> => ..., ...}}`."
  @spec venv_info() :: {:ok, map()} | error()
  def venv_info do
    case Venv.info() do
      %{} = info -> {:ok, none(info)}
      other -> erlang_shape(other)
    end
  end

  # ===========================================================================
  # Shared state
  # ===========================================================================

  @doc "Stores a value (`ErlangPython.State.put/2`): `ok`, `{error, full}`."
  @spec state_store(term(), term()) :: :ok | {:error, :full | :reserved_key}
  defdelegate state_store(key, value), to: State, as: :put

  @doc "`{ok, Value}` or `{error, not_found}`."
  @spec state_fetch(term()) :: {:ok, term()} | {:error, :not_found}
  def state_fetch(key) do
    case State.fetch(key) do
      {:ok, value} -> {:ok, value}
      :error -> {:error, :not_found}
    end
  end

  @doc "Removes a key."
  @spec state_remove(term()) :: :ok
  defdelegate state_remove(key), to: State, as: :delete

  @doc "All keys."
  @spec state_keys() :: [term()]
  defdelegate state_keys, to: State, as: :keys

  @doc "Removes every key."
  @spec state_clear() :: :ok
  defdelegate state_clear, to: State, as: :clear

  @doc "Atomically adds 1; returns the new value."
  @spec state_incr(term()) :: integer()
  def state_incr(key), do: State.incr(key)

  @doc "Atomically adds `By`."
  @spec state_incr(term(), integer()) :: integer()
  def state_incr(key, by), do: State.incr(key, by)

  @doc "Atomically subtracts 1."
  @spec state_decr(term()) :: integer()
  def state_decr(key), do: State.decr(key)

  @doc "Atomically subtracts `By`."
  @spec state_decr(term(), integer()) :: integer()
  def state_decr(key, by), do: State.decr(key, by)

  @doc "A new SharedDict (`ErlangPython.SharedDict`): `{ok, SD}`."
  @spec shared_dict_new() :: {:ok, SharedDict.t()} | error()
  def shared_dict_new, do: SharedDict.new() |> erlang_shape()

  @doc "The value under `Key`, or `undefined`. `error:badarg` once destroyed."
  @spec shared_dict_get(SharedDict.t(), term()) :: term()
  def shared_dict_get(dict, key), do: shared_dict_get(dict, key, :undefined)

  @doc "The value under `Key`, or `Default`."
  @spec shared_dict_get(SharedDict.t(), term(), term()) :: term()
  def shared_dict_get(dict, key, default),
    do: badarg_on_error(fn -> none(SharedDict.get(dict, key, {__MODULE__, :absent})) end, default)

  @doc "Stores `Value` under `Key`."
  @spec shared_dict_set(SharedDict.t(), term(), term()) :: :ok
  def shared_dict_set(dict, key, value),
    do: badarg_on_error(fn -> SharedDict.put(dict, key, value) end)

  @doc "Removes `Key`."
  @spec shared_dict_del(SharedDict.t(), term()) :: :ok
  def shared_dict_del(dict, key), do: badarg_on_error(fn -> SharedDict.delete(dict, key) end)

  @doc "The keys."
  @spec shared_dict_keys(SharedDict.t()) :: [term()]
  def shared_dict_keys(dict), do: badarg_on_error(fn -> SharedDict.keys(dict) end)

  @doc "Empties and disables the dict; idempotent."
  @spec shared_dict_destroy(SharedDict.t()) :: :ok
  def shared_dict_destroy(dict), do: badarg_on_error(fn -> SharedDict.destroy(dict) end)

  defp badarg_on_error(fun, default \\ nil) do
    case fun.() do
      {__MODULE__, :absent} -> default
      value -> value
    end
  rescue
    ArgumentError -> :erlang.error(:badarg)
  end

  # ===========================================================================
  # Logging and tracing
  # ===========================================================================

  @doc "Python logging at `debug` and above goes to `logger`."
  @spec configure_logging() :: :ok | error()
  def configure_logging, do: configure_logging(%{})

  @doc "`\#{level => debug | info | warning | error | critical, format => Binary}`."
  @spec configure_logging(map()) :: :ok | error()
  def configure_logging(opts) when is_map(opts) do
    opts |> Map.take([:level, :format]) |> Map.to_list() |> Logging.configure() |> erlang_shape()
  end

  @doc "Starts recording `erlang.Span`s (`ErlangPython.Tracing`)."
  @spec enable_tracing() :: :ok | error()
  def enable_tracing, do: Tracing.enable() |> erlang_shape()

  @doc "Stops recording spans."
  @spec disable_tracing() :: :ok | error()
  def disable_tracing, do: Tracing.disable() |> erlang_shape()

  @doc "The recorded spans, in completion order (a root span's `parent_id` is `undefined`)."
  @spec get_traces() :: {:ok, [map()]} | error()
  def get_traces do
    with {:ok, spans} <- Tracing.spans() do
      {:ok,
       Enum.map(spans, fn span ->
         parent = if span.parent_id == nil, do: :undefined, else: span.parent_id
         %{none(span) | parent_id: parent}
       end)}
    end
    |> erlang_shape()
  end

  @doc "Forgets the recorded spans."
  @spec clear_traces() :: :ok | error()
  def clear_traces, do: Tracing.clear() |> erlang_shape()

  # ===========================================================================
  # Contexts and pools
  # ===========================================================================

  @doc "The default pool's context for the calling process (started on demand)."
  @spec context() :: context()
  def context, do: ok!(Pool.context(:default))

  @doc "The `N`th context (from 1) of the default pool."
  @spec context(pos_integer()) :: context()
  def context(index) when is_integer(index) do
    _ = ok!(Pool.context(:default))
    ok!(Pool.context_at(:default, index))
  end

  @doc "Starts the default pool (`ErlangPython.Pool.start/3`): `{ok, Contexts}`."
  @spec start_contexts() :: {:ok, [context()]} | error()
  def start_contexts, do: start_contexts(%{})

  @doc "`start_contexts/0` with `\#{contexts => N, mode => worker}`."
  @spec start_contexts(map()) :: {:ok, [context()]} | error()
  def start_contexts(opts) when is_map(opts) do
    size = Map.get(opts, :contexts, Pool.default_size())
    Pool.start(:default, size, mode: Map.get(opts, :mode, :worker))
  end

  @doc "Stops the default pool's contexts."
  @spec stop_contexts() :: :ok
  def stop_contexts, do: Pool.stop(:default)

  @doc "Whether the default pool runs."
  @spec contexts_started() :: boolean()
  def contexts_started, do: Pool.started?(:default)

  @doc """
  Interrupts what context `Ctx` runs (`ErlangPython.ContextServer.interrupt/1`):
  `ok`, or `not_running`. The interrupted call returns `{error, interrupted}`.
  """
  @spec interrupt(context()) :: :ok | :not_running | error()
  def interrupt(context) when is_pid(context), do: ContextServer.interrupt(context)

  @doc "The calling process's environment in context `Ctx` (an `ErlangPython.Context`)."
  @spec get_local_env(context()) :: Context.t()
  def get_local_env(context) when is_pid(context), do: ok!(Context.process(context))

  @doc "Routes a module, or `{Module, Function}`, to a pool (`ErlangPython.Pool.register/2`)."
  @spec register_pool(atom(), term()) :: :ok | error()
  defdelegate register_pool(pool, target), to: Pool, as: :register

  @doc "Removes a route."
  @spec unregister_pool(term()) :: :ok | error()
  defdelegate unregister_pool(target), to: Pool, as: :unregister

  # ===========================================================================
  # Python object references
  # ===========================================================================

  @doc "Calls a method of a Python object reference."
  @spec call_method(ErlangPython.Object.t(), ErlangPython.name(), list()) :: result()
  def call_method(ref, method, args),
    do: shaped(fn -> ErlangPython.call_method(ref, method, args) end)

  @doc "Reads an attribute of a Python object reference."
  @spec getattr(ErlangPython.Object.t(), ErlangPython.name()) :: result()
  def getattr(ref, name), do: shaped(fn -> ErlangPython.getattr(ref, name) end)

  @doc "Converts a Python object reference as far as it goes (`ErlangPython.decode/2`)."
  @spec to_term(ErlangPython.Object.t()) :: result()
  def to_term(ref), do: shaped(fn -> ErlangPython.decode(ref) end)

  @doc "Whether a term is a Python object reference."
  @spec is_ref(term()) :: boolean()
  def is_ref(term), do: match?(%ErlangPython.Object{}, term)

  # ===========================================================================
  # Helpers
  # ===========================================================================

  # Runs `fun` with the calling process's environment.
  defp in_process_env(fun) do
    case Context.process() do
      {:ok, env} -> shaped(fn -> fun.(env) end)
      {:error, _} = error -> erlang_shape(error)
    end
  end

  # Runs `fun` with the calling process's environment in context `context`.
  defp in_context(context, fun) do
    case Context.process(context) do
      {:ok, env} -> shaped(fn -> fun.(env) end)
      {:error, _} = error -> erlang_shape(error)
    end
  end

  defp on_pool(pool, fun) do
    case Pool.context(pool) do
      {:ok, context} -> in_context(context, fun)
      {:error, _} = error -> error
    end
  end

  defp call_opts(env, kwargs), do: [context: env, kwargs: kwargs_map(kwargs)]

  defp call_shaped(env, module, function, args, kwargs),
    do: shaped(fn -> ErlangPython.call(module, function, args, call_opts(env, kwargs)) end)

  # The Elixir API's result in erlang_python's shapes. A caller's mistake
  # (code with a NUL byte, kwargs that are not a map) raises ArgumentError
  # there; here it is data, `{error, {badarg, Text}}`, as the rest of this
  # module's failures are.
  defp shaped(fun) do
    fun.() |> erlang_shape()
  rescue
    error in ArgumentError -> {:error, {:badarg, Exception.message(error)}}
  end

  # Runs `fun` in a new process with the caller's environment (so functions
  # the caller defined are found); returns {pid, ref} for reply_later/1.
  defp background(fun) do
    case Context.process() do
      {:ok, env} -> spawn_with(env, fun)
      {:error, _} = error -> {:failed, erlang_shape(error)}
    end
  end

  defp background(context, fun) do
    case Context.process(context) do
      {:ok, env} -> spawn_with(env, fun)
      {:error, _} = error -> {:failed, erlang_shape(error)}
    end
  end

  defp spawn_with(env, fun) do
    parent = self()
    ref = make_ref()
    spawn(fn -> send(parent, {:py_response, ref, fun.(env)}) end)
    {:started, ref}
  end

  defp reply_later({:started, ref}), do: ref

  defp reply_later({:failed, error}) do
    ref = make_ref()
    send(self(), {:py_response, ref, error})
    ref
  end

  defp collect(stream) do
    shaped(fn -> {:ok, Enum.to_list(stream.())} end)
  rescue
    error in ErlangPython.Error -> erlang_shape({:error, error})
  end

  defp ok!({:ok, value}), do: value
  defp ok!({:error, reason}), do: :erlang.error(reason)

  defp check_identifier!(name, kind) do
    text =
      cond do
        is_atom(name) -> Atom.to_string(name)
        is_binary(name) -> name
        is_list(name) -> List.to_string(name)
        true -> :erlang.error({:invalid_python_identifier, name})
      end

    pattern =
      case kind do
        :plain -> ~r/\A[\p{L}_][\p{L}\p{N}_]*\z/u
        :dotted -> ~r/\A[\p{L}_][\p{L}\p{N}_]*(\.[\p{L}_][\p{L}\p{N}_]*)*\z/u
      end

    if String.valid?(text) and Regex.match?(pattern, text),
      do: :ok,
      else: :erlang.error({:invalid_python_identifier, name})
  end

  defp chars(path) when is_binary(path), do: path
  defp chars(path), do: IO.chardata_to_string(path)

  defp kwargs_map(kwargs) when is_map(kwargs), do: kwargs

  # Proplist semantics: a bare atom means `true`. Anything else is passed on
  # unchanged, for ErlangPython to reject (shaped/1 makes it {badarg, Text}).
  defp kwargs_map(kwargs) when is_list(kwargs) do
    if Enum.all?(kwargs, &(match?({_, _}, &1) or is_atom(&1))) do
      Map.new(kwargs, fn
        {key, value} -> {key, value}
        key -> {key, true}
      end)
    else
      kwargs
    end
  end

  defp kwargs_map(other), do: other

  defp code_binary(code) when is_binary(code), do: {:ok, code}

  defp code_binary(code) when is_list(code) do
    case :unicode.characters_to_binary(code) do
      binary when is_binary(binary) -> {:ok, binary}
      _ -> {:error, {:badarg, "code is not valid chardata"}}
    end
  end

  defp code_binary(code),
    do: {:error, {:badarg, "code must be a binary or a string, got: #{inspect(code)}"}}

  @doc false
  # The Elixir API's results in erlang_python's shapes.
  def erlang_shape({:ok, value}), do: {:ok, none(value)}

  def erlang_shape({:error, %Error{type: "Interrupted"}}), do: {:error, :interrupted}

  def erlang_shape({:error, %Error{type: type, message: message}}),
    do: {:error, {type_atom(type), message}}

  def erlang_shape(other), do: other

  @doc false
  # Python's None is `nil` in Elixir and `none` in erlang_python. Results
  # hold no None far more often than they do, so a walk that allocates
  # nothing looks first, and only a value with a `nil` in it is rebuilt:
  # rebuilding every result cost the caller 333 us for 1,000 string-keyed
  # rows (every map through Map.new), against 114 us for the walk alone.
  def none(value), do: if(nil?(value), do: with_none(value), else: value)

  # Whether with_none/1 would change `value`: a nil where it looks.
  defp nil?(nil), do: true
  defp nil?([head | tail]), do: nil?(head) or nil?(tail)
  defp nil?(%ErlangPython.Object{}), do: false
  defp nil?(tuple) when is_tuple(tuple), do: tuple_nil?(tuple, tuple_size(tuple))
  defp nil?(%MapSet{} = set), do: Enum.any?(set, &nil?/1)
  defp nil?(%_{}), do: false
  defp nil?(map) when is_map(map), do: map_nil?(:maps.next(:maps.iterator(map)))
  defp nil?(_other), do: false

  defp tuple_nil?(_tuple, 0), do: false

  defp tuple_nil?(tuple, index),
    do: nil?(elem(tuple, index - 1)) or tuple_nil?(tuple, index - 1)

  defp map_nil?(:none), do: false

  defp map_nil?({key, value, iterator}),
    do: nil?(key) or nil?(value) or map_nil?(:maps.next(iterator))

  defp with_none(nil), do: :none
  defp with_none(list) when is_list(list), do: none_list(list)
  defp with_none(%ErlangPython.Object{} = object), do: object

  defp with_none(tuple) when is_tuple(tuple),
    do: tuple |> Tuple.to_list() |> none_list() |> List.to_tuple()

  defp with_none(%MapSet{} = set), do: MapSet.new(set, &with_none/1)
  # Other structs (errors, handles) are Elixir values, not converted data.
  defp with_none(%_{} = struct), do: struct

  defp with_none(map) when is_map(map),
    do: Map.new(map, fn {key, value} -> {with_none(key), with_none(value)} end)

  defp with_none(other), do: other

  # Improper lists (opaque Erlang terms passed through Python) keep their tail.
  defp none_list([head | tail]), do: [with_none(head) | none_list(tail)]
  defp none_list([]), do: []
  defp none_list(tail), do: tail

  # Python's builtin exception classes, 3.11 to 3.13 (3.13 added
  # PythonFinalizationError and _IncompleteInputError). Listing them here as
  # atoms makes those atoms exist as soon as this module is loaded, so the
  # standard names always come back as atoms; any other name becomes an atom
  # only if that atom already exists. No atom is ever created from Python data.
  @standard_exceptions ~w(
    ArithmeticError AssertionError AttributeError BaseException BaseExceptionGroup BlockingIOError
    BrokenPipeError BufferError BytesWarning ChildProcessError ConnectionAbortedError
    ConnectionError ConnectionRefusedError ConnectionResetError DeprecationWarning EOFError
    EncodingWarning EnvironmentError Exception ExceptionGroup FileExistsError FileNotFoundError
    FloatingPointError FutureWarning GeneratorExit IOError ImportError ImportWarning
    IndentationError IndexError InterruptedError IsADirectoryError KeyError KeyboardInterrupt
    LookupError MemoryError ModuleNotFoundError NameError NotADirectoryError NotImplementedError
    OSError OverflowError PendingDeprecationWarning PermissionError ProcessLookupError
    PythonFinalizationError RecursionError ReferenceError ResourceWarning RuntimeError
    RuntimeWarning StopAsyncIteration StopIteration SyntaxError SyntaxWarning SystemError SystemExit
    TabError TimeoutError TypeError UnboundLocalError UnicodeDecodeError UnicodeEncodeError
    UnicodeError UnicodeTranslateError UnicodeWarning UserWarning ValueError Warning
    ZeroDivisionError _IncompleteInputError
  )a

  @doc false
  @spec standard_exceptions() :: [atom()]
  def standard_exceptions, do: @standard_exceptions

  defp type_atom(type) do
    String.to_existing_atom(type)
  rescue
    ArgumentError -> type
  end
end
