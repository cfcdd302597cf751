defmodule :py_semaphore do
  @moduledoc """
  Erlang facade for the semaphore bounding concurrent `py:call`s
  (`ErlangPython.Semaphore`).
  """

  alias ErlangPython.Semaphore

  @doc "Takes a slot, waiting up to `Timeout`: `ok` or `{error, max_concurrent}`."
  @spec acquire(timeout()) :: :ok | {:error, :max_concurrent}
  defdelegate acquire(timeout), to: Semaphore

  @doc "Gives back a slot."
  @spec release() :: :ok
  defdelegate release, to: Semaphore

  @doc "Slots taken now."
  @spec current() :: non_neg_integer()
  defdelegate current, to: Semaphore

  @doc "The limit."
  @spec max_concurrent() :: pos_integer()
  defdelegate max_concurrent, to: Semaphore

  @doc "Sets the limit."
  @spec set_max_concurrent(pos_integer()) :: :ok
  defdelegate set_max_concurrent(limit), to: Semaphore, as: :set_max
end
