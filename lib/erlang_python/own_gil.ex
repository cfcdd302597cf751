defmodule ErlangPython.OwnGil do
  @moduledoc """
  Contexts on a sub-interpreter with its own GIL (Python 3.12 and later).

  Every context normally shares the main interpreter and its one GIL, so
  two CPU-bound Python calls take turns however many cores the BEAM has. A
  context started with `own_gil: true` gets a Python sub-interpreter of its
  own (PEP 684), with its own GIL, served by a thread of its own: CPU-bound
  code in it runs in parallel with the main interpreter and with every
  other own-GIL context.

      {:ok, ctx} = ErlangPython.ContextServer.start_link(own_gil: true)
      {:ok, 4.0} = ErlangPython.call(:math, :sqrt, [16], context: ctx)

  Pools take the option too: `ErlangPython.Pool.start(:cpu, 2, own_gil: true)`.
  `supported?/0` says whether this Python can; on an older one the start
  fails with `{:own_gil_unsupported, message}`.

  ## What differs inside

  An interpreter of its own means modules of its own: nothing imported in
  the main interpreter (or set up by `ErlangPython.Venv`, imports,
  preload) is shared, though `sys.path` starts as the main interpreter's
  was when the context started. Objects never cross interpreters:

    * a handle (`ErlangPython.Object`) made in one interpreter is refused
      in another, with a `TypeError` that says so;
    * the `erlang` module there is the interpreter's own (a C-API module,
      see `native/erlang_python_nif/src/subinterp_module.rs`): `erlang.call`
      and registered functions as attributes (callbacks into Elixir, which
      may call back into the same context), `erlang.send`, `erlang.self()`,
      `erlang.Pid` (its own class), the exceptions and `is_sandboxed()`;
    * references, funs and ports have no Python form there (`erlang.Term`
      lives in the main interpreter): they are refused on the way in, with
      a `TypeError`;
    * output and logging are routed into Elixir as in the main interpreter
      (`print` goes to the caller's group leader); streams over generators
      and async generators work (the latter on a plain asyncio loop of the
      interpreter); channels, buffers and coroutines awaited for you by a
      plain call are main-interpreter features (`asyncio.run` works inside,
      and `ErlangPython.EventLoopPool.OwnGil` runs coroutines on own-GIL
      loops);
    * extension modules written for one interpreter per process (numpy,
      pandas and most of the scientific stack today) refuse to import,
      with an `ImportError` that says so: use a context without `own_gil`.

  Calls, `eval`, `exec`, streams, timeouts (the running code is
  interrupted), `ErlangPython.ContextServer.interrupt/1` and
  `ErlangPython.interrupt/0` work as in any context; each context's queue
  holds at most `max_queue` requests (`{:error, :overloaded}` beyond), and
  the
  sandbox holds: the kernel filter on the context's thread, the audit hook
  and the guarded C functions cover every interpreter.

  ## Priority against the schedulers

  A context's thread lives in the VM's process, so the kernel weighs it
  against the BEAM's schedulers. `:thread_priority` (a context or pool
  option) says how:

    * `{:nice, n}` - `n` (1 to 19) steps nicer than the schedulers. The
      default is `{:nice, 19}`: the VM's threads come first, and Python
      gets every CPU the VM leaves, at full speed while the VM is idle;
    * `:normal` - the schedulers' own priority: Python competes with the
      VM as an equal (then start the VM with `+sbwt none +sbwtdcpu none
      +sbwtdio none`, see below);
    * `:idle` - Linux's `SCHED_IDLE`: even lower, and any thread that wakes
      on the CPU preempts it at once. The kernel applies that rule across
      processes too (a waking thread of any other process preempts it, and
      is placed on its CPU by preference), so on a busy machine it gets
      less than its process's fair share. For machines that run little
      but the VM.

  Threads Python starts from the context inherit it. Outside Linux it is
  accepted and does nothing.

  Why not `:normal` by default: with the VM's default scheduler
  busy-waiting (`+sbwt`), a scheduler that runs out of work spins, calling
  `sched_yield()` every 100 spins, and looks at its timers only after the
  spin. With a CPU-bound thread of the same priority on its CPU, each yield
  hands that thread the CPU until the next scheduler tick, so the spin
  takes ~34 ticks: 5 ms timers fired 135 ms late while two contexts spun
  on two cores (Linux 6.18, traced; figures in `guides/parallelism.md`).
  Against a much nicer thread the scheduler stays first in line through
  its yields. The cost: while the VM is busy (or another thread of its
  process or cgroup), CPU-bound work in own-GIL contexts waits, down to a
  standstill while the VM uses every core.

  `config :erlang_python, own_gil_thread_priority: value` sets the default
  for every context that does not pass the option. The older
  `config :erlang_python, own_gil_nice: n` (0 to 19) is still honoured when
  that is not set: `0` means `:normal`, `n` means `{:nice, n}`.
  """

  alias ErlangPython.{Native, Request, Runtime}

  @doc """
  Whether contexts can have their own GIL: Python 3.12 or later.
  """
  @spec supported?() :: boolean()
  def supported?, do: Native.own_gil_support() |> elem(0)

  @doc "Whether the embedded Python is a free-threaded build (no GIL at all)."
  @spec free_threaded?() :: boolean()
  def free_threaded?, do: Native.own_gil_support() |> elem(1)

  @doc false
  def unsupported_message do
    {_executable, version} = Native.build_info()
    "own-GIL contexts need Python 3.12 or later; erlang_python runs on Python #{version}"
  end

  @doc """
  `%{threads: n, interpreters: m}`: own-GIL context threads alive and
  sub-interpreters not yet ended (both drop back once contexts stop).
  """
  @spec running() :: %{threads: non_neg_integer(), interpreters: non_neg_integer()}
  def running do
    {threads, interpreters} = Native.own_gil_running()
    %{threads: threads, interpreters: interpreters}
  end

  @typedoc "How an own-GIL context's thread is scheduled (see the moduledoc)."
  @type thread_priority :: :idle | :normal | {:nice, 1..19}

  @doc false
  # Raises ArgumentError unless `value` is a thread priority; `setting` names
  # where it came from in the message.
  @spec check_thread_priority!(term(), String.t()) :: thread_priority()
  def check_thread_priority!(value, setting \\ ":thread_priority") do
    case value do
      priority when priority in [:idle, :normal] ->
        priority

      {:nice, n} when n in 1..19 ->
        value

      other ->
        raise ArgumentError,
              "#{setting} must be :idle, :normal or {:nice, n} with n from 1 to 19, got: " <>
                inspect(other)
    end
  end

  @doc false
  # The priority of a context started without `:thread_priority`.
  @spec default_thread_priority() :: thread_priority()
  def default_thread_priority do
    case Application.fetch_env(:erlang_python, :own_gil_thread_priority) do
      {:ok, value} ->
        check_thread_priority!(value, "config :erlang_python, :own_gil_thread_priority")

      :error ->
        case Application.get_env(:erlang_python, :own_gil_nice) do
          nil ->
            {:nice, 19}

          0 ->
            :normal

          n when n in 1..19 ->
            {:nice, n}

          other ->
            raise ArgumentError,
                  "config :erlang_python, :own_gil_nice must be an integer from 0 to 19, got: " <>
                    inspect(other)
        end
    end
  end

  @doc false
  # Starts the thread and interpreter of scope `scope`, its sys.path the main
  # interpreter's now (the package's priv/, extra paths, an activated venv),
  # the thread scheduled as `priority` says (nil: the configured default).
  @spec start(pos_integer(), thread_priority() | nil) :: {:ok, reference()} | {:error, term()}
  def start(scope, priority \\ nil) do
    with {:ok, priority} <- resolve_priority(priority),
         {:ok, paths} <-
           ErlangPython.eval("[p for p in __import__('sys').path if isinstance(p, str)]"),
         {:ok, interpreter} <- Native.own_gil_start(scope, paths, priority) do
      {:ok, interpreter}
    else
      {:error, reason} when is_binary(reason) -> {:error, {:own_gil_start_failed, reason}}
      {:error, reason} -> {:error, reason}
    end
  end

  # A bad configured default refuses the context, with the message that names
  # the setting.
  defp resolve_priority(nil) do
    {:ok, default_thread_priority()}
  rescue
    error in ArgumentError -> {:error, Exception.message(error)}
  end

  defp resolve_priority(priority), do: {:ok, priority}

  @doc false
  @spec stop(pos_integer()) :: boolean()
  def stop(scope), do: Native.own_gil_stop(scope)

  # Once per interpreter: `_erlang_impl` (the sandbox's Python-side
  # wrappers, which name os.popen, os.spawn* and the like in refusals, and
  # its subprocess-free ctypes.util.find_library: patched in each
  # interpreter, as modules are each interpreter's own), the asyncio policy
  # back to the default (the Erlang event loop lives in the main
  # interpreter), and output and logging routed into Elixir. Then the steps
  # of `_erlang_impl._context.create` there: the registered imports (a
  # failing one is left for call time), a fresh namespace, the preload code
  # run in it.
  @create """
  import asyncio
  import _erlang_impl
  import _erlang_impl._io
  asyncio.set_event_loop_policy(None)
  _erlang_impl._io.install()

  def __erlang_own_gil_namespace__(imports, preload):
      import builtins, importlib
      for module in imports:
          try:
              importlib.import_module(module)
          except Exception:
              pass
      import erlang
      namespace = {"__name__": "__erlang_context__", "__builtins__": builtins, "erlang": erlang}
      if preload:
          exec(compile(preload, "<preload>", "exec"), namespace)
      return namespace
  """

  @doc false
  # The context's namespace, made in its own interpreter.
  @spec namespace(pos_integer(), timeout()) :: {:ok, ErlangPython.Object.t()} | {:error, term()}
  def namespace(scope, timeout) do
    with :ok <- @create |> Request.exec() |> Request.scoped(scope) |> Runtime.request(timeout) do
      "__main__"
      |> Request.call(
        :__erlang_own_gil_namespace__,
        [ErlangPython.Imports.modules(), ErlangPython.Preload.code() || ""],
        %{}
      )
      |> Request.with_options(%{decode: false})
      |> Request.scoped(scope)
      |> Runtime.request(timeout)
    end
  end
end
