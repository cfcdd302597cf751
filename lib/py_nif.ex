defmodule :py_nif do
  @moduledoc """
  The feature probes of erlang_python's private NIF module, so code (and
  test suites) that check for optional features find out they are absent:
  this implementation runs one interpreter, without sub-interpreters. The
  rest of that module is private to erlang_python and has no equivalent.
  """

  @doc """
  Whether the original's OWN_GIL mode would be available: it requires
  Python 3.14 (extension modules' global state in earlier versions), so
  this is `false` below 3.14 even where erlang_python's own-GIL contexts
  work (3.12+, `ErlangPython.Interpreter.own_gil_supported?/0`).
  """
  @spec owngil_supported() :: boolean()
  def owngil_supported do
    {_executable, version} = ErlangPython.Native.build_info()
    [major, minor] = version |> String.split(".") |> Enum.map(&String.to_integer/1)
    ErlangPython.Interpreter.own_gil_supported?() and {major, minor} >= {3, 14}
  end

  @doc "Whether contexts can be sub-interpreters (Python 3.12+)."
  @spec subinterp_supported() :: boolean()
  def subinterp_supported, do: ErlangPython.Interpreter.subinterpreters_supported?()

  @doc "Python's version string: `{ok, Binary}`."
  @spec version() :: {:ok, binary()} | {:error, term()}
  defdelegate version, to: :py

  # The channel primitives the original's suites call directly.

  @doc "The next channel item without waiting: `{ok, Term}`, `{error, empty}` or `{error, closed}`."
  @spec channel_try_receive(reference()) :: {:ok, term()} | {:error, :empty | :closed}
  def channel_try_receive(channel), do: ErlangPython.Channel.try_receive(channel)

  @doc "The next byte-channel chunk without waiting."
  @spec byte_channel_try_receive_bytes(reference()) :: {:ok, binary()} | {:error, :empty | :closed}
  def byte_channel_try_receive_bytes(channel), do: ErlangPython.Channel.try_receive(channel)

  @doc """
  Makes the caller the channel's waiter: it receives `channel_data_ready` or
  `channel_closed`. `ok`, or `{error, waiter_exists}`.
  """
  @spec channel_register_sync_waiter(reference()) :: :ok | {:error, :waiter_exists}
  def channel_register_sync_waiter(channel),
    do: ErlangPython.Native.channel_register_sync_waiter(channel)
end
