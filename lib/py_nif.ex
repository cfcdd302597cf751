defmodule :py_nif do
  @moduledoc """
  The feature probes of erlang_python's private NIF module, so code (and
  test suites) that check for optional features find out they are absent:
  this implementation runs one interpreter, without sub-interpreters. The
  rest of that module is private to erlang_python and has no equivalent.
  """

  @doc "`false`: no sub-interpreters with their own GIL."
  @spec owngil_supported() :: false
  def owngil_supported, do: ErlangPython.Interpreter.own_gil_supported?()

  @doc "`false`: no sub-interpreters."
  @spec subinterp_supported() :: false
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

  # The descriptor primitives the original's suites call directly
  # (ErlangPython.Descriptor and ErlangPython.Native's fd_* functions).

  @doc "Two connected, non-blocking Unix stream sockets: `{ok, {Fd1, Fd2}}`."
  @spec socketpair() :: {:ok, {integer(), integer()}} | {:error, term()}
  def socketpair, do: ErlangPython.Native.fd_socketpair()

  @doc "Up to `Max` bytes from `Fd`: `{ok, Binary}` or `{error, Reason}` (`eagain` when none is ready)."
  @spec fd_read(integer(), non_neg_integer()) :: {:ok, binary()} | {:error, term()}
  def fd_read(fd, max), do: ErlangPython.Native.fd_read(fd, max)

  @doc "Writes `Data` to `Fd`: `{ok, BytesWritten}`."
  @spec fd_write(integer(), iodata()) :: {:ok, non_neg_integer()} | {:error, term()}
  def fd_write(fd, data), do: ErlangPython.Native.fd_write(fd, IO.iodata_to_binary(data))

  @doc "Closes `Fd` (taking it out of the VM's poller first if watched); the VM's own descriptors are refused."
  @spec fd_close(integer()) :: :ok | {:error, term()}
  def fd_close(fd), do: ErlangPython.Native.fd_close(fd)

  @doc "The caller receives `{select, FdRef, undefined, ready_input}` once `Fd` is readable: `{ok, FdRef}`."
  @spec fd_select_read(integer()) :: {:ok, reference()} | {:error, term()}
  def fd_select_read(fd), do: ErlangPython.Native.fd_select(fd, :read, false)

  @doc "The caller receives `{select, FdRef, undefined, ready_output}` once `Fd` is writable."
  @spec fd_select_write(integer()) :: {:ok, reference()} | {:error, term()}
  def fd_select_write(fd), do: ErlangPython.Native.fd_select(fd, :write, false)

  @doc "A duplicate of `Fd` (`py:dup_fd/1`)."
  @spec dup_fd(integer()) :: {:ok, integer()} | {:error, term()}
  def dup_fd(fd), do: ErlangPython.Native.dup_fd(fd)

  @doc "A TCP listener on 127.0.0.1 (`0`: any free port): `{ok, {Fd, Port}}`."
  @spec create_test_tcp_listener(non_neg_integer()) ::
          {:ok, {integer(), pos_integer()}} | {:error, term()}
  def create_test_tcp_listener(port), do: ErlangPython.Native.fd_tcp_listen(port)

  @doc "A TCP connection to `Host:Port`: `{ok, Fd}`."
  @spec connect_test_tcp(iodata(), pos_integer()) :: {:ok, integer()} | {:error, term()}
  def connect_test_tcp(host, port),
    do: ErlangPython.Native.fd_tcp_connect(IO.chardata_to_string(host), port)

  @doc "Accepts a connection on listener `Fd`: `{ok, ConnFd}`."
  @spec accept_test_tcp(integer()) :: {:ok, integer()} | {:error, term()}
  def accept_test_tcp(fd), do: ErlangPython.Native.fd_tcp_accept(fd)

  @doc "A non-blocking pipe: `{ok, {ReadFd, WriteFd}}`."
  @spec create_test_pipe() :: {:ok, {integer(), integer()}} | {:error, term()}
  def create_test_pipe, do: ErlangPython.Native.fd_pipe()

  @doc "Closes `Fd`: `ok` (also when already closed)."
  @spec close_test_fd(integer()) :: :ok
  def close_test_fd(fd) do
    _ = ErlangPython.Native.fd_close(fd)
    :ok
  end

  @doc "Writes all of `Data` to `Fd`: `ok` or `{error, Reason}`."
  @spec write_test_fd(integer(), iodata()) :: :ok | {:error, term()}
  def write_test_fd(fd, data) do
    case fd_write(fd, data) do
      {:ok, n} when n == byte_size(data) -> :ok
      {:ok, n} -> write_test_fd(fd, binary_part(data, n, byte_size(data) - n))
      {:error, _} = error -> error
    end
  end

  @doc "Up to `Max` bytes from `Fd`."
  @spec read_test_fd(integer(), non_neg_integer()) :: {:ok, binary()} | {:error, term()}
  def read_test_fd(fd, max), do: fd_read(fd, max)
end
