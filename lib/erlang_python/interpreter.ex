defmodule ErlangPython.Interpreter do
  @moduledoc """
  Facts about the embedded interpreter, and operations on it as a whole.

      iex> {:ok, version} = ErlangPython.Interpreter.version()
      iex> String.starts_with?(version, "3.")
      true
      iex> ErlangPython.Interpreter.execution_mode() in [:worker, :free_threaded]
      true
      iex> ErlangPython.Interpreter.subinterpreters_supported?() == ErlangPython.OwnGil.supported?()
      true

  erlang_python runs one main CPython interpreter on a pool of worker
  threads: the `:worker` execution mode (`:free_threaded` on a CPython built
  without a GIL). On Python 3.12 and later a context can also have a
  sub-interpreter with its own GIL (`own_gil: true`, see
  `ErlangPython.OwnGil`).
  """

  @doc "`sys.version`: the embedded Python's version, build and compiler."
  @spec version() :: {:ok, String.t()} | {:error, ErlangPython.reason()}
  def version, do: ErlangPython.eval("__import__('sys').version")

  @doc """
  How Python code runs: `:worker` (the main interpreter, on worker threads,
  one GIL) or `:free_threaded` (a CPython built without a GIL; detected,
  but none is packaged for the machines erlang_python is tested on).
  """
  @spec execution_mode() :: :worker | :free_threaded
  def execution_mode,
    do: if(ErlangPython.OwnGil.free_threaded?(), do: :free_threaded, else: :worker)

  @doc "Whether contexts can be sub-interpreters (Python 3.12+; always with their own GIL)."
  @spec subinterpreters_supported?() :: boolean()
  def subinterpreters_supported?, do: ErlangPython.OwnGil.supported?()

  @doc "Whether contexts can have their own GIL (`own_gil: true`): Python 3.12+."
  @spec own_gil_supported?() :: boolean()
  def own_gil_supported?, do: ErlangPython.OwnGil.supported?()

  @doc """
  Reloads `module` (`importlib.reload`) if it is imported; `:ok` also when
  it is not (nothing to reload). Objects made from the old module keep its
  old code, as with any reload.
  """
  @spec reload(ErlangPython.name() | charlist()) :: :ok | {:error, ErlangPython.reason()}
  def reload(module) when is_list(module), do: reload(List.to_string(module))

  def reload(module) when is_atom(module) or is_binary(module) do
    with {:ok, _reloaded?} <- ErlangPython.call("_erlang_impl._imports", :reload, [module]),
         do: :ok
  end

  @doc """
  Duplicates file descriptor `fd` (`os.dup`): the copy can be handed to
  Python code or a port independently of the original.
  """
  @spec dup_fd(non_neg_integer()) :: {:ok, non_neg_integer()} | {:error, ErlangPython.reason()}
  def dup_fd(fd) when is_integer(fd) and fd >= 0, do: ErlangPython.call(:os, :dup, [fd])

  def dup_fd(fd),
    do: {:error, {:badarg, "fd must be a non-negative integer, got: #{inspect(fd)}"}}
end
