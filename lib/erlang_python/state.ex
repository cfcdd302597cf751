defmodule ErlangPython.State do
  @moduledoc """
  State shared between Elixir and Python: a key-value store in ETS.

  Elixir processes and Python code (`erlang.state_set`, `erlang.state_get`,
  `erlang.state_delete`, `erlang.state_keys`, `erlang.state_incr`,
  `erlang.state_decr`) see the same entries. Counters are atomic under
  concurrency.

      iex> ErlangPython.State.put("greeting", "hello")
      :ok
      iex> ErlangPython.eval("__import__('erlang').state_get('greeting')")
      {:ok, "hello"}
      iex> ErlangPython.State.incr("visits")
      1
      iex> ErlangPython.eval("__import__('erlang').state_incr('visits', 10)")
      {:ok, 11}

  Keys are any terms, but Python passes strings as binaries: use binary keys
  for entries both sides use. Values are converted like any other value.

  `config :erlang_python, max_state_entries: n` caps the number of entries
  (see `put/2`); the count is kept exactly under concurrent puts and
  deletes. See `guides/state-and-observability.md`.
  """
  use GenServer

  @table :erlang_python_state
  @function "__erlang_python_state__"
  # The entry count, kept in the table itself; no caller can write it.
  @size_key :"$py_state_size$"

  @doc false
  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)

  @impl true
  def init(_opts) do
    :ets.new(@table, [:named_table, :public, :set, read_concurrency: true, write_concurrency: true])
    {:ok, nil}
  end

  @doc """
  Stores `value` under `key`.

  With `config :erlang_python, max_state_entries: n` (read at each call;
  default `:infinity`), a new key past `n` entries is refused with
  `{:error, :full}`; overwriting a key is always allowed.
  """
  @spec put(term(), term()) :: :ok | {:error, :full | :reserved_key}
  def put(@size_key, _value), do: {:error, :reserved_key}

  def put(key, value) do
    if :ets.insert_new(@table, {key, value}) do
      if :ets.update_counter(@table, @size_key, 1, {@size_key, 0}) > max_entries() do
        :ets.delete(@table, key)
        :ets.update_counter(@table, @size_key, -1)
        {:error, :full}
      else
        :ok
      end
    else
      :ets.insert(@table, {key, value})
      :ok
    end
  end

  @doc "The value under `key`, or `default`."
  @spec get(term(), term()) :: term()
  def get(key, default \\ nil) do
    case fetch(key) do
      {:ok, value} -> value
      :error -> default
    end
  end

  @doc "`{:ok, value}` for `key`, or `:error` when it is absent."
  @spec fetch(term()) :: {:ok, term()} | :error
  def fetch(@size_key), do: :error

  def fetch(key) do
    case :ets.lookup(@table, key) do
      [{^key, value}] -> {:ok, value}
      [] -> :error
    end
  end

  @doc "Removes `key`."
  @spec delete(term()) :: :ok
  def delete(@size_key), do: :ok

  def delete(key) do
    # take/2 is atomic: of two concurrent deletes only one sees the row, so
    # the entry count cannot drift.
    case :ets.take(@table, key) do
      [_] -> :ets.update_counter(@table, @size_key, -1, {@size_key, 1})
      [] -> :ok
    end

    :ok
  end

  @doc "All keys, in no particular order."
  @spec keys() :: [term()]
  def keys, do: :ets.select(@table, [{{:"$1", :_}, [{:"=/=", :"$1", @size_key}], [:"$1"]}])

  @doc "Removes every entry."
  @spec clear() :: :ok
  def clear do
    :ets.delete_all_objects(@table)
    :ok
  end

  @doc """
  Atomically adds `by` to the integer under `key` (0 if absent); returns the
  new value. Raises `ArgumentError` if the value is not an integer, or if
  `key` is new and the store is full.
  """
  @spec incr(term(), integer()) :: integer()
  def incr(key, by \\ 1)

  def incr(@size_key, _by), do: raise(ArgumentError, "#{inspect(@size_key)} is reserved")

  def incr(key, by) when is_integer(by) do
    if not :ets.member(@table, key) and put_new_counter(key) == {:error, :full},
      do: raise(ArgumentError, "the state store is full (max_state_entries)")

    :ets.update_counter(@table, key, by)
  end

  @doc "Atomically subtracts `by`; returns the new value."
  @spec decr(term(), integer()) :: integer()
  def decr(key, by \\ 1) when is_integer(by), do: incr(key, -by)

  # A counter starts at 0; a concurrent creator winning the race is fine.
  defp put_new_counter(key) do
    case put_if_absent(key, 0) do
      :exists -> :ok
      result -> result
    end
  end

  defp put_if_absent(key, value) do
    if :ets.member(@table, key), do: :exists, else: put(key, value)
  end

  defp max_entries do
    case ErlangPython.Runtime.config(:max_state_entries) do
      limit when is_integer(limit) and limit >= 0 -> limit
      _ -> :infinity
    end
  end

  @doc false
  def register, do: ErlangPython.register_function(@function, __MODULE__, :from_python)

  @doc false
  def from_python(["set", key, value]) do
    with {:error, reason} <- put(key, value),
         do: raise(ArgumentError, "state_set refused: #{inspect(reason)}")
  end

  def from_python(["get", key, default]), do: get(key, default)
  def from_python(["delete", key]), do: delete(key)
  def from_python(["keys"]), do: keys()
  def from_python(["incr", key, by]), do: incr(key, by)
  def from_python(["decr", key, by]), do: decr(key, by)
end
