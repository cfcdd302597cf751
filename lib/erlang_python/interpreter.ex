defmodule ErlangPython.Interpreter do
  @moduledoc """
  Facts about the embedded interpreter, and operations on it as a whole.

      iex> {:ok, version} = ErlangPython.Interpreter.version()
      iex> String.starts_with?(version, "3.")
      true
      iex> ErlangPython.Interpreter.execution_mode()
      :worker
      iex> ErlangPython.Interpreter.subinterpreters_supported?()
      false

  erlang_python runs one CPython interpreter (with one GIL) on a pool of
  worker threads: the `:worker` execution mode. Sub-interpreters (and a GIL
  per interpreter, erlang_python's `owngil` mode) are not supported: PyO3
  refuses them.
  """

  @doc "`sys.version`: the embedded Python's version, build and compiler."
  @spec version() :: {:ok, String.t()} | {:error, ErlangPython.reason()}
  def version, do: ErlangPython.eval("__import__('sys').version")

  @doc "How Python code runs: `:worker` (shared interpreter, worker threads)."
  @spec execution_mode() :: :worker
  def execution_mode, do: :worker

  @doc "Whether contexts can be sub-interpreters: never, here."
  @spec subinterpreters_supported?() :: false
  def subinterpreters_supported?, do: false

  @doc "Whether sub-interpreters with their own GIL are available: never, here."
  @spec own_gil_supported?() :: false
  def own_gil_supported?, do: false

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
