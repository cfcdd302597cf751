defmodule :py_channel do
  @moduledoc """
  Erlang facade for term channels (`ErlangPython.Channel`), with the
  original erlang_python's names and return shapes.
  """

  alias ErlangPython.Channel

  @doc "An unbounded channel: `{ok, Ch}`."
  @spec new() :: {:ok, Channel.t()}
  def new, do: Channel.new()

  @doc "A channel with options `#\{max_size => Bytes}`: `{ok, Ch}`."
  @spec new(map()) :: {:ok, Channel.t()}
  def new(opts) when is_map(opts), do: Channel.new(channel_opts(opts))

  @doc false
  def channel_opts(opts) do
    Enum.flat_map(opts, fn
      {:max_size, n} when is_integer(n) and n > 0 -> [max_size: n]
      {:max_size, _} -> []
      {key, _} -> raise ArgumentError, "unknown channel option: #{inspect(key)}"
    end)
  end

  @doc "`ok`, `busy` (full) or `{error, closed}`."
  @spec send(Channel.t(), term()) :: :ok | :busy | {:error, :closed}
  defdelegate send(channel, term), to: Channel

  @doc "Closes the channel: `ok`."
  @spec close(Channel.t()) :: :ok
  defdelegate close(channel), to: Channel

  @doc "`#\{size => Bytes, max_size => Max, closed => Bool, ...}`."
  @spec info(Channel.t()) :: map()
  defdelegate info(channel), to: Channel

  @doc "The next item, waiting for it: `{ok, Term}` or `{error, closed}`."
  @spec handle_receive([Channel.t()]) :: {:ok, term()} | {:error, term()}
  def handle_receive([channel]), do: Channel.recv(channel)

  @doc "The next item without waiting: `{ok, Term}`, `{error, empty}` or `{error, closed}`."
  @spec handle_try_receive([Channel.t()]) :: {:ok, term()} | {:error, :empty | :closed}
  def handle_try_receive([channel]), do: Channel.try_receive(channel)

  @doc """
  `ok`. Python reaches channels natively (`erlang.Channel`), so there is
  nothing to register; kept so code written for the original runs.
  """
  @spec register_callbacks() :: :ok
  def register_callbacks, do: :ok
end

defmodule :py_byte_channel do
  @moduledoc """
  Erlang facade for byte channels (`ErlangPython.Channel` with `type:
  :bytes`): binaries pass as they are, without term encoding.
  """

  alias ErlangPython.Channel

  @doc "An unbounded byte channel: `{ok, Ch}`."
  @spec new() :: {:ok, Channel.t()}
  def new, do: Channel.new(type: :bytes)

  @doc "A byte channel with options `#\{max_size => Bytes}`."
  @spec new(map()) :: {:ok, Channel.t()}
  def new(opts) when is_map(opts), do: Channel.new([type: :bytes] ++ :py_channel.channel_opts(opts))

  @doc "`ok`, `busy` or `{error, closed}`."
  @spec send(Channel.t(), binary()) :: :ok | :busy | {:error, :closed}
  defdelegate send(channel, bytes), to: Channel

  @doc "Closes the channel: `ok`."
  @spec close(Channel.t()) :: :ok
  defdelegate close(channel), to: Channel

  @doc "`#\{size => Bytes, max_size => Max, closed => Bool, ...}`."
  @spec info(Channel.t()) :: map()
  defdelegate info(channel), to: Channel

  @doc "The next chunk without waiting: `{ok, Bin}`, `{error, empty}` or `{error, closed}`."
  @spec try_receive(Channel.t()) :: {:ok, binary()} | {:error, :empty | :closed}
  defdelegate try_receive(channel), to: Channel

  @doc "The next chunk, waiting for it."
  @spec recv(Channel.t()) :: {:ok, binary()} | {:error, term()}
  def recv(channel), do: Channel.recv(channel)

  @doc "The next chunk, waiting up to `Timeout` ms."
  @spec recv(Channel.t(), timeout()) :: {:ok, binary()} | {:error, term()}
  def recv(channel, timeout), do: Channel.recv(channel, timeout)

  @doc "The next chunk, waiting for it: `{ok, Bin}` or `{error, closed}`."
  @spec handle_receive_bytes([Channel.t()]) :: {:ok, binary()} | {:error, term()}
  def handle_receive_bytes([channel]), do: Channel.recv(channel)

  @doc "The next chunk without waiting."
  @spec handle_try_receive_bytes([Channel.t()]) :: {:ok, binary()} | {:error, :empty | :closed}
  def handle_try_receive_bytes([channel]), do: Channel.try_receive(channel)

  @doc "`ok`: nothing to register (see `py_channel:register_callbacks/0`)."
  @spec register_callbacks() :: :ok
  def register_callbacks, do: :ok
end

defmodule :py_buffer do
  @moduledoc """
  Erlang facade for buffers (`ErlangPython.Buffer`), with the original
  erlang_python's names and return shapes.
  """

  alias ErlangPython.Buffer

  @doc "A buffer for data of unknown length: `{ok, Buf}`."
  @spec new() :: {:ok, Buffer.t()}
  def new, do: Buffer.new()

  @doc "A buffer for `ContentLength` bytes (or `undefined`): `{ok, Buf}`."
  @spec new(non_neg_integer() | :undefined) :: {:ok, Buffer.t()}
  def new(:undefined), do: Buffer.new()
  def new(size) when is_integer(size) and size >= 0, do: Buffer.new(size: size)

  @doc "Appends `Data`: `ok` or `{error, Reason}`."
  @spec write(Buffer.t(), iodata()) :: :ok | {:error, :closed | :pinned}
  defdelegate write(buffer, data), to: Buffer

  @doc "Marks EOF: `ok`."
  @spec close(Buffer.t()) :: :ok
  defdelegate close(buffer), to: Buffer
end
