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
  """
  use GenServer

  @table :erlang_python_state
  @function "__erlang_python_state__"

  @doc false
  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)

  @impl true
  def init(_opts) do
    :ets.new(@table, [:named_table, :public, :set, read_concurrency: true, write_concurrency: true])
    {:ok, nil}
  end

  @doc "Stores `value` under `key`."
  @spec put(term(), term()) :: :ok
  def put(key, value) do
    :ets.insert(@table, {key, value})
    :ok
  end

  @doc "The value under `key`, or `default`."
  @spec get(term(), term()) :: term()
  def get(key, default \\ nil) do
    case :ets.lookup(@table, key) do
      [{^key, value}] -> value
      [] -> default
    end
  end

  @doc "Removes `key`."
  @spec delete(term()) :: :ok
  def delete(key) do
    :ets.delete(@table, key)
    :ok
  end

  @doc "All keys, in no particular order."
  @spec keys() :: [term()]
  def keys, do: :ets.select(@table, [{{:"$1", :_}, [], [:"$1"]}])

  @doc "Atomically adds `by` to the integer under `key` (0 if absent); returns the new value."
  @spec incr(term(), integer()) :: integer()
  def incr(key, by \\ 1) when is_integer(by), do: :ets.update_counter(@table, key, by, {key, 0})

  @doc "Atomically subtracts `by`; returns the new value."
  @spec decr(term(), integer()) :: integer()
  def decr(key, by \\ 1) when is_integer(by), do: incr(key, -by)

  @doc false
  def register, do: ErlangPython.register_function(@function, __MODULE__, :from_python)

  @doc false
  def from_python(["set", key, value]), do: put(key, value)
  def from_python(["get", key, default]), do: get(key, default)
  def from_python(["delete", key]), do: delete(key)
  def from_python(["keys"]), do: keys()
  def from_python(["incr", key, by]), do: incr(key, by)
  def from_python(["decr", key, by]), do: decr(key, by)
end
