defmodule ErlangPython.Context do
  @moduledoc """
  An isolated Python namespace.

  Pass `context: ctx` to `ErlangPython.call/4` (with `:__main__`),
  `eval/3`, `exec/2` and `stream_eval/3`: names defined in one context are
  invisible to others and to `__main__`. Modules stay shared, since Python
  has one `sys.modules`. The `erlang` module is bound in every context, so
  code can call `erlang.call(...)` without importing it.

      iex> {:ok, a} = ErlangPython.Context.new()
      iex> {:ok, b} = ErlangPython.Context.new()
      iex> ErlangPython.exec("x = 'in a'", context: a)
      :ok
      iex> ErlangPython.eval("x", %{}, context: a)
      {:ok, "in a"}
      iex> {:error, %ErlangPython.Error{type: "NameError"}} = ErlangPython.eval("x", %{}, context: b)

  A context is freed when its last reference is garbage-collected. For
  tests, `use ErlangPython.Case` gives each test its own.

  ## Process-bound environments

  `process/0` is the calling process's own environment: created on first
  use, kept in the process dictionary, freed when the process exits. Every
  process that uses it sees only its own names, which is how the `:py`
  facade runs code by default (as erlang_python does):

      iex> {:ok, mine} = ErlangPython.Context.process()
      iex> :ok = ErlangPython.exec("owner = 'me'", context: mine)
      iex> Task.async(fn ->
      ...>   {:ok, theirs} = ErlangPython.Context.process()
      ...>   ErlangPython.eval("owner", %{}, context: theirs)
      ...> end) |> Task.await() |> elem(1) |> Map.get(:type)
      "NameError"
      iex> ErlangPython.Context.process() == {:ok, mine}
      true

  `process/1` is the calling process's environment *in a context process*
  (`ErlangPython.ContextServer`): a copy of that context's namespace made on
  first use, so the context's preload and definitions are visible while the
  process's own changes stay its own; it runs on the context's thread.
  See `guides/contexts.md`.
  """

  @enforce_keys [:object]
  defstruct [:object, scope: nil]

  @typedoc """
  `object` is the namespace (a Python `dict`); `scope`, when set, pins its
  requests to one worker thread and lets them be interrupted together
  (`ErlangPython.ContextServer.interrupt/1`).
  """
  @type t :: %__MODULE__{object: ErlangPython.Object.t(), scope: pos_integer() | nil}

  @module "_erlang_impl._context"

  @doc "A new, empty namespace."
  @spec new() :: {:ok, t()} | {:error, ErlangPython.reason()}
  def new do
    with {:ok, object} <- ErlangPython.call(@module, :new, [], decode: false) do
      {:ok, %__MODULE__{object: object}}
    end
  end

  @doc """
  The calling process's own environment, created on first use.

  It lives in the process dictionary and is freed when the process exits;
  its requests are pinned to one worker thread, like a context process's.
  """
  @spec process() :: {:ok, t()} | {:error, ErlangPython.reason()}
  def process do
    case Process.get({__MODULE__, :process}) do
      %__MODULE__{} = context ->
        {:ok, context}

      nil ->
        with {:ok, object} <- ErlangPython.call(@module, :new, [], decode: false) do
          context = %__MODULE__{object: object, scope: new_scope()}
          Process.put({__MODULE__, :process}, context)
          {:ok, context}
        end
    end
  end

  @doc """
  The calling process's own environment in the context process `server`
  (an `ErlangPython.ContextServer`), created on first use as a copy of
  that context's namespace.
  """
  @spec process(pid()) :: {:ok, t()} | {:error, ErlangPython.reason()}
  def process(server) when is_pid(server) do
    case Process.get({__MODULE__, server}) do
      %__MODULE__{} = context ->
        {:ok, context}

      nil ->
        with {:ok, %__MODULE__{} = shared} <- ErlangPython.ContextServer.namespace(server),
             {:ok, object} <-
               copy(shared) do
          forget_dead_servers()
          context = %__MODULE__{object: object, scope: shared.scope}
          Process.put({__MODULE__, server}, context)
          {:ok, context}
        end
    end
  end

  # A shallow copy of the namespace, made in the context's own interpreter
  # (`dict` exists in every interpreter; `_erlang_impl` in the main one only).
  defp copy(%__MODULE__{object: object} = shared),
    do: ErlangPython.call(:builtins, :dict, [object], decode: false, context: shared)

  @doc false
  # A fresh scope key: requests tagged with it run on worker `key rem workers`
  # and can be interrupted by key. Keys increase, so consecutive contexts
  # spread over the workers round-robin.
  @spec new_scope() :: pos_integer()
  def new_scope, do: :erlang.unique_integer([:positive, :monotonic])

  # Environments in context processes that have exited are unreachable: drop
  # them so a long-lived process that used many short-lived contexts does
  # not keep their namespaces alive.
  defp forget_dead_servers do
    for {{__MODULE__, server} = key, _context} <- Process.get(),
        is_pid(server) and not Process.alive?(server) do
      Process.delete(key)
    end

    :ok
  end
end
