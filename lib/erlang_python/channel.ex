defmodule ErlangPython.Channel do
  @moduledoc """
  A bounded queue from Elixir processes to Python code, read from Python
  synchronously or with `await`, without a call per item.

  A channel is a reference. Elixir sends terms (or, with `type: :bytes`,
  binaries as they are); Python wraps the reference in `erlang.Channel`
  (`erlang.ByteChannel`) and reads them in order, each exactly once:

      iex> :ok = ErlangPython.exec("import erlang")
      iex> {:ok, ch} = ErlangPython.Channel.new()
      iex> :ok = ErlangPython.Channel.send(ch, {:job, 1})
      iex> :ok = ErlangPython.Channel.close(ch)
      iex> ErlangPython.eval("list(erlang.Channel(ch))", %{"ch" => ch})
      {:ok, [{"job", 1}]}

  ## Back-pressure

  `:max_size` bounds the bytes queued (term channels count the external
  term format of each item). `send/2` never blocks: a full channel answers
  `:busy`. `put/3` waits for room instead, woken by the next read.

  ## Closing

  `close/1` (or `close()` in Python) stops new items; those already queued
  are still read, then readers see the end (`StopIteration`, `{:error,
  :closed}`) and blocked readers wake up.

  ## Reading from Elixir

  `try_receive/1` and `recv/2` read from the same queue, so an Elixir
  process can consume a channel Python writes to (`channel.send(item)`).

  See the "Channels and buffers" guide.
  """

  alias ErlangPython.Native

  @typedoc "A channel: a NIF resource reference."
  @type t :: reference()

  @doc """
  Makes a channel.

  | option      | default     | meaning                                            |
  |-------------|-------------|----------------------------------------------------|
  | `:max_size` | `:infinity` | bytes queued before `send/2` answers `:busy`       |
  | `:type`     | `:term`     | `:term` (any term) or `:bytes` (binaries, no encoding) |
  """
  @spec new(keyword()) :: {:ok, t()}
  def new(opts \\ []) do
    opts = Keyword.validate!(opts, max_size: :infinity, type: :term)

    max_size =
      case opts[:max_size] do
        :infinity ->
          0

        n when is_integer(n) and n > 0 ->
          n

        other ->
          raise ArgumentError,
                ":max_size must be a positive integer or :infinity, got: #{inspect(other)}"
      end

    type =
      case opts[:type] do
        type when type in [:term, :bytes] -> type
        other -> raise ArgumentError, ":type must be :term or :bytes, got: #{inspect(other)}"
      end

    {:ok, Native.channel_new(type, max_size)}
  end

  @doc """
  Queues `item`: `:ok`, `:busy` when the channel is full, or `{:error,
  :closed}`. Never blocks. A `:bytes` channel takes binaries only.
  """
  @spec send(t(), term()) :: :ok | :busy | {:error, :closed}
  def send(channel, item) do
    case Native.channel_send(channel, item) do
      {:error, :bytes} ->
        raise ArgumentError, "a :bytes channel carries binaries, got: #{inspect(item)}"

      result ->
        result
    end
  end

  @doc """
  Queues `item`, waiting up to `timeout` ms for room when the channel is
  full: `:ok`, `{:error, :timeout}` or `{:error, :closed}`.
  """
  @spec put(t(), term(), timeout()) :: :ok | {:error, :timeout | :closed}
  def put(channel, item, timeout \\ :infinity) do
    deadline = if timeout == :infinity, do: :infinity, else: now() + timeout
    put_until(channel, item, deadline)
  end

  defp put_until(channel, item, deadline) do
    case __MODULE__.send(channel, item) do
      :busy ->
        case Native.channel_wait_writable(channel) do
          {:ready, _id} -> put_until(channel, item, deadline)
          {:ok, id} -> await_room(channel, item, id, deadline)
        end

      other ->
        other
    end
  end

  defp await_room(channel, item, id, deadline) do
    wait = if deadline == :infinity, do: :infinity, else: max(deadline - now(), 0)

    receive do
      {:erlang_python_channel_writable, ^id} -> put_until(channel, item, deadline)
    after
      wait -> {:error, :timeout}
    end
  end

  @doc """
  The next item without waiting: `{:ok, item}`, `{:error, :empty}`, or,
  once closed and drained, `{:error, :closed}`.
  """
  @spec try_receive(t()) :: {:ok, term()} | {:error, :empty | :closed}
  def try_receive(channel), do: Native.channel_try_receive(channel)

  @doc """
  The next item, waiting up to `timeout` ms (the process waits in
  `receive`, no scheduler is blocked): `{:ok, item}`, `{:error, :closed}`
  once closed and drained, or `{:error, :timeout}`. One process at a time
  may wait on a channel (`{:error, :waiter_exists}` otherwise).
  """
  @spec recv(t(), timeout()) :: {:ok, term()} | {:error, :closed | :timeout | :waiter_exists}
  def recv(channel, timeout \\ :infinity) do
    deadline = if timeout == :infinity, do: :infinity, else: now() + timeout
    recv_until(channel, deadline)
  end

  defp recv_until(channel, deadline) do
    case Native.channel_try_receive(channel) do
      {:error, :empty} ->
        case Native.channel_register_sync_waiter(channel) do
          :ok -> await_item(channel, deadline)
          error -> error
        end

      result ->
        result
    end
  end

  defp await_item(channel, deadline) do
    wait = if deadline == :infinity, do: :infinity, else: max(deadline - now(), 0)

    receive do
      :channel_data_ready -> recv_until(channel, deadline)
      :channel_closed -> recv_until(channel, deadline)
    after
      wait ->
        Native.channel_cancel_sync_waiter(channel)
        # A notification may have raced the timeout: drop it.
        receive do
          :channel_data_ready -> :ok
          :channel_closed -> :ok
        after
          0 -> :ok
        end

        {:error, :timeout}
    end
  end

  @doc "Closes the channel (idempotent). Queued items can still be read."
  @spec close(t()) :: :ok
  def close(channel), do: Native.channel_close(channel)

  @doc """
  `%{size: bytes_queued, length: items_queued, max_size: n, closed: boolean,
  kind: :term | :bytes}` (`max_size` is 0 for an unbounded channel).
  """
  @spec info(t()) :: %{
          size: non_neg_integer(),
          length: non_neg_integer(),
          max_size: non_neg_integer(),
          closed: boolean(),
          kind: :term | :bytes
        }
  def info(channel), do: Native.channel_info(channel)

  defp now, do: System.monotonic_time(:millisecond)
end
