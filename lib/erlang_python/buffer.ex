defmodule ErlangPython.Buffer do
  @moduledoc """
  Bytes written by Elixir and read by Python as a file, or through the
  buffer protocol without a copy.

  A buffer is a reference. Elixir appends chunks as they arrive (a request
  body, say) and closes it at the end; passed to Python it is an
  `erlang.PyBuffer`: a read-only, seekable binary file (`read`, `readline`,
  iteration, `seek`, `find`) whose blocking reads release the GIL while they
  wait for more, and `memoryview(buf)` reads the bytes where Elixir wrote
  them.

      iex> {:ok, buf} = ErlangPython.Buffer.new()
      iex> :ok = ErlangPython.Buffer.write(buf, "line 1\\nline 2\\n")
      iex> :ok = ErlangPython.Buffer.close(buf)
      iex> ErlangPython.eval("buf.readlines()", %{"buf" => buf})
      {:ok, ["line 1\\n", "line 2\\n"]}

  While a `memoryview` is alive the bytes cannot move, so a write that
  would need a larger allocation answers `{:error, :pinned}`; give
  `new/1` the expected size to allocate once.
  """

  alias ErlangPython.Native

  @typedoc "A buffer: a NIF resource reference."
  @type t :: reference()

  # Above this a write's copy runs on a dirty scheduler.
  @inline_write_limit 64 * 1024

  @doc """
  Makes a buffer.

  | option  | default | meaning                                                     |
  |---------|---------|-------------------------------------------------------------|
  | `:size` | `nil`   | expected total in bytes: allocated at once, and what `read()` without a size waits for |
  """
  @spec new(keyword()) :: {:ok, t()}
  def new(opts \\ []) do
    opts = Keyword.validate!(opts, size: nil)

    size =
      case opts[:size] do
        nil -> 0
        n when is_integer(n) and n >= 0 -> n
        other -> raise ArgumentError, ":size must be a non-negative integer, got: #{inspect(other)}"
      end

    {:ok, Native.buffer_new(size)}
  end

  @doc "Appends `data`: `:ok`, `{:error, :closed}` or `{:error, :pinned}`."
  @spec write(t(), iodata()) :: :ok | {:error, :closed | :pinned}
  def write(buffer, data) when is_binary(data) do
    if byte_size(data) > @inline_write_limit,
      do: Native.buffer_write_dirty(buffer, data),
      else: Native.buffer_write(buffer, data)
  end

  def write(buffer, data) when is_list(data), do: write(buffer, IO.iodata_to_binary(data))

  @doc "Marks the end of the data; readers get what remains, then EOF."
  @spec close(t()) :: :ok
  def close(buffer), do: Native.buffer_close(buffer)

  @doc "`%{size: bytes_written, capacity: bytes_allocated, closed: boolean, views: memoryviews_alive}`."
  @spec info(t()) :: %{
          size: non_neg_integer(),
          capacity: non_neg_integer(),
          closed: boolean(),
          views: non_neg_integer()
        }
  def info(buffer), do: Native.buffer_info(buffer)
end
