defmodule ErlangPython.ContextServer do
  @moduledoc """
  A context as a process: an isolated Python namespace that lives as long
  as the process, runs on one fixed worker thread, and can be interrupted.

      iex> {:ok, ctx} = ErlangPython.ContextServer.start_link()
      iex> :ok = ErlangPython.exec("total = 40", context: ctx)
      iex> ErlangPython.eval("total + n", %{n: 2}, context: ctx)
      {:ok, 42}
      iex> ErlangPython.ContextServer.stop(ctx)
      :ok

  Pass the pid as `context:` to `ErlangPython.call/4`, `eval/3`, `exec/2`,
  `getattr/3`, `call_method/4` and `stream_eval/3`. Calls go straight to
  the interpreter (the process is not a bottleneck: it only owns the
  namespace), always to the same worker thread, so C extensions with
  thread-local state (numpy, torch) see one thread. A timed-out call is
  interrupted; `interrupt/1` interrupts whatever the context runs now.

  At start the namespace gets the registered imports
  (`ErlangPython.Imports`) and then runs the preload code
  (`ErlangPython.Preload`); a failing preload fails the start.

  A context started with `start_link/1` dies with the process that started
  it. Pools of supervised contexts, restarted with a clean namespace when
  one crashes, are `ErlangPython.Pool`'s. Each process can also keep its own
  environment inside a context: `ErlangPython.Context.process/1`.

  ## Options

    * `:name` - register the process under a name.
    * `:own_gil` - `true` gives the context a Python sub-interpreter of its
      own, with its own GIL, on a thread of its own: CPU-bound Python code
      in it runs in parallel with the rest (Python 3.12 and later, see
      `ErlangPython.OwnGil` and `guides/parallelism.md`; elsewhere the start
      fails with `{:own_gil_unsupported, message}`). Default `false`.
    * `:thread_priority` - how an own-GIL context's thread is scheduled
      against the VM's: `{:nice, n}` (default `{:nice, 19}`: the BEAM comes
      first), `:normal` or `:idle`; see `ErlangPython.OwnGil`. Only with
      `own_gil: true`.
    * `:mode` - `:worker` (contexts share the main interpreter) or
      `:owngil` (the original's name for `own_gil: true`).
    * `:timeout` - milliseconds to wait for the namespace to be created
      (default `30_000`).
    * `:isolated` - `true` runs the context's Python in its own OS process
      (`ErlangPython.Isolated`, which lists the options it adds).
    * `:memory_limit` - a ceiling on what the context's requests allocate
      (`ErlangPython.Memory`): `nil` (default: counted only in the
      interpreter's total), `:infinity` (counted on its own, no ceiling) or
      a positive number of bytes. Past it, Python raises `MemoryError` and
      the call returns `{:error, %ErlangPython.Error{type: "MemoryError"}}`;
      the context and the others go on. See `guides/memory.md`. (An isolated
      context takes `:memory_limit` as a kernel limit on its process instead:
      see `ErlangPython.Isolated`.)
  """
  use GenServer

  alias ErlangPython.{Context, Imports, Memory, Options, Preload, Request}

  @table :erlang_python_contexts

  @typedoc "A context process."
  @type t :: pid()

  @doc "Starts a context linked to the caller."
  @spec start_link(keyword()) :: GenServer.on_start()
  def start_link(opts \\ [])

  def start_link(opts) when is_list(opts) do
    if opts[:isolated],
      do: ErlangPython.Isolated.start(opts, :link),
      else: start_embedded(opts, :link)
  end

  @doc "Starts a context not linked to the caller (for supervisors, use `start_link/1`)."
  @spec start(keyword()) :: GenServer.on_start()
  def start(opts \\ []) when is_list(opts) do
    if opts[:isolated],
      do: ErlangPython.Isolated.start(opts, :nolink),
      else: start_embedded(opts, :nolink)
  end

  defp start_embedded(opts, :link) do
    with {:ok, opts} <- validate(opts) do
      GenServer.start_link(__MODULE__, opts, Keyword.take(opts, [:name]))
    end
  end

  defp start_embedded(opts, :nolink) do
    with {:ok, opts} <- validate(opts) do
      GenServer.start(__MODULE__, opts, Keyword.take(opts, [:name]))
    end
  end

  @doc false
  def child_spec(opts) do
    %{id: Keyword.get(opts, :id, __MODULE__), start: {__MODULE__, :start_link, [opts]}}
  end

  @doc """
  Stops the context; its namespace is freed once no call uses it. `:ok`
  also when it was not running.
  """
  @spec stop(t()) :: :ok
  def stop(context) when is_pid(context) do
    GenServer.stop(context, :normal, 5_000)
  catch
    :exit, _ -> :ok
  end

  @doc """
  Interrupts the Python code the context runs right now (its own namespace's
  calls and its processes' environments' alike). The interrupted call
  returns `{:error, %ErlangPython.Error{type: "Interrupted"}}`. Returns
  `:ok`, or `:not_running` when the context is idle.

  `:ok` says a call was running when asked; the interrupt reaches it a
  moment later, on the interpreter thread. A call that ends first (a short
  one, such as `ErlangPython.Context.process/1` making an environment) is
  not affected, and the interrupt does not carry over to the next call:
  to stop a long call, ask once it has started.
  """
  @spec interrupt(t()) :: :ok | :not_running | {:error, {:context_down, pid()}}
  def interrupt(context) when is_pid(context) do
    if ErlangPython.Isolated.isolated?(context),
      do: ErlangPython.Isolated.interrupt(context),
      else: interrupt_embedded(context)
  end

  defp interrupt_embedded(context) do
    with {:ok, %Context{scope: key}} <- namespace(context) do
      if ErlangPython.Native.interrupt_scope(key), do: :ok, else: :not_running
    end
  end

  @doc """
  The context's namespace, as an `ErlangPython.Context` (tagged with the
  context's thread), or `{:error, {:context_down, pid}}` when the process
  is not a running context.
  """
  @spec namespace(t()) :: {:ok, Context.t()} | {:error, {:context_down, pid()}}
  def namespace(context) when is_pid(context) do
    # The registry drops a killed context's row when its monitor fires, a
    # moment after the death: a row alone does not prove the process runs.
    case :ets.lookup(@table, context) do
      [{^context, namespace}] ->
        if Process.alive?(context), do: {:ok, namespace}, else: {:error, {:context_down, context}}

      [] ->
        {:error, {:context_down, context}}
    end
  rescue
    ArgumentError -> {:error, {:context_down, context}}
  end

  @doc "Whether `pid` is a running context."
  @spec alive?(pid()) :: boolean()
  def alive?(pid) when is_pid(pid), do: match?({:ok, _}, namespace(pid))

  @impl true
  def init(opts) do
    scope = Context.new_scope()
    timeout = Keyword.fetch!(opts, :timeout)
    # Opened before the namespace is made, so that is counted too.
    memory = Memory.open_account(scope, opts[:memory_limit])

    with {:ok, interpreter} <- own_interpreter(opts[:own_gil], scope, opts[:thread_priority]),
         {:ok, object} <- create(interpreter, scope, timeout) do
      namespace = %Context{object: object, scope: scope}
      :ok = ErlangPython.Registry.register(@table, {self(), namespace}, self())
      if pool = opts[:pool], do: ErlangPython.Pool.joined(pool, self())
      {:ok, %{namespace: namespace, interpreter: interpreter, memory: memory}}
    else
      {:error, reason} ->
        ErlangPython.OwnGil.stop(scope)
        {:stop, {:context_start_failed, reason}}
    end
  end

  @impl true
  # The context's memory account (`ErlangPython.Memory`), opened on demand
  # when a ceiling is set later: `{:ok, account}` or `{:error, :not_counted}`.
  def handle_call(:memory_account, _from, %{memory: nil} = state),
    do: {:reply, {:error, :not_counted}, state}

  def handle_call(:memory_account, _from, state), do: {:reply, {:ok, state.memory}, state}

  def handle_call({:memory_limit, limit}, _from, %{memory: nil} = state) do
    memory = Memory.open_account(state.namespace.scope, limit)
    {:reply, :ok, %{state | memory: memory}}
  end

  def handle_call({:memory_limit, limit}, _from, state) do
    :ok = Memory.set_account_limit(state.memory, limit)
    {:reply, :ok, state}
  end

  @impl true
  def terminate(_reason, state) do
    :ets.delete(@table, self())
    # Ends the sub-interpreter now (dropping the last reference to it would,
    # later, when this process's heap is freed).
    if state.interpreter, do: ErlangPython.OwnGil.stop(state.namespace.scope)
    :ok
  end

  defp own_interpreter(true, scope, priority), do: ErlangPython.OwnGil.start(scope, priority)
  defp own_interpreter(_false, _scope, _priority), do: {:ok, nil}

  # An own-GIL context's namespace is made in its own interpreter, where
  # `_erlang_impl` (built on the main interpreter's `erlang` module) is not
  # available: ErlangPython.OwnGil does the same steps there.
  defp create(nil, scope, timeout), do: create(scope, timeout)
  defp create(_interpreter, scope, timeout), do: ErlangPython.OwnGil.namespace(scope, timeout)

  # The namespace is made on the context's own thread (the scope pins it),
  # with the registered imports done and the preload code run in it.
  defp create(scope, timeout) do
    "_erlang_impl._context"
    |> Request.call(:create, [Imports.modules(), Preload.code() || ""], %{})
    |> Request.with_options(%{decode: false})
    |> Request.scoped(scope)
    |> ErlangPython.Runtime.request(timeout)
  end

  defp validate(opts) when is_list(opts) do
    opts =
      Keyword.validate!(opts, [
        :name,
        :pool,
        :id,
        mode: :worker,
        own_gil: false,
        timeout: Options.default_timeout(),
        memory_limit: nil,
        thread_priority: nil
      ])

    if opts[:memory_limit], do: Memory.check_limit!(opts[:memory_limit])
    check_thread_priority!(opts)

    case {opts[:mode], opts[:own_gil]} do
      {:worker, false} ->
        {:ok, opts}

      {mode, own_gil} when mode in [:worker, :owngil] and own_gil in [true, false] ->
        own_gil_opts(mode, Keyword.put(opts, :own_gil, true))

      {mode, own_gil} when mode in [:worker, :owngil] ->
        raise ArgumentError, ":own_gil must be a boolean, got: #{inspect(own_gil)}"

      {other, _} ->
        {:error, {:unsupported_mode, other}}
    end
  end

  defp check_thread_priority!(opts) do
    own_gil? = opts[:own_gil] == true or opts[:mode] == :owngil

    case opts[:thread_priority] do
      nil ->
        :ok

      _priority when not own_gil? ->
        raise ArgumentError,
              ":thread_priority applies to own-GIL contexts (own_gil: true); " <>
                "other contexts share the runtime's worker threads"

      priority ->
        ErlangPython.OwnGil.check_thread_priority!(priority)
    end
  end

  defp own_gil_opts(mode, opts) do
    cond do
      ErlangPython.Interpreter.own_gil_supported?() -> {:ok, opts}
      # The original's answer on a Python without them.
      mode == :owngil -> {:error, {:unsupported_mode, :owngil}}
      true -> {:error, {:own_gil_unsupported, ErlangPython.OwnGil.unsupported_message()}}
    end
  end
end
