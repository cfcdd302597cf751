defmodule ErlangPython.Descriptor do
  @moduledoc """
  File descriptors handed from Erlang to Python.

  Erlang owns its sockets (a `:gen_tcp`/`:gen_udp` port, a `:socket`). To
  let Python serve one, give Python a *duplicate* of its descriptor: each
  side then closes its own copy when it is done, and the connection ends
  when both are closed.

      {:ok, listen} = :gen_tcp.listen(0, [:binary, active: false])
      {:ok, fd} = ErlangPython.Descriptor.dup(listen)
      true = is_integer(fd)
      :ok = ErlangPython.Descriptor.close(fd)
      :ok = :gen_tcp.close(listen)

  A duplicate is what `ErlangPython.Reactor.handoff/3` and Python code
  (`socket.socket(fileno=fd)`) take ownership of. The VM's own descriptors
  (0-2, its pollsets, what it had open when Python started) can be
  duplicated but never closed through this module, as the sandbox refuses
  to close them from Python.
  """

  alias ErlangPython.Native

  @typedoc "A descriptor number, or a socket whose descriptor is meant."
  @type source :: non_neg_integer() | port() | :socket.socket()

  @typedoc "Why a descriptor operation failed: a POSIX name (`:ebadf`, ...) or errno."
  @type reason :: atom() | integer()

  @doc """
  A new descriptor for what `source` is open on (close-on-exec), owned by
  the caller: `{:ok, fd}`, or `{:error, :ebadf}` when `source` is closed.

  `source` is a descriptor number, a `:gen_tcp`/`:gen_udp`/`:gen_sctp`
  socket, or a `:socket` socket. Anything else raises `ArgumentError`.

      iex> {:ok, socket} = :gen_udp.open(0)
      iex> {:ok, fd} = ErlangPython.Descriptor.dup(socket)
      iex> ErlangPython.Descriptor.close(fd)
      :ok
      iex> :gen_udp.close(socket)
      iex> ErlangPython.Descriptor.dup(socket)
      {:error, :ebadf}
  """
  @spec dup(source()) :: {:ok, non_neg_integer()} | {:error, reason()}
  def dup(source) do
    with {:ok, fd} <- fd_of(source), do: Native.dup_fd(fd)
  end

  @doc """
  The descriptor number of `source` (not a copy: the socket still owns it).

      iex> ErlangPython.Descriptor.fd_of(7)
      {:ok, 7}
  """
  @spec fd_of(source()) :: {:ok, non_neg_integer()} | {:error, reason()}
  def fd_of(fd) when is_integer(fd) and fd >= 0, do: {:ok, fd}
  def fd_of(fd) when is_integer(fd), do: {:error, :ebadf}

  def fd_of(port) when is_port(port) do
    case :inet.getfd(port) do
      {:ok, fd} -> {:ok, fd}
      # A closed port: the same answer as for a closed descriptor.
      {:error, _} -> {:error, :ebadf}
    end
  end

  def fd_of({:"$socket", _} = socket) do
    case :socket.getopt(socket, {:otp, :fd}) do
      {:ok, fd} when is_integer(fd) and fd >= 0 -> {:ok, fd}
      {:ok, _} -> {:error, :ebadf}
      {:error, :closed} -> {:error, :ebadf}
      {:error, reason} -> {:error, reason}
    end
  end

  def fd_of(other) do
    raise ArgumentError,
          "expected a file descriptor (a non-negative integer), a :gen_tcp/:gen_udp socket " <>
            "or a :socket socket, got: #{inspect(other)}"
  end

  @doc """
  Closes descriptor `fd`: `:ok`, `{:error, :ebadf}` when it is not open, or
  `{:error, :vm_descriptor}` for one of the VM's own descriptors.

      iex> ErlangPython.Descriptor.close(0)
      {:error, :vm_descriptor}
  """
  @spec close(non_neg_integer()) :: :ok | {:error, reason()}
  def close(fd) when is_integer(fd) and fd >= 0, do: Native.fd_close(fd)
  def close(fd) when is_integer(fd), do: {:error, :ebadf}

  def close(other),
    do: raise(ArgumentError, "expected a file descriptor number, got: #{inspect(other)}")
end
