defmodule ErlangPython.AsyncCall do
  @moduledoc """
  A Python call in flight, from `ErlangPython.async_call/4`. Await it with
  `ErlangPython.await/2`, in the process that started it.
  """
  @enforce_keys [:ref, :handle, :owner]
  defstruct [:ref, :handle, :owner]

  @type t :: %__MODULE__{ref: reference(), handle: reference() | {:isolated, pid()}, owner: pid()}
end
