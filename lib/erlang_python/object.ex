defmodule ErlangPython.Object do
  @moduledoc """
  A live Python object held from Elixir.

  Values with no Elixir form (class instances, modules, functions, numpy
  arrays) come back as `%ErlangPython.Object{}`; so does any value when you
  pass `decode: false`. Pass it back as an argument and Python gets the very
  same object. Use `ErlangPython.getattr/2`, `ErlangPython.call_method/4` and
  `ErlangPython.decode/1` on it; `inspect/1` shows its Python `repr`.

      iex> {:ok, counter} = ErlangPython.call(:collections, :Counter, ["hello"], decode: false)
      iex> counter.type
      "collections.Counter"
      iex> ErlangPython.call_method(counter, :most_common, [1])
      {:ok, [{"l", 2}]}

  The object lives as long as any Elixir term refers to it; once the last
  one is garbage-collected, Python's reference is dropped (at the
  interpreter's next request, with the GIL held).
  """

  @enforce_keys [:ref, :type]
  defstruct [:ref, :type]

  @type t :: %__MODULE__{ref: reference(), type: String.t()}

  defimpl Inspect do
    @limit 80

    def inspect(object, _opts) do
      case ErlangPython.Runtime.request(ErlangPython.Request.repr(object, @limit), 1_000) do
        {:ok, repr} -> "#ErlangPython.Object<#{repr}>"
        _ -> "#ErlangPython.Object<#{object.type}>"
      end
    end
  end
end
