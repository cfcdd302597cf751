defmodule ErlangPython.EventQueue.TestFd do
  @moduledoc """
  Descriptors for exercising `ErlangPython.EventQueue` and reactors:
  non-blocking pipes and loopback TCP and UDP sockets, as plain descriptor
  numbers (`py_nif`'s `create_test_pipe/0`, `*_test_tcp*`, `*_test_udp*`
  and `*_test_fd` helpers are this module).

  They are the descriptor primitives of `ErlangPython.Descriptor`'s NIFs
  (`fd/io.rs`): reading, writing or closing one of the VM's own descriptors
  is refused with `{:error, :vm_descriptor}`, so a wrong number never
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
      iex> TestFd.close(1)
      {:error, :vm_descriptor}
  """

  alias ErlangPython.Native

  @type fd :: non_neg_integer()

  @doc "A non-blocking pipe: `{:ok, {read_fd, write_fd}}`."
  @spec pipe() :: {:ok, {fd(), fd()}} | {:error, atom()}
  def pipe, do: Native.fd_pipe()

  @doc "Writes all of `data`: `:ok` or `{:error, reason}` (`:eagain` when the descriptor is full)."
  @spec write(fd(), iodata()) :: :ok | {:error, atom()}
  def write(fd, data) when is_integer(fd), do: write_all(fd, IO.iodata_to_binary(data))

  defp write_all(_fd, <<>>), do: :ok

  defp write_all(fd, data) do
    case Native.fd_write(fd, data) do
      {:ok, n} -> write_all(fd, binary_part(data, n, byte_size(data) - n))
      {:error, _} = error -> error
    end
  end

  @doc "Reads up to `max` bytes: `{:ok, binary}` (`\"\"` at end of file) or `{:error, :eagain}`."
  @spec read(fd(), pos_integer()) :: {:ok, binary()} | {:error, atom()}
  def read(fd, max) when is_integer(fd) and is_integer(max) and max > 0,
    do: Native.fd_read(fd, max)

  @doc """
  Closes a descriptor: `:ok`, `{:error, :ebadf}` when it is not open, or
  `{:error, :vm_descriptor}` for one of the VM's own (left open).
  """
  @spec close(fd()) :: :ok | {:error, atom()}
  def close(fd) when is_integer(fd), do: Native.fd_close(fd)

  @doc "A TCP listener on 127.0.0.1 (`port` 0: any free one): `{:ok, {fd, port}}`."
  @spec tcp_listener(non_neg_integer()) :: {:ok, {fd(), pos_integer()}} | {:error, atom()}
  def tcp_listener(port) when port in 0..65_535, do: Native.fd_tcp_listen(port)

  @doc "A connection to `host` and `port`, made before it returns; non-blocking: `{:ok, fd}`."
  @spec tcp_connect(iodata(), pos_integer()) :: {:ok, fd()} | {:error, atom()}
  def tcp_connect(host, port) when port in 1..65_535,
    do: Native.fd_tcp_connect(IO.chardata_to_string(host), port)

  @doc "Accepts a pending connection: `{:ok, fd}`, or `{:error, :eagain}` when none is."
  @spec tcp_accept(fd()) :: {:ok, fd()} | {:error, atom()}
  def tcp_accept(listener) when is_integer(listener), do: Native.fd_tcp_accept(listener)

  @doc """
  A UDP socket bound to 127.0.0.1 (`port` 0: any free one): `{:ok, {fd, port}}`.

      iex> alias ErlangPython.EventQueue.TestFd
      iex> {:ok, {server, port}} = TestFd.udp_open(0)
      iex> {:ok, {client, _}} = TestFd.udp_open(0)
      iex> :ok = TestFd.udp_sendto(client, "ping", "127.0.0.1", port)
      iex> {:ok, {"ping", {"127.0.0.1", _client_port}}} = TestFd.udp_recvfrom(server, 64)
      iex> TestFd.udp_recvfrom(server, 64)
      {:error, :eagain}
      iex> Enum.each([server, client], &TestFd.close/1)
      :ok
  """
  @spec udp_open(non_neg_integer()) :: {:ok, {fd(), pos_integer()}} | {:error, atom()}
  def udp_open(port) when port in 0..65_535, do: Native.fd_udp_open(port)

  @doc "Sends `data` as one datagram to `host` and `port`: `:ok` or `{:error, reason}`."
  @spec udp_sendto(fd(), iodata(), iodata(), pos_integer()) :: :ok | {:error, atom()}
  def udp_sendto(fd, data, host, port) when is_integer(fd) and port in 1..65_535,
    do: Native.fd_udp_sendto(fd, IO.iodata_to_binary(data), IO.chardata_to_string(host), port)

  @doc """
  One datagram of at most `max` bytes (the rest of a longer one is dropped):
  `{:ok, {data, {host, port}}}`, or `{:error, :eagain}` when none waits.
  """
  @spec udp_recvfrom(fd(), pos_integer()) ::
          {:ok, {binary(), {String.t(), non_neg_integer()}}} | {:error, atom()}
  def udp_recvfrom(fd, max) when is_integer(fd) and is_integer(max) and max > 0,
    do: Native.fd_udp_recvfrom(fd, max)

  @doc "Allows (`true`) or forbids sending to broadcast addresses: `:ok`."
  @spec udp_broadcast(fd(), boolean()) :: :ok | {:error, atom()}
  def udp_broadcast(fd, enabled) when is_integer(fd) and is_boolean(enabled),
    do: Native.fd_udp_broadcast(fd, enabled)
end
