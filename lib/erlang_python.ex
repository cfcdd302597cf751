defmodule ErlangPython do
  @moduledoc """
  Call Python from Elixir, inside the BEAM.

  CPython runs embedded in the VM on dedicated OS threads. Calls never block
  a scheduler: each request is queued for an interpreter thread and the
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

  ## Errors

  What the call attempted and could not do comes back as data:

    * a Python exception as `{:error, %ErlangPython.Error{}}`;
    * an operation refused by the sandbox as
      `{:error, {:sandbox_blocked, event, message}}`;
    * any other failure (a timeout, an overloaded queue, a value that cannot
      convert) as `{:error, reason}` with one of the `t:reason/0` terms.

  The bang variants raise instead: `ErlangPython.Error` for a Python
  exception, `ErlangPython.CallError` for the other failures.

  A call the caller got wrong (an argument of the wrong type, an unknown or
  invalid option) raises `ArgumentError` at once, naming what is wrong.

  ## Options

  Each function lists the options it takes; all of them, in one table:

  #{ErlangPython.Options.table([:timeout, :kwargs, :decode, :arrays, :context, :node, :chunk_size, :max_delay])}
  """

  alias ErlangPython.{Context, Error, Native, Object, Options, Request, Runtime}

  @default_timeout Options.default_timeout()

  @typedoc "A module or function name: `:math`, `\"os.path\"`, `:__main__`."
  @type name :: atom() | String.t()

  @typedoc "Why a call failed."
  @type reason ::
          Error.t()
          | {:sandbox_blocked, event :: String.t(), message :: String.t()}
          | :timeout
          | :overloaded
          | :not_started
          | {:too_deep, pos_integer()}
          | :duplicate_key
          | {:integer_too_large, non_neg_integer()}
          | {:nodedown, node()}
          | {:erpc, term()}
          | {:context_down, pid()}
          | {:badarg, String.t()}
          | {:internal_error, String.t()}

  @typedoc "An option; each function's documentation says which it takes."
  @type option ::
          {:timeout, timeout()}
          | {:kwargs, map() | keyword()}
          | {:decode, boolean()}
          | {:arrays, boolean()}
          | {:context, Context.t() | pid()}
          | {:node, node()}
          | {:chunk_size, pos_integer()}
          | {:max_delay, non_neg_integer() | nil}

  @call_options Options.defaults([:timeout, :kwargs, :decode, :arrays, :context, :node])
  @eval_options Options.defaults([:timeout, :decode, :arrays, :context, :node])
  @exec_options Options.defaults([:timeout, :context, :node])
  # call/4's and eval/3's options when none is given, built once: building
  # the map at each call was a few percent of a small call's cost.
  @call_defaults Map.new(@call_options)
  @eval_defaults Map.new(@eval_options)
  @handle_options Options.defaults([:timeout, :decode, :arrays, :context])
  @call_method_options Options.defaults([:timeout, :kwargs, :decode, :arrays, :context])
  @decode_options Options.defaults([:timeout])
  @reload_options Options.defaults([:timeout, :context])
  @async_options Options.defaults([:kwargs, :decode, :context])
  @stream_options Options.defaults([:timeout, :kwargs, :context, :chunk_size, :max_delay])
  @stream_eval_options Options.defaults([:timeout, :context, :chunk_size, :max_delay])

  @doc """
  Calls `module.function(*args, **kwargs)`.

  `module` may be dotted (`"os.path"`) and is imported on first use;
  `:__main__` reaches names defined by `exec/2`. `function` may be dotted too
  (`"path.join"` on `:os`).

      iex> ErlangPython.call(:builtins, :sorted, [[1, 3, 2]], kwargs: [reverse: true])
      {:ok, [3, 2, 1]}
      iex> ErlangPython.call("os.path", :join, ["a", "b"])
      {:ok, "a/b"}

  ## Options

  #{Options.table(Keyword.keys(@call_options))}
  """
  @doc group: "Calling Python"
  @spec call(name(), name(), list(), [option()]) :: {:ok, term()} | {:error, reason()}
  def call(module, function, args \\ [], opts \\ []) do
    check_name!(module, "module")
    check_name!(function, "function")
    check_args!(args)
    options = if opts == [], do: @call_defaults, else: Options.validate!(opts, @call_options)

    if remote?(options),
      do: on_node(options, opts, :call, &[module, function, args, &1]),
      else: module |> Request.call(function, args, options.kwargs) |> run(options)
  end

  @doc """
  Evaluates a Python expression and returns its value.

  `locals` (a map with atom or string keys) are visible to the expression,
  including inside lambdas and comprehensions. Names defined in `__main__`
  (by `exec/2`) are visible too.

      iex> ErlangPython.eval("[n * k for n in range(3)]", %{k: 10})
      {:ok, [0, 10, 20]}

  ## Options

  #{Options.table(Keyword.keys(@eval_options))}
  """
  @doc group: "Calling Python"
  @spec eval(String.t(), map(), [option()]) :: {:ok, term()} | {:error, reason()}
  def eval(code, locals \\ %{}, opts \\ []) do
    check_code!(code)
    check_locals!(locals)
    options = if opts == [], do: @eval_defaults, else: Options.validate!(opts, @eval_options)

    if remote?(options),
      do: on_node(options, opts, :eval, &[code, locals, &1]),
      else: code |> Request.eval(locals) |> run(options)
  end

  @doc """
  Executes Python statements in `__main__`.

  Definitions persist: later `eval/3` and `call(:__main__, ...)` see them.

      iex> ErlangPython.exec("def double(x):\\n    return x * 2")
      :ok
      iex> ErlangPython.call(:__main__, :double, [21])
      {:ok, 42}

  ## Options

  #{Options.table(Keyword.keys(@exec_options))}
  """
  @doc group: "Calling Python"
  @spec exec(String.t(), [option()]) :: :ok | {:error, reason()}
  def exec(code, opts \\ []) do
    check_code!(code)
    options = Options.validate!(opts, @exec_options)

    if remote?(options),
      do: on_node(options, opts, :exec, &[code, &1]),
      else: code |> Request.exec() |> run(options)
  end

  @doc """
  Like `call/4`, but returns the value or raises (`ErlangPython.Error` for a
  Python exception, `ErlangPython.CallError` for another failure).

      iex> ErlangPython.call!(:math, :pow, [2, 10])
      1024.0
  """
  @doc group: "Calling Python"
  @spec call!(name(), name(), list(), [option()]) :: term()
  def call!(module, function, args \\ [], opts \\ []),
    do: unwrap!(call(module, function, args, opts))

  @doc """
  Like `eval/3`, but returns the value or raises (`ErlangPython.Error` for a
  Python exception, `ErlangPython.CallError` for another failure).

      iex> ErlangPython.eval!("'-'.join(['a', 'b'])")
      "a-b"
  """
  @doc group: "Calling Python"
  @spec eval!(String.t(), map(), [option()]) :: term()
  def eval!(code, locals \\ %{}, opts \\ []), do: unwrap!(eval(code, locals, opts))

  @doc """
  Like `exec/2`, but returns `:ok` or raises (`ErlangPython.Error` for a
  Python exception, `ErlangPython.CallError` for another failure).
  """
  @doc group: "Calling Python"
  @spec exec!(String.t(), [option()]) :: :ok
  def exec!(code, opts \\ []), do: unwrap!(exec(code, opts))

  @doc """
  A round trip to an interpreter thread that runs no Python code.

  Useful as a health check.

      iex> ErlangPython.ping()
      :pong
  """
  @doc group: "Calling Python"
  @spec ping(timeout()) :: :pong | {:error, reason()}
  def ping(timeout \\ @default_timeout) do
    Runtime.request(Request.ping(), Options.validate!([timeout: timeout], @decode_options).timeout)
  end

  @doc """
  Reloads the Python module `module` from its source file, so edited code
  takes effect without restarting the VM (a module not imported yet is
  imported). Functions looked up after the reload are the new ones;
  objects made before it keep their old classes, as with Python's
  `importlib.reload`.

  Returns `{:error, %ErlangPython.Error{}}` for a module that cannot be
  found or whose new source fails (a `SyntaxError`): the module then keeps
  its previous definitions. Modules are shared by every context of the
  interpreter, so one reload serves them all; `context:` matters only for
  a context with its own interpreter.

  ## Options

  #{Options.table(Keyword.keys(@reload_options))}
  """
  @doc group: "Calling Python"
  @spec reload(name(), [option()]) :: :ok | {:error, reason()}
  def reload(module, opts \\ []) do
    check_name!(module, "module")
    options = Options.validate!(opts, @reload_options)

    case call("_erlang_impl._reload", :reload, [to_string(module)],
           timeout: options.timeout,
           context: options.context
         ) do
      {:ok, nil} -> :ok
      {:error, _} = error -> error
    end
  end

  @doc """
  Reads an attribute of a Python object handle.

      iex> {:ok, path} = ErlangPython.call(:pathlib, :PurePosixPath, ["/srv/app/main.py"])
      iex> ErlangPython.getattr(path, :suffix)
      {:ok, ".py"}

  ## Options

  #{Options.table(Keyword.keys(@handle_options))}
  """
  @doc group: "Object handles"
  @spec getattr(Object.t(), name(), [option()]) :: {:ok, term()} | {:error, reason()}
  def getattr(object, name, opts \\ []) do
    check_object!(object)
    check_name!(name, "attribute")
    options = Options.validate!(opts, @handle_options)
    object |> Request.getattr(name) |> run(options)
  end

  @doc """
  Calls a method of a Python object handle.

      iex> {:ok, path} = ErlangPython.call(:pathlib, :PurePosixPath, ["/srv/app/main.py"])
      iex> ErlangPython.call_method(path, :with_suffix, [".txt"], decode: false) |> elem(1) |> ErlangPython.decode()
      {:ok, "/srv/app/main.txt"}

  ## Options

  #{Options.table(Keyword.keys(@call_method_options))}
  """
  @doc group: "Object handles"
  @spec call_method(Object.t(), name(), list(), [option()]) :: {:ok, term()} | {:error, reason()}
  def call_method(object, name, args \\ [], opts \\ []) do
    check_object!(object)
    check_name!(name, "method")
    check_args!(args)
    options = Options.validate!(opts, @call_method_options)
    object |> Request.call_method(name, args, options.kwargs) |> run(options)
  end

  @doc """
  Converts a handle's object as far as it can: containers and sequences
  recursively, pandas DataFrames and Series as a map of columns (a
  non-default index as leading columns, as `reset_index()` makes them),
  `tolist()` for numpy values, dataclasses and objects through their
  fields, anything else through its `repr`. Dates, decimals and UUIDs take
  their usual forms (see the type conversion guide). An iterator or
  generator is not consumed: it stays a handle.

  ## Options

  #{Options.table(Keyword.keys(@decode_options))}
  """
  @doc group: "Object handles"
  @spec decode(Object.t(), [option()]) :: {:ok, term()} | {:error, reason()}
  def decode(object, opts \\ []) do
    check_object!(object)
    options = Options.validate!(opts, @decode_options)
    call("_erlang_impl._decode", :decode, [object], timeout: options.timeout)
  end

  @doc """
  Converts instances of a Python type with a Python function of your own.

  `type` is the type's `"module.QualName"` (`"fractions.Fraction"`), and
  `{module, function}` names a Python function (imported on first use)
  that takes the object and returns what to convert in its place. It
  applies to every result, wherever the object is nested, and takes
  precedence over the built-in rules for that type. `nil` removes it.
  From Python, `erlang.register_decoder(type, function)` does the same.

      iex> :ok = ErlangPython.exec("def as_pair(f):\\n    return (f.numerator, f.denominator)")
      iex> ErlangPython.register_decoder("fractions.Fraction", {:__main__, :as_pair})
      :ok
      iex> ErlangPython.eval("__import__('fractions').Fraction(3, 4)")
      {:ok, {3, 4}}
      iex> ErlangPython.register_decoder("fractions.Fraction", nil)
      :ok
  """
  @doc group: "Object handles"
  @spec register_decoder(String.t(), {name(), name()} | nil) :: :ok | {:error, reason()}
  def register_decoder(type, decoder) when is_binary(type) do
    args =
      case decoder do
        nil ->
          [type, nil]

        {module, function} ->
          check_name!(module, "module")
          [type, to_string(module), function_name!(function)]

        other ->
          raise ArgumentError,
                "a decoder is {python_module, python_function} or nil, got: #{inspect(other)}"
      end

    function = if decoder == nil, do: :register_decoder, else: :register_decoder_by_name

    with {:ok, _key} <- call("_erlang_impl._types", function, args), do: :ok
  end

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

  ## Options

  #{Options.table(Keyword.keys(@async_options))}
  """
  @doc group: "Asynchronous calls and streams"
  @spec async_call(name(), name(), list(), [option()]) ::
          ErlangPython.AsyncCall.t() | {:error, reason()}
  def async_call(module, function, args \\ [], opts \\ []) do
    check_name!(module, "module")
    check_name!(function, "function")
    check_args!(args)
    options = Options.validate!(opts, @async_options)

    if isolated_context?(options) do
      module
      |> Request.call(function, args, options.kwargs)
      |> Request.with_options(%{options | context: nil})
      |> then(&ErlangPython.Isolated.start_request(options.context, &1))
    else
      async_call_embedded(module, function, args, options)
    end
  end

  defp isolated_context?(%{context: server}), do: ErlangPython.Isolated.isolated?(server)

  defp async_call_embedded(module, function, args, options) do
    with {:ok, options} <- in_context_process(options) do
      module
      |> Request.call(function, args, options.kwargs)
      |> ErlangPython.Encoding.encode_request()
      |> Request.with_options(options)
      |> Runtime.start_request()
    end
  end

  @doc """
  Waits for an `async_call/4` result (default timeout 30 s). Raises
  `ArgumentError` in a process other than the one that started the call.
  """
  @doc group: "Asynchronous calls and streams"
  @spec await(ErlangPython.AsyncCall.t() | {:error, reason()}, timeout()) ::
          {:ok, term()} | {:error, reason()}
  def await(call, timeout \\ @default_timeout)

  def await(%ErlangPython.AsyncCall{} = call, timeout),
    do: Runtime.await_request(call, Options.validate!([timeout: timeout], @decode_options).timeout)

  def await({:error, _} = error, _timeout), do: error

  @doc """
  Runs a call and discards its result (failures are ignored too). Returns
  `:ok` at once.
  """
  @doc group: "Asynchronous calls and streams"
  @spec cast(name(), name(), list()) :: :ok
  def cast(module, function, args \\ []) do
    check_name!(module, "module")
    check_name!(function, "function")
    check_args!(args)
    spawn(fn -> call(module, function, args, timeout: :infinity) end)
    :ok
  end

  @doc """
  A lazy `Stream` over a Python generator, iterator or async generator
  returned by `module.function(*args)`.

  Items are pulled in chunks, so an infinite generator is fine with
  `Enum.take/2`. Halting early closes the generator (its `finally` runs).
  An exception in the middle raises `ErlangPython.Error` from the
  enumeration, after the items produced before it. A chunk waits to fill
  up; `max_delay:` lets a slow generator's items out sooner. A chunk that
  takes longer than `timeout:` raises `ErlangPython.CallError` with reason
  `:timeout` (what `call!/4` raises for `{:error, :timeout}`;
  `ErlangPython.Streaming` sends `{:error, :timeout}`).

      iex> :ok = ErlangPython.exec("def naturals():\\n    n = 0\\n    while True:\\n        yield n\\n        n += 1")
      iex> ErlangPython.stream(:__main__, :naturals) |> Enum.take(5)
      [0, 1, 2, 3, 4]

  ## Options

  #{Options.table(Keyword.keys(@stream_options))}
  """
  @doc group: "Asynchronous calls and streams"
  @spec stream(name(), name(), list(), [option()]) :: Enumerable.t()
  def stream(module, function, args \\ [], opts \\ []) do
    check_name!(module, "module")
    check_name!(function, "function")
    check_args!(args)
    options = Options.validate!(opts, @stream_options)
    request = Request.call(module, function, args, options.kwargs)
    ErlangPython.Stream.new(fn -> run(request, Map.put(options, :decode, false)) end, options)
  end

  @doc """
  Like `stream/4`, over the generator or iterable an expression evaluates to.

      iex> ErlangPython.stream_eval("(x * x for x in range(n))", %{n: 4}) |> Enum.to_list()
      [0, 1, 4, 9]

  ## Options

  #{Options.table(Keyword.keys(@stream_eval_options))}
  """
  @doc group: "Asynchronous calls and streams"
  @spec stream_eval(String.t(), map(), [option()]) :: Enumerable.t()
  def stream_eval(code, locals \\ %{}, opts \\ []) do
    check_code!(code)
    check_locals!(locals)
    options = Options.validate!(opts, @stream_eval_options)
    request = Request.eval(code, locals)
    ErlangPython.Stream.new(fn -> run(request, Map.put(options, :decode, false)) end, options)
  end

  @doc """
  Makes an Elixir function callable from Python as `erlang.<name>`.

  `fun` takes one argument, the list of arguments Python passed (keyword
  arguments, when given, come last as one map with string keys), or two:
  the positional arguments and, apart, the keyword arguments as a map with
  string keys (`%{}` when none), so a positional dict is never mistaken for
  them:

      iex> ErlangPython.register_function(:greet, fn args, kwargs -> {args, kwargs} end)
      :ok
      iex> ErlangPython.eval("__import__('erlang').greet('Ada', greeting='hi')")
      {:ok, {["Ada"], %{"greeting" => "hi"}}}
      iex> ErlangPython.eval("__import__('erlang').greet({'a': 1})")
      {:ok, {[%{"a" => 1}], %{}}}

  It runs in
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
  @doc group: "Calling Elixir from Python"
  @spec register_function(name(), (list() -> term()) | (list(), map() -> term())) :: :ok
  def register_function(name, fun) do
    unless is_function(fun, 1) or is_function(fun, 2) do
      raise ArgumentError, "expected a function of arity 1 or 2, got: #{inspect(fun)}"
    end

    Native.register_function(function_name!(name), fun)
  end

  @doc """
  Makes `module.function(args)` callable from Python as `erlang.<name>`.

  `function` receives the argument list, like the fun of `register_function/2`.
  """
  @doc group: "Calling Elixir from Python"
  @spec register_function(name(), module(), atom()) :: :ok
  def register_function(name, module, function),
    do: register_function(name, module, function, [])

  @doc """
  `register_function/3` with options:

    * `:kwargs` - `true` calls `module.function(args, kwargs)`: the keyword
      arguments apart, as a map with string keys (`%{}` when none), like a
      fun of arity 2 given to `register_function/2`. Default `false`.
  """
  @doc group: "Calling Elixir from Python"
  @spec register_function(name(), module(), atom(), keyword()) :: :ok
  def register_function(name, module, function, opts) do
    unless is_atom(module) and is_atom(function) do
      raise ArgumentError,
            "expected a module and a function name, got: #{inspect({module, function})}"
    end

    opts = Keyword.validate!(opts, kwargs: false)
    target = if opts[:kwargs] == true, do: {module, function, :kwargs}, else: {module, function}
    Native.register_function(function_name!(name), target)
  end

  @doc """
  Removes the function registered as `name`. Python code that calls it
  afterwards gets a `NameError` naming it. Returns `:ok` either way.
  """
  @doc group: "Calling Elixir from Python"
  @spec unregister_function(name()) :: :ok
  def unregister_function(name) do
    Native.unregister_function(function_name!(name))
    :ok
  end

  @doc "Names of the registered functions, sorted."
  @doc group: "Calling Elixir from Python"
  @spec registered_functions() :: [String.t()]
  def registered_functions, do: Native.registered_functions()

  @doc """
  Interrupts the Python code running right now, whichever caller it serves,
  on the shared workers and in every own-GIL context (`ErlangPython.OwnGil`).

  The running code gets an `erlang.Interrupted` exception (a
  `BaseException`, so `except Exception:` does not swallow it) at its next
  bytecode; its caller receives `{:error, %ErlangPython.Error{type:
  "Interrupted"}}`. Code blocked inside a C call (`time.sleep`, a socket
  read) is interrupted when that call returns. Returns `:ok`, or
  `{:error, :not_started}`.

  A call whose timeout expires, or whose caller exits, is interrupted the
  same way, automatically.
  """
  @doc group: "Interrupting"
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
  @doc group: "Virtual environments"
  @spec activate_venv(Path.t()) :: {:ok, map()} | {:error, term()}
  defdelegate activate_venv(path), to: ErlangPython.Venv, as: :activate

  @doc "Restores `sys.path` and `sys.prefix` as they were before `activate_venv/1`."
  @doc group: "Virtual environments"
  @spec deactivate_venv() :: :ok | {:error, term()}
  defdelegate deactivate_venv(), to: ErlangPython.Venv, as: :deactivate

  @doc """
  The active venv, if any: `%{"active" => boolean, "path" => ..., "site_packages" => ...,
  "python" => "3.11.7", "prefix" => ...}`.
  """
  @doc group: "Virtual environments"
  @spec venv_info() :: map() | {:error, term()}
  defdelegate venv_info(), to: ErlangPython.Venv, as: :info

  @typedoc "One worker thread's figures, from `pool_stats/0`."
  @type worker_stats :: %{
          index: non_neg_integer(),
          queued: non_neg_integer(),
          busy: boolean(),
          busy_us: non_neg_integer(),
          completed: non_neg_integer(),
          caught_spinning: non_neg_integer(),
          parked_after_spin: non_neg_integer(),
          parked_slow_arrivals: non_neg_integer(),
          caught_brief_spin: non_neg_integer(),
          parked_no_free_core: non_neg_integer(),
          probes: non_neg_integer(),
          probes_caught: non_neg_integer()
        }

  @doc """
  A duplicate of a socket's (or a descriptor number's) file descriptor,
  owned by the caller: hand it to Python (`socket.socket(fileno=fd)`, or
  `ErlangPython.Reactor.handoff/3`). See `ErlangPython.Descriptor.dup/1`.
  """
  @doc group: "Descriptors and reactors"
  @spec dup_fd(ErlangPython.Descriptor.source()) ::
          {:ok, non_neg_integer()} | {:error, ErlangPython.Descriptor.reason()}
  defdelegate dup_fd(source), to: ErlangPython.Descriptor, as: :dup

  @doc """
  The worker pool's queue lengths and busy time, right now: the OS threads
  that run Python (the `:workers` configuration), not the context pools of
  `ErlangPython.Pool`.

  Requests made in a context are bound to the context's worker and wait in
  that worker's own queue; every other request waits in the shared queue,
  which whichever worker is free first takes from. So a worker stuck in a
  long call (even one whose caller has timed out) holds up only the requests
  bound to it. See the threading guide's section on several worker threads.

  | key | what |
  |---|---|
  | `:shared_queue` | requests bound to no worker, waiting for any |
  | `:workers` | one map per worker thread, in pool order |

  Each worker's map:

  | key | what |
  |---|---|
  | `:index` | its position (a context's requests always go to the same one) |
  | `:queued` | requests bound to it, waiting for it |
  | `:busy` | whether it is running a request now (until that request's reply is sent) |
  | `:busy_us` | microseconds spent running requests since start, the current one included |
  | `:completed` | requests it has run to the end (counted before the reply goes out) |
  | `:caught_spinning` | waits for a request that ended with one arriving while it spun (no wake-up) |
  | `:parked_after_spin` | waits in which it spun, nothing came, so it parked and was woken |
  | `:parked_slow_arrivals` | waits in which it parked at once: requests came too slowly for spinning to pay |
  | `:caught_brief_spin` | waits in which no core was free, but requests had been coming within microseconds (many callers at once), so it spun a few microseconds and one came |
  | `:parked_no_free_core` | waits in which it parked as no core was free (other work kept the worker off one, or one core): at once, or after such a brief spin |

  A request already queued when the worker looks is no wait and counts in
  none of the five (see the threading guide on when workers spin). Two more
  keys tell apart some of the waits that spun:

  | key | what |
  |---|---|
  | `:probes` | waits in which it spun as a probe, although requests had been coming too slowly (a parked worker can make them slow by itself) |
  | `:probes_caught` | those of them in which a request arrived while it spun |

  Before the interpreter starts, the pool is empty.

  The same figures come as events, in the shape of the `:telemetry`
  library's (and given to it when it is loaded), at an interval you
  configure: see `ErlangPython.Telemetry`.

      iex> %{shared_queue: queued, workers: [first | _]} = ErlangPython.pool_stats()
      iex> is_integer(queued) and first.index == 0 and is_boolean(first.busy)
      true
  """
  @doc group: "Worker pool"
  @spec pool_stats() :: %{shared_queue: non_neg_integer(), workers: [worker_stats()]}
  def pool_stats, do: Runtime.pool_stats() || %{shared_queue: 0, workers: []}

  # Sends a request, with the options that change it, and waits for the answer.
  defp run(request, %{context: server} = options) when is_pid(server) do
    if ErlangPython.Isolated.isolated?(server) do
      request = Request.with_options(request, %{options | context: nil})
      ErlangPython.Isolated.run(server, request, options.timeout)
    else
      run_embedded(request, options)
    end
  end

  defp run(request, options), do: run_embedded(request, options)

  defp run_embedded(request, options) do
    with {:ok, options} <- in_context_process(options) do
      request
      |> ErlangPython.Encoding.encode_request()
      |> Request.with_options(options)
      |> Runtime.request(options.timeout)
    end
  end

  # A context process (`ErlangPython.ContextServer`) given as `:context`
  # stands for its namespace, found without a message.
  defp in_context_process(%{context: server} = options) when is_pid(server) do
    with {:ok, context} <- ErlangPython.ContextServer.namespace(server),
         do: {:ok, %{options | context: context}}
  end

  defp in_context_process(options), do: {:ok, options}

  defp remote?(%{node: node}), do: node != nil and node != node()

  # node: runs the same function on another connected node, through :erpc,
  # with the same options minus :node; errors and timeouts come back in the
  # usual shapes.
  defp on_node(%{node: node, timeout: timeout}, opts, function, args_for) do
    # The remote side enforces the timeout; erpc waits a little longer.
    erpc_timeout = if timeout == :infinity, do: :infinity, else: timeout + 1_000

    try do
      :erpc.call(node, __MODULE__, function, args_for.(Keyword.delete(opts, :node)), erpc_timeout)
    catch
      :error, {:erpc, :timeout} -> {:error, :timeout}
      :error, {:erpc, :noconnection} -> {:error, {:nodedown, node}}
      kind, reason -> {:error, {:erpc, {kind, reason}}}
    end
  end

  defp unwrap!({:ok, value}), do: value
  defp unwrap!(:ok), do: :ok
  defp unwrap!({:error, reason}), do: raise(Error.from_reason(reason))

  # A bad argument raises here, before any work is queued; the NIF checks
  # again and never trusts what it is sent.

  defp check_name!(name, _what) when is_atom(name) and not is_nil(name), do: :ok

  defp check_name!(name, what) when is_binary(name) and byte_size(name) > 0 do
    check_text!(name, "#{what} name")
  end

  defp check_name!(name, what) do
    raise ArgumentError,
          "#{what} name must be an atom or a non-empty string, got: #{inspect(name)}"
  end

  defp check_code!(code) when is_binary(code), do: check_text!(code, "code")

  defp check_code!(code),
    do: raise(ArgumentError, "code must be a string, got: #{inspect(code)}")

  # What Python takes as a str: valid UTF-8 without NUL bytes.
  defp check_text!(text, what) do
    cond do
      not String.valid?(text) -> raise ArgumentError, "#{what} is not valid UTF-8"
      :binary.match(text, <<0>>) != :nomatch -> raise ArgumentError, "#{what} contains a NUL byte"
      true -> :ok
    end
  end

  defp check_args!(args) when is_list(args), do: :ok

  defp check_args!(args),
    do: raise(ArgumentError, "args must be a list, got: #{inspect(args)}")

  defp check_locals!(locals) when is_map(locals), do: :ok

  defp check_locals!(locals),
    do: raise(ArgumentError, "locals must be a map, got: #{inspect(locals)}")

  defp check_object!(%Object{}), do: :ok

  defp check_object!(value),
    do: raise(ArgumentError, "expected an ErlangPython.Object, got: #{inspect(value)}")

  defp function_name!(name) do
    check_name!(name, "function")
    if is_atom(name), do: Atom.to_string(name), else: name
  end
end
