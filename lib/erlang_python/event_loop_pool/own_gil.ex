defmodule ErlangPython.EventLoopPool.OwnGil do
  @moduledoc """
  The event-loop pool on own-GIL contexts (Python 3.12 and later).

  With `config :erlang_python, event_loop_pool_own_gil: true`, each loop of
  `ErlangPython.EventLoopPool` is an own-GIL context (`ErlangPython.OwnGil`):
  a sub-interpreter with its own GIL, on a thread of its own. Tasks of
  different processes then run in parallel, CPU-bound Python included,
  instead of taking turns on the one GIL of the main interpreter.

  What changes for a task:

    * a coroutine runs on a plain asyncio loop of its interpreter, to
      completion, so one process's tasks run one after another, in the
      order it submitted them (the main-interpreter loops interleave them);
    * the function is looked up in the interpreter's own modules, or for
      `:__main__` in the caller's *session*: a namespace of the caller's in
      that interpreter (`exec/1`), dropped when the caller exits;
    * what own-GIL contexts refuse is refused here too (handles of another
      interpreter, extension modules made for one interpreter per process).

  The original's setting `event_loop_pool_owngil` is honoured where the
  original honours it (Python 3.14 and later, see `:py_nif.owngil_supported/0`)
  and otherwise leaves the main-interpreter loops, as there. Asking for
  `event_loop_pool_own_gil: true` on a Python older than 3.12 makes tasks
  fail with `{:error, {:own_gil_unsupported, message}}`.
  """

  use GenServer

  alias ErlangPython.{OwnGil, Pool}

  @pool :event_loop_pool_own_gil
  @module :"_erlang_impl._owngil_pool"

  @doc """
  How the pool's loops run: `:own_gil` (own-GIL contexts), `:main` (the
  main interpreter's asyncio loops), or `{:error, reason}` when own-GIL
  loops are asked for on a Python that cannot have them.
  """
  @spec mode() :: :own_gil | :main | {:error, {:own_gil_unsupported, String.t()}}
  def mode do
    cond do
      Application.get_env(:erlang_python, :event_loop_pool_own_gil, false) ->
        if OwnGil.supported?(),
          do: :own_gil,
          else: {:error, {:own_gil_unsupported, OwnGil.unsupported_message()}}

      Application.get_env(:erlang_python, :event_loop_pool_owngil, false) ->
        if :py_nif.owngil_supported(), do: :own_gil, else: :main

      true ->
        :main
    end
  end

  @doc false
  # Starts `module.function(*args, **kwargs)` on own-GIL loop `index`
  # (0-based), in the caller's session there: an ErlangPython.AsyncCall.
  @spec create_task(non_neg_integer(), String.t(), String.t(), list(), map()) ::
          ErlangPython.AsyncCall.t() | {:error, term()}
  def create_task(index, module, function, args, kwargs) do
    with {:ok, context, session} <- session(index) do
      ErlangPython.async_call(@module, :run, [module, function, args, kwargs, session],
        context: context
      )
    end
  end

  @doc """
  Runs `code` (statements) in the caller's session on its own-GIL loop, so
  tasks with `:__main__` as module find what it defines.
  """
  @spec exec(non_neg_integer(), String.t()) :: :ok | {:error, term()}
  def exec(index, code) do
    with {:ok, context, session} <- session(index),
         {:ok, _} <- ErlangPython.call(@module, :exec_in, [code, session], context: context),
         do: :ok
  end

  @doc false
  # The pool's figures in the shape of the original's get_stats.
  @spec stats() :: map()
  def stats do
    sessions =
      case GenServer.whereis(__MODULE__) do
        nil -> 0
        server -> GenServer.call(server, :sessions)
      end

    %{owngil_enabled: true, active_sessions: sessions}
  end

  # The caller's context and session on loop `index`, made on first use.
  # Cached in the caller's dictionary, tied to the server that made it.
  defp session(index) do
    with {:ok, server} <- ensure_started() do
      case Process.get({__MODULE__, index}) do
        {^server, context, session} ->
          {:ok, context, session}

        _ ->
          with {:ok, context, session} <- GenServer.call(server, {:session, self(), index}) do
            Process.put({__MODULE__, index}, {server, context, session})
            {:ok, context, session}
          end
      end
    end
  end

  # The pool first (started from the caller: the server is a child of the
  # same supervisor, which cannot start a pool while it starts the server),
  # then the server that keeps the sessions.
  defp ensure_started do
    with {:ok, _contexts} <- Pool.start(@pool, ErlangPython.EventLoopPool.size(), own_gil: true) do
      case GenServer.whereis(__MODULE__) do
        nil -> start_server()
        server -> {:ok, server}
      end
    end
  end

  defp start_server do
    spec = %{
      id: __MODULE__,
      start: {GenServer, :start_link, [__MODULE__, [], [name: __MODULE__]]},
      restart: :temporary
    }

    case DynamicSupervisor.start_child(ErlangPython.PoolSupervisor, spec) do
      {:ok, server} -> {:ok, server}
      {:error, {:already_started, server}} -> {:ok, server}
      {:error, reason} -> {:error, reason}
    end
  end

  @impl true
  def init([]), do: {:ok, %{sessions: %{}, next: 1}}

  @impl true
  def handle_call({:session, pid, index}, _from, state) do
    case Pool.context_at(@pool, index + 1) do
      {:ok, context} ->
        key = {pid, index}

        case state.sessions do
          %{^key => {session, _monitor}} ->
            {:reply, {:ok, context, session}, state}

          _ ->
            monitor = Process.monitor(pid)
            session = state.next
            sessions = Map.put(state.sessions, key, {session, monitor})
            {:reply, {:ok, context, session}, %{state | sessions: sessions, next: session + 1}}
        end

      {:error, _} = error ->
        {:reply, error, state}
    end
  end

  def handle_call(:sessions, _from, state), do: {:reply, map_size(state.sessions), state}

  @impl true
  def handle_info({:DOWN, _monitor, :process, pid, _reason}, state) do
    {gone, kept} = Enum.split_with(state.sessions, fn {{owner, _}, _} -> owner == pid end)

    for {{_, index}, {session, _}} <- gone, do: forget(index, session)
    {:noreply, %{state | sessions: Map.new(kept)}}
  end

  def handle_info(_other, state), do: {:noreply, state}

  # Drops a session's namespace without waiting for it (a busy loop must
  # not hold the server up).
  defp forget(index, session) do
    with {:ok, context} <- Pool.context_at(@pool, index + 1) do
      spawn(fn -> ErlangPython.call(@module, :forget, [session], context: context) end)
    end
  end
end
