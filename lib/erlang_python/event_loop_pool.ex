defmodule ErlangPython.EventLoopPool do
  @moduledoc """
  A pool of asyncio event loops that Elixir submits coroutines to.

  The runtime runs awaitable results on `ErlangEventLoop`s, each on a
  Python thread of its own (never on a BEAM scheduler). The pool has
  `size/0` of them; a process is tied to one (`loop/1`, by a hash of its
  pid), so the tasks one process submits run on one loop, in the order it
  submitted them, while different processes spread over the loops.

      iex> task = ErlangPython.EventLoopPool.create_task(:math, :sqrt, [25.0])
      iex> ErlangPython.await(task)
      {:ok, 5.0}

  A coroutine function's coroutine becomes a task on the caller's loop; a
  plain function is called on an interpreter worker and its value is the
  result. Either way the function is looked up in the caller's process
  environment (see `ErlangPython.Context.process/0`), so `:__main__` names
  defined by `exec/1` are found. `ErlangPython.await/2` gives the result; a
  caller that stops waiting (its timeout, its exit) cancels the task, so
  the coroutine's `finally` blocks run.

  The pool size is the `:event_loop_pool_size` application setting, by
  default the number of schedulers online, at least 2 (so one loop busy
  with a long computation leaves room for the others), at most 8.

  With `event_loop_pool_own_gil: true` (Python 3.12 and later) each loop is
  an own-GIL context instead, so tasks of different processes run in
  parallel: see `ErlangPython.EventLoopPool.OwnGil`.
  """

  alias ErlangPython.{Context, Request, Runtime}
  alias ErlangPython.EventLoopPool.OwnGil

  @key {__MODULE__, :loops}

  @task_options [kwargs: %{}, loop: nil]

  # Evaluated in the caller's environment, so `globals()` is its namespace.
  @start "__import__('_erlang_impl._pool', fromlist=['start']).start(" <>
           "__loop__, __module__, __function__, __args__, __kwargs__, globals())"

  @doc """
  How many loops the pool has.

      iex> ErlangPython.EventLoopPool.size() >= 2
      true
  """
  @spec size() :: pos_integer()
  def size, do: tuple_size(loops())

  @doc """
  The loop `pid` is tied to: a reference naming it, the same for every call
  from that process.

      iex> {:ok, loop} = ErlangPython.EventLoopPool.loop()
      iex> {:ok, ^loop} = ErlangPython.EventLoopPool.loop()
      iex> is_reference(loop)
      true
  """
  @spec loop(pid()) :: {:ok, reference()}
  def loop(pid \\ self()) when is_pid(pid), do: {:ok, elem(loops(), index_for(pid))}

  @doc "All the pool's loops, in order."
  @spec loops_list() :: [reference()]
  def loops_list, do: Tuple.to_list(loops())

  @doc """
  The pool's figures: `%{num_loops: n, supported: true, loops: [ref],
  owngil_enabled: boolean}`, and with own-GIL loops `active_sessions`
  (processes with a session in them).
  """
  @spec stats() :: %{
          required(:num_loops) => pos_integer(),
          required(:supported) => true,
          required(:loops) => [reference()],
          required(:owngil_enabled) => boolean(),
          optional(:active_sessions) => non_neg_integer()
        }
  def stats do
    base = %{num_loops: size(), supported: true, loops: loops_list()}

    case OwnGil.mode() do
      :own_gil -> Map.merge(base, OwnGil.stats())
      _ -> Map.put(base, :owngil_enabled, false)
    end
  end

  @doc """
  Starts `module.function(*args)` on the caller's loop; returns a call to
  give to `ErlangPython.await/2` (in this process).

  ## Options

  | option    | default     | meaning                                             |
  |-----------|-------------|-----------------------------------------------------|
  | `:kwargs` | `%{}`       | keyword arguments (a map or keyword list)           |
  | `:loop`   | the caller's | a loop reference from `loop/1` or `loops_list/0`   |
  """
  @spec create_task(ErlangPython.name(), ErlangPython.name(), list(), keyword()) ::
          ErlangPython.AsyncCall.t() | {:error, term()}
  def create_task(module, function, args \\ [], opts \\ []) do
    opts = Keyword.validate!(opts, @task_options)

    case OwnGil.mode() do
      :main ->
        request = start_request(module, function, args, opts)
        with {:ok, env} <- Context.process(), do: start(request, env)

      :own_gil ->
        own_gil_task(module, function, args, opts)

      {:error, _} = error ->
        error
    end
  end

  defp own_gil_task(module, function, args, opts) do
    unless is_list(args),
      do: raise(ArgumentError, "expected a list of arguments, got: #{inspect(args)}")

    OwnGil.create_task(
      loop_index!(opts[:loop]),
      name!(module, "module"),
      name!(function, "function"),
      args,
      Map.new(opts[:kwargs])
    )
  end

  # The request for `module.function(*args)` on the loop `opts` names
  # (checked here, in the caller).
  defp start_request(module, function, args, opts) do
    unless is_list(args),
      do: raise(ArgumentError, "expected a list of arguments, got: #{inspect(args)}")

    Request.eval(@start, %{
      "__loop__" => loop_index!(opts[:loop]),
      "__module__" => name!(module, "module"),
      "__function__" => name!(function, "function"),
      "__args__" => args,
      "__kwargs__" => Map.new(opts[:kwargs])
    })
  end

  defp start(request, env),
    do: request |> Request.with_options(%{context: env}) |> Runtime.start_request()

  @doc """
  Runs `module.function(*args)` on the caller's loop and waits for it.
  Options: those of `create_task/4`, and `:timeout` (ms, default 5000).
  """
  @spec run(ErlangPython.name(), ErlangPython.name(), list(), keyword()) ::
          {:ok, term()} | {:error, term()}
  def run(module, function, args \\ [], opts \\ []) do
    {timeout, opts} = Keyword.pop(opts, :timeout, 5000)
    module |> create_task(function, args, opts) |> ErlangPython.await(timeout)
  end

  @doc """
  Starts `module.function(*args)` on the caller's loop and returns `:ok`
  at once; nobody waits for the result (a task process holds the call).
  `{:error, reason}` only when the caller's environment cannot be made.
  """
  @spec spawn_task(ErlangPython.name(), ErlangPython.name(), list(), keyword()) ::
          :ok | {:error, term()}
  def spawn_task(module, function, args \\ [], opts \\ []) do
    opts = Keyword.validate!(opts, @task_options)

    case OwnGil.mode() do
      :main ->
        # On the caller's loop, in the caller's environment.
        request = start_request(module, function, args, opts)

        with {:ok, env} <- Context.process() do
          spawn(fn -> request |> start(env) |> ErlangPython.await(:infinity) end)
          :ok
        end

      :own_gil ->
        # Its session is the task process's own, on the caller's loop.
        loop = opts[:loop] || elem(loop(), 1)
        opts = Keyword.put(opts, :loop, loop)

        spawn(fn ->
          module |> create_task(function, args, opts) |> ErlangPython.await(:infinity)
        end)

        :ok

      {:error, _} = error ->
        error
    end
  end

  defp loops do
    case :persistent_term.get(@key, nil) do
      nil -> create_loops()
      loops -> loops
    end
  end

  # One set of references for the VM's lifetime: the loops they name are
  # started by Python on first use.
  defp create_loops do
    :global.trans({@key, self()}, fn ->
      case :persistent_term.get(@key, nil) do
        nil ->
          loops = List.to_tuple(for _ <- 1..configured_size(), do: make_ref())
          :persistent_term.put(@key, loops)
          loops

        loops ->
          loops
      end
    end)
  end

  defp configured_size do
    case Application.get_env(:erlang_python, :event_loop_pool_size) do
      n when is_integer(n) and n > 0 ->
        n

      nil ->
        System.schedulers_online() |> max(2) |> min(8)

      other ->
        raise ArgumentError,
              "expected :event_loop_pool_size to be a positive integer, got: #{inspect(other)}"
    end
  end

  defp index_for(pid), do: :erlang.phash2(pid, tuple_size(loops()))

  defp loop_index!(nil), do: index_for(self())

  defp loop_index!(ref) when is_reference(ref) do
    case Enum.find_index(loops_list(), &(&1 == ref)) do
      nil -> raise ArgumentError, "not a loop of the event-loop pool: #{inspect(ref)}"
      index -> index
    end
  end

  defp loop_index!(other),
    do: raise(ArgumentError, "expected a loop reference, got: #{inspect(other)}")

  defp name!(name, _what) when is_atom(name), do: Atom.to_string(name)
  defp name!(name, _what) when is_binary(name), do: name
  defp name!(name, _what) when is_list(name), do: List.to_string(name)

  defp name!(name, what),
    do: raise(ArgumentError, "expected the #{what} as an atom or a string, got: #{inspect(name)}")
end
