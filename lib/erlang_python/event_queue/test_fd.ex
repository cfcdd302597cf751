defmodule ErlangPython.EventQueue.TestFd do
  @moduledoc """
  Descriptors for exercising `ErlangPython.EventQueue`: non-blocking pipes
  and loopback TCP sockets, as plain descriptor numbers.

  Only descriptors made here can be read, written or closed through this
  module (any other gives `{:error, :ebadf}`), so a wrong number never
  touches a descriptor the VM uses.

      iex> alias ErlangPython.EventQueue.TestFd
      iex> {:ok, {r, w}} = TestFd.pipe()
      iex> :ok = TestFd.write(w, "ping")
      iex> TestFd.read(r, 16)
      {:ok, "ping"}
      iex> TestFd.read(r, 16)
      {:error, :eagain}
      iex> :ok = TestFd.close(r)
      iex> TestFd.close(w)
      :ok
      iex> TestFd.close(w)
      {:error, :ebadf}
  """

  alias ErlangPython.Native

  @type fd :: non_neg_integer()

  @doc "A non-blocking pipe: `{:ok, {read_fd, write_fd}}`."
  @spec pipe() :: {:ok, {fd(), fd()}} | {:error, atom()}
  def pipe, do: Native.fd_test_pipe()

  @doc "Writes all of `data`: `:ok` or `{:error, reason}`."
  @spec write(fd(), binary()) :: :ok | {:error, atom()}
  def write(fd, data) when is_integer(fd) and is_binary(data), do: Native.fd_test_write(fd, data)

  @doc "Reads up to `max` bytes: `{:ok, binary}` (`\"\"` at end of file) or `{:error, :eagain}`."
  @spec read(fd(), pos_integer()) :: {:ok, binary()} | {:error, atom()}
  def read(fd, max) when is_integer(fd) and is_integer(max) and max > 0,
    do: Native.fd_test_read(fd, max)

  @doc "Closes a descriptor made here: `:ok`, or `{:error, :ebadf}`."
  @spec close(fd()) :: :ok | {:error, :ebadf}
  def close(fd) when is_integer(fd), do: Native.fd_test_close(fd)

  @doc "A TCP listener on 127.0.0.1 (`port` 0: any free one): `{:ok, {fd, port}}`."
  @spec tcp_listener(non_neg_integer()) :: {:ok, {fd(), pos_integer()}} | {:error, atom()}
  def tcp_listener(port) when port in 0..65_535, do: Native.fd_test_tcp_listener(port)

  @doc "A non-blocking connection to `host` (an IPv4 address) and `port`: `{:ok, fd}`."
  @spec tcp_connect(String.t(), pos_integer()) :: {:ok, fd()} | {:error, atom()}
  def tcp_connect(host, port) when is_binary(host) and port in 1..65_535,
    do: Native.fd_test_tcp_connect(host, port)

  @doc "Accepts a pending connection: `{:ok, fd}`, or `{:error, :eagain}` when none is."
  @spec tcp_accept(fd()) :: {:ok, fd()} | {:error, atom()}
  def tcp_accept(listener) when is_integer(listener), do: Native.fd_test_tcp_accept(listener)
end
