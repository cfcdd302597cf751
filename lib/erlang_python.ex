defmodule ErlangPython do
  @moduledoc """
  Call Python from Elixir, inside the BEAM.

  CPython runs embedded in the VM on a dedicated OS thread. Calls never block
  a scheduler: each request is queued for the interpreter's thread and the
  answer comes back as a message, so a slow Python function costs the caller
  a `receive`, not the VM a scheduler.

      iex> ErlangPython.call(:math, :sqrt, [16])
      {:ok, 4.0}
      iex> ErlangPython.eval("sum(range(10))")
      {:ok, 45}
      iex> ErlangPython.eval("x * y", %{x: 5, y: 5})
      {:ok, 25}

  Values convert both ways (integers of any size, floats, strings, bytes,
  lists, tuples, maps, sets, pids); see `guides/type-conversion.md`.

  Errors are data: a Python exception comes back as
  `{:error, %ErlangPython.Error{}}`, an operation refused by the sandbox as
  `{:error, {:sandbox_blocked, event, message}}`, and an expired timeout as
  `{:error, :timeout}`. The bang variants raise instead.

  ## Options

    * `:timeout` - milliseconds to wait for the answer, or `:infinity`
      (default `30_000`). On expiry the call returns `{:error, :timeout}`
      and its eventual result is discarded.
    * `:kwargs` - keyword arguments for `call/4`, as a map or keyword list.
    * `:decode` - `false` returns `%ErlangPython.Object{}` handles even for
      values that convert (default `true`: only values without an Elixir
      form come back as handles).
    * `:context` - an `ErlangPython.Context` to run in instead of `__main__`
      (see `ErlangPython.Context.process/0` for the calling process's own),
      or the pid of an `ErlangPython.ContextServer` (its namespace, on its
      thread).
    * `:node` - run on another connected node (through `:erpc`), whose own
      erlang_python does the work; values are copied, errors and timeouts
      come back the same way. `{:error, {:nodedown, node}}` when it is not
      reachable.
  """

  alias ErlangPython.{Error, Native, Runtime}

  @default_timeout 30_000

  @typedoc "A module or function name: `:math`, `\"os.path\"`, `:__main__`."
  @type name :: atom() | String.t()

  @typedoc "Why a call failed."
  @type reason ::
          Error.t()
          | {:sandbox_blocked, event :: String.t(), message :: String.t()}
          | :timeout
          | :overloaded
          | :not_started
          | {:badarg, String.t()}
          | {:too_deep, pos_integer()}
          | :duplicate_key
          | {:integer_too_large, non_neg_integer()}
          | {:internal_error, String.t()}

  @type option :: {:timeout, timeout()} | {:kwargs, map() | keyword()}

  @doc """
  Calls `module.function(*args, **kwargs)`.

  `module` may be dotted (`"os.path"`) and is imported on first use;
  `:__main__` reaches names defined by `exec/2`. `function` may be dotted too
  (`"path.join"` on `:os`).

      iex> ErlangPython.call(:builtins, :sorted, [[1, 3, 2]], kwargs: [reverse: true])
      {:ok, [3, 2, 1]}
      iex> ErlangPython.call("os.path", :join, ["a", "b"])
      {:ok, "a/b"}
  """
  @spec call(name(), name(), list(), [option()]) :: {:ok, term()} | {:error, reason()}
  def call(module, function, args \\ [], opts \\ [])

  def call(module, function, args, opts) do
    if remote?(opts),
      do: on_node(opts, :call, fn opts -> [module, function, args, opts] end),
      else: call_here(module, function, args, opts)
  end

  defp call_here(module, function, args, opts) do
    with :ok <- check_name(module, "module"),
         :ok <- check_name(function, "function"),
         :ok <- check_args(args),
         {:ok, kwargs} <- fetch_kwargs(opts),
         {:ok, timeout} <- fetch_timeout(opts) do
      with {:ok, op} <- wrap({:call, module, function, args, kwargs}, opts),
           do: Runtime.request(op, timeout)
    end
  end

  @doc """
  Evaluates a Python expression and returns its value.

  `locals` (a map with atom or string keys) are visible to the expression,
  including inside lambdas and comprehensions. Names defined in `__main__`
  (by `exec/2`) are visible too.

      iex> ErlangPython.eval("[n * k for n in range(3)]", %{k: 10})
      {:ok, [0, 10, 20]}
  """
  @spec eval(String.t(), map(), [option()]) :: {:ok, term()} | {:error, reason()}
  def eval(code, locals \\ %{}, opts \\ [])

  def eval(code, locals, opts) do
    if remote?(opts),
      do: on_node(opts, :eval, fn opts -> [code, locals, opts] end),
      else: eval_here(code, locals, opts)
  end

  defp eval_here(code, locals, opts) do
    with :ok <- check_code(code),
         :ok <- check_locals(locals),
         {:ok, timeout} <- fetch_timeout(opts) do
      with {:ok, op} <- wrap({:eval, code, locals}, opts), do: Runtime.request(op, timeout)
    end
  end

  @doc """
  Executes Python statements in `__main__`.

  Definitions persist: later `eval/3` and `call(:__main__, ...)` see them.

      iex> ErlangPython.exec("def double(x):\\n    return x * 2")
      :ok
      iex> ErlangPython.call(:__main__, :double, [21])
      {:ok, 42}
  """
  @spec exec(String.t(), [option()]) :: :ok | {:error, reason()}
  def exec(code, opts \\ [])

  def exec(code, opts) do
    if remote?(opts),
      do: on_node(opts, :exec, fn opts -> [code, opts] end),
      else: exec_here(code, opts)
  end

  defp exec_here(code, opts) do
    with :ok <- check_code(code),
         {:ok, timeout} <- fetch_timeout(opts) do
      with {:ok, op} <- wrap({:exec, code}, opts), do: Runtime.request(op, timeout)
    end
  end

  @doc """
  Like `call/4`, but returns the value or raises `ErlangPython.Error`.

      iex> ErlangPython.call!(:math, :pow, [2, 10])
      1024.0
  """
  @spec call!(name(), name(), list(), [option()]) :: term()
  def call!(module, function, args \\ [], opts \\ []),
    do: unwrap!(call(module, function, args, opts))

  @doc """
  Like `eval/3`, but returns the value or raises `ErlangPython.Error`.

      iex> ErlangPython.eval!("'-'.join(['a', 'b'])")
      "a-b"
  """
  @spec eval!(String.t(), map(), [option()]) :: term()
  def eval!(code, locals \\ %{}, opts \\ []), do: unwrap!(eval(code, locals, opts))

  @doc """
  Like `exec/2`, but returns `:ok` or raises `ErlangPython.Error`.
  """
  @spec exec!(String.t(), [option()]) :: :ok
  def exec!(code, opts \\ []), do: unwrap!(exec(code, opts))

  @doc """
  A round trip to the interpreter's thread that runs no Python code.

  Useful as a health check.

      iex> ErlangPython.ping()
      :pong
  """
  @spec ping(timeout()) :: :pong | {:error, reason()}
  def ping(timeout \\ @default_timeout), do: Runtime.request(:ping, timeout)

  @doc """
  Reads an attribute of a Python object handle.

      iex> {:ok, path} = ErlangPython.call(:pathlib, :PurePosixPath, ["/srv/app/main.py"])
      iex> ErlangPython.getattr(path, :suffix)
      {:ok, ".py"}
  """
  @spec getattr(ErlangPython.Object.t(), name(), [option()]) :: {:ok, term()} | {:error, reason()}
  def getattr(object, name, opts \\ [])

  def getattr(%ErlangPython.Object{} = object, name, opts) do
    with {:ok, timeout} <- fetch_timeout(opts), {:ok, op} <- wrap({:getattr, object, name}, opts) do
      Runtime.request(op, timeout)
    end
  end

  def getattr(object, _name, _opts), do: not_an_object(object)

  @doc """
  Calls a method of a Python object handle; options as for `call/4`.

      iex> {:ok, path} = ErlangPython.call(:pathlib, :PurePosixPath, ["/srv/app/main.py"])
      iex> ErlangPython.call_method(path, :with_suffix, [".txt"], decode: false) |> elem(1) |> ErlangPython.decode()
      {:ok, "/srv/app/main.txt"}
  """
  @spec call_method(ErlangPython.Object.t(), name(), list(), [option()]) ::
          {:ok, term()} | {:error, reason()}
  def call_method(object, name, args \\ [], opts \\ [])

  def call_method(%ErlangPython.Object{} = object, name, args, opts) do
    with :ok <- check_args(args),
         {:ok, kwargs} <- fetch_kwargs(opts),
         {:ok, timeout} <- fetch_timeout(opts),
         {:ok, op} <- wrap({:call_method, object, name, args, kwargs}, opts) do
      Runtime.request(op, timeout)
    end
  end

  def call_method(object, _name, _args, _opts), do: not_an_object(object)

  @doc """
  Converts a handle's object as far as it can: containers recursively,
  `tolist()` for numpy values, dataclasses and objects through their
  fields, dates as ISO strings, decimals as strings, anything else through
  its `repr`.
  """
  @spec decode(ErlangPython.Object.t(), [option()]) :: {:ok, term()} | {:error, reason()}
  def decode(object, opts \\ [])

  def decode(%ErlangPython.Object{} = object, opts),
    do: call("_erlang_impl._decode", :decode, [object], opts)

  def decode(object, _opts), do: not_an_object(object)

  defp not_an_object(value),
    do: {:error, {:badarg, "expected an ErlangPython.Object, got: #{inspect(value)}"}}

  @doc """
  Starts a call and returns at once; `await/2` gives its result.

  When the function is a coroutine function (or returns any awaitable), it
  runs as a task on the runtime's asyncio loop, so thousands can be in
  flight while the interpreter serves other calls. Plain functions work the
  same way. Only the process that started the call can await it, and the
  call lives as long as its `ErlangPython.AsyncCall`: dropping it unawaited
  cancels the call (use `cast/3` to fire and forget).

      iex> :ok = ErlangPython.exec("import asyncio\\nasync def later(x):\\n    await asyncio.sleep(0.01)\\n    return x * 2")
      iex> call = ErlangPython.async_call(:__main__, :later, [21])
      iex> ErlangPython.await(call)
      {:ok, 42}
  """
  @spec async_call(name(), name(), list(), [option()]) ::
          ErlangPython.AsyncCall.t() | {:error, reason()}
  def async_call(module, function, args \\ [], opts \\ []) do
    with :ok <- check_name(module, "module"),
         :ok <- check_name(function, "function"),
         :ok <- check_args(args),
         {:ok, kwargs} <- fetch_kwargs(opts),
         {:ok, op} <- wrap({:call, module, function, args, kwargs}, opts) do
      Runtime.start_request(op)
    end
  end

  @doc "Waits for an `async_call/4` result (default timeout 30 s)."
  @spec await(ErlangPython.AsyncCall.t(), timeout()) :: {:ok, term()} | {:error, reason()}
  def await(call, timeout \\ @default_timeout)
  def await(%ErlangPython.AsyncCall{} = call, timeout), do: Runtime.await_request(call, timeout)
  def await({:error, _} = error, _timeout), do: error

  @doc """
  Runs a call and discards its result (failures are ignored too). Returns
  `:ok` at once.
  """
  @spec cast(name(), name(), list()) :: :ok
  def cast(module, function, args \\ []) do
    spawn(fn -> call(module, function, args, timeout: :infinity) end)
    :ok
  end

  @doc """
  A lazy `Stream` over a Python generator, iterator or async generator
  returned by `module.function(*args)`.

  Items are pulled in chunks (`chunk_size:`, default 32), so an infinite
  generator is fine with `Enum.take/2`. Halting early closes the generator
  (its `finally` runs). An exception in the middle raises
  `ErlangPython.Error` from the enumeration.

      iex> :ok = ErlangPython.exec("def naturals():\\n    n = 0\\n    while True:\\n        yield n\\n        n += 1")
      iex> ErlangPython.stream(:__main__, :naturals) |> Enum.take(5)
      [0, 1, 2, 3, 4]
  """
  @spec stream(name(), name(), list(), keyword()) :: Enumerable.t()
  def stream(module, function, args \\ [], opts \\ []) do
    ErlangPython.Stream.new(
      fn -> call(module, function, args, Keyword.put(opts, :decode, false)) end,
      opts
    )
  end

  @doc """
  Like `stream/4`, over the generator or iterable an expression evaluates to.

      iex> ErlangPython.stream_eval("(x * x for x in range(n))", %{n: 4}) |> Enum.to_list()
      [0, 1, 4, 9]
  """
  @spec stream_eval(String.t(), map(), keyword()) :: Enumerable.t()
  def stream_eval(code, locals \\ %{}, opts \\ []) do
    ErlangPython.Stream.new(fn -> eval(code, locals, Keyword.put(opts, :decode, false)) end, opts)
  end

  @doc """
  Makes an Elixir function callable from Python as `erlang.<name>`.

  `fun` takes one argument, the list of arguments Python passed (keyword
  arguments, when given, come last as one map with string keys). It runs in
  a new process; whatever it returns goes back to Python. If it raises,
  exits or is killed, Python gets an `erlang.CallbackError` (which Python
  code may catch). Python waits for the answer for 30 seconds by default
  (see `ErlangPython.Runtime.set_callback_timeout/1`), then raises
  `TimeoutError`.

      iex> ErlangPython.register_function(:add_tax, fn [amount] -> amount * 1.2 end)
      :ok
      iex> ErlangPython.eval("__import__('erlang').add_tax(100)")
      {:ok, 120.0}
      iex> ErlangPython.exec("from erlang import add_tax\\ntotal = add_tax(50)")
      :ok
      iex> ErlangPython.eval("total")
      {:ok, 60.0}

  The function may call back into Python, which may call Elixir again, and
  so on: the interpreter's thread keeps serving while it waits.
  Registering a name again replaces the earlier function.
  """
  @spec register_function(name(), (list() -> term())) :: :ok | {:error, reason()}
  def register_function(name, fun) when is_function(fun, 1) do
    with {:ok, name} <- function_name(name), do: Native.register_function(name, fun)
  end

  def register_function(_name, fun),
    do: {:error, {:badarg, "expected a function of arity 1, got: #{inspect(fun)}"}}

  @doc """
  Makes `module.function(args)` callable from Python as `erlang.<name>`.

  `function` receives the argument list, like the fun of `register_function/2`.
  """
  @spec register_function(name(), module(), atom()) :: :ok | {:error, reason()}
  def register_function(name, module, function) when is_atom(module) and is_atom(function) do
    with {:ok, name} <- function_name(name), do: Native.register_function(name, {module, function})
  end

  def register_function(_name, module, function),
    do:
      {:error,
       {:badarg, "expected a module and a function name, got: #{inspect({module, function})}"}}

  @doc """
  Removes the function registered as `name`. Python code that calls it
  afterwards gets a `NameError` naming it. Returns `:ok` either way.
  """
  @spec unregister_function(name()) :: :ok | {:error, reason()}
  def unregister_function(name) do
    with {:ok, name} <- function_name(name) do
      Native.unregister_function(name)
      :ok
    end
  end

  @doc "Names of the registered functions, sorted."
  @spec registered_functions() :: [String.t()]
  def registered_functions, do: Native.registered_functions()

  defp function_name(name) when is_atom(name) and not is_nil(name), do: {:ok, Atom.to_string(name)}

  defp function_name(name) when is_binary(name) and byte_size(name) > 0 do
    if String.valid?(name) and not String.contains?(name, <<0>>),
      do: {:ok, name},
      else: {:error, {:badarg, "function name must be valid UTF-8 without NUL bytes"}}
  end

  defp function_name(name),
    do:
      {:error,
       {:badarg, "function name must be an atom or a non-empty string, got: #{inspect(name)}"}}

  @doc """
  Interrupts the Python code running right now, whichever caller it serves.

  The running code gets an `erlang.Interrupted` exception (a
  `BaseException`, so `except Exception:` does not swallow it) at its next
  bytecode; its caller receives `{:error, %ErlangPython.Error{type:
  "Interrupted"}}`. Code blocked inside a C call (`time.sleep`, a socket
  read) is interrupted when that call returns. Returns `:ok`, or
  `{:error, :not_started}`.

  A call whose timeout expires, or whose caller exits, is interrupted the
  same way, automatically.
  """
  @spec interrupt() :: :ok | {:error, :not_started}
  def interrupt, do: if(Native.interrupt(), do: :ok, else: {:error, :not_started})

  @doc """
  Activates the Python virtual environment at `path`.

  Its site-packages (and their `.pth` files) come first on `sys.path`; the
  base interpreter's site-packages are hidden unless the venv was made with
  `--system-site-packages`, as with the venv's own `python`. The venv must
  have been created by the same Python version the NIF embeds. Activate one
  at start with `config :erlang_python, venv: path`.

  Returns `{:ok, info}` (see `venv_info/0`), `{:error, {:invalid_venv,
  path}}` when `path` holds no `pyvenv.cfg`, or `{:error,
  {:incompatible_venv, text}}` for a venv of another Python version.
  """
  @spec activate_venv(Path.t()) :: {:ok, map()} | {:error, term()}
  defdelegate activate_venv(path), to: ErlangPython.Venv, as: :activate

  @doc "Restores `sys.path` and `sys.prefix` as they were before `activate_venv/1`."
  @spec deactivate_venv() :: :ok | {:error, term()}
  defdelegate deactivate_venv(), to: ErlangPython.Venv, as: :deactivate

  @doc """
  The active venv, if any: `%{"active" => boolean, "path" => ..., "site_packages" => ...,
  "python" => "3.11.7", "prefix" => ...}`.
  """
  @spec venv_info() :: map() | {:error, term()}
  defdelegate venv_info(), to: ErlangPython.Venv, as: :info

  # Options that change the request itself: a handle instead of a decoded
  # value, and the namespace to run in.
  defp wrap(op, opts) do
    op = if Keyword.get(opts, :decode, true) == false, do: {:raw, op}, else: op

    case Keyword.get(opts, :context) do
      nil ->
        {:ok, op}

      # A context process: its namespace, found without a message.
      server when is_pid(server) ->
        with {:ok, context} <- ErlangPython.ContextServer.namespace(server),
             do: in_context(op, context)

      %ErlangPython.Context{} = context ->
        in_context(op, context)

      other ->
        {:error,
         {:badarg,
          "context must be an ErlangPython.Context or a context process, got: #{inspect(other)}"}}
    end
  end

  defp in_context(op, %ErlangPython.Context{object: object, scope: nil}),
    do: {:ok, {:context, object, op}}

  # A context process's namespace, or a process environment: pinned to one
  # thread and interruptible by its scope key.
  defp in_context(op, %ErlangPython.Context{object: object, scope: key}),
    do: {:ok, {:scoped, key, {:context, object, op}}}

  defp remote?(opts), do: is_list(opts) and Keyword.keyword?(opts) and Keyword.has_key?(opts, :node)

  # node: runs the same function on another connected node, through :erpc.
  # The remote call gets the same options minus :node; errors and timeouts
  # come back in the usual shapes.
  defp on_node(opts, function, args_for) do
    {node, opts} = Keyword.pop(opts, :node)

    cond do
      node == node() ->
        apply(__MODULE__, function, args_for.(opts))

      not is_atom(node) ->
        {:error, {:badarg, "node must be an atom, got: #{inspect(node)}"}}

      true ->
        timeout = Keyword.get(opts, :timeout, @default_timeout)
        # The remote side enforces the timeout; erpc waits a little longer.
        erpc_timeout = if timeout == :infinity, do: :infinity, else: timeout + 1_000

        try do
          :erpc.call(node, __MODULE__, function, args_for.(opts), erpc_timeout)
        catch
          :error, {:erpc, :timeout} -> {:error, :timeout}
          :error, {:erpc, :noconnection} -> {:error, {:nodedown, node}}
          kind, reason -> {:error, {:erpc, {kind, reason}}}
        end
    end
  end

  defp unwrap!({:ok, value}), do: value
  defp unwrap!(:ok), do: :ok
  defp unwrap!({:error, reason}), do: raise(Error.from_reason(reason))

  # Validation happens here so bad input gets a clear error before any work
  # is queued; the NIF checks again and never trusts it.

  defp check_name(name, _what) when is_atom(name) and not is_nil(name), do: :ok
  defp check_name(name, _what) when is_binary(name) and byte_size(name) > 0, do: :ok

  defp check_name(name, what),
    do:
      {:error,
       {:badarg, "#{what} name must be an atom or a non-empty string, got: #{inspect(name)}"}}

  defp check_args(args) when is_list(args), do: :ok
  defp check_args(args), do: {:error, {:badarg, "args must be a list, got: #{inspect(args)}"}}

  defp check_code(code) when is_binary(code), do: :ok
  defp check_code(code), do: {:error, {:badarg, "code must be a string, got: #{inspect(code)}"}}

  defp check_locals(locals) when is_map(locals), do: :ok

  defp check_locals(locals),
    do: {:error, {:badarg, "locals must be a map, got: #{inspect(locals)}"}}

  defp fetch_kwargs(opts) when is_list(opts) do
    case Keyword.get(opts, :kwargs, %{}) do
      kwargs when is_map(kwargs) ->
        {:ok, kwargs}

      kwargs when is_list(kwargs) ->
        if Keyword.keyword?(kwargs),
          do: {:ok, Map.new(kwargs)},
          else: {:error, {:badarg, "kwargs must be a map or keyword list, got: #{inspect(kwargs)}"}}

      other ->
        {:error, {:badarg, "kwargs must be a map or keyword list, got: #{inspect(other)}"}}
    end
  end

  defp fetch_kwargs(opts),
    do: {:error, {:badarg, "options must be a keyword list, got: #{inspect(opts)}"}}

  defp fetch_timeout(opts) when is_list(opts) do
    case Keyword.get(opts, :timeout, @default_timeout) do
      :infinity ->
        {:ok, :infinity}

      ms when is_integer(ms) and ms >= 0 ->
        {:ok, ms}

      other ->
        {:error,
         {:badarg, "timeout must be a non-negative integer or :infinity, got: #{inspect(other)}"}}
    end
  end

  defp fetch_timeout(opts),
    do: {:error, {:badarg, "options must be a keyword list, got: #{inspect(opts)}"}}
end
