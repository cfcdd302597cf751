defmodule :py_state do
  @moduledoc """
  Erlang facade for the shared state store (`ErlangPython.State`), which
  Python reaches as `erlang.state_get`, `erlang.state_set`, ...

  With `{max_state_entries, N}` in the application environment, `store/2`
  refuses a new key past `N` entries with `{error, full}`.
  """

  alias ErlangPython.State

  @doc "Stores a value: `ok`, `{error, full}` or `{error, reserved_key}`."
  @spec store(term(), term()) :: :ok | {:error, :full | :reserved_key}
  defdelegate store(key, value), to: State, as: :put

  @doc "`{ok, Value}` or `{error, not_found}`."
  @spec fetch(term()) :: {:ok, term()} | {:error, :not_found}
  defdelegate fetch(key), to: :py, as: :state_fetch

  @doc "Removes a key (`ok` also when absent)."
  @spec remove(term()) :: :ok
  defdelegate remove(key), to: State, as: :delete

  @doc "All keys."
  @spec keys() :: [term()]
  defdelegate keys, to: State

  @doc "Removes every key."
  @spec clear() :: :ok
  defdelegate clear, to: State

  @doc "Atomically adds 1; returns the new value."
  @spec incr(term()) :: integer()
  def incr(key), do: State.incr(key)

  @doc "Atomically adds `By`."
  @spec incr(term(), integer()) :: integer()
  def incr(key, by), do: State.incr(key, by)

  @doc "Atomically subtracts 1."
  @spec decr(term()) :: integer()
  def decr(key), do: State.decr(key)

  @doc "Atomically subtracts `By`."
  @spec decr(term(), integer()) :: integer()
  def decr(key, by), do: State.decr(key, by)
end
