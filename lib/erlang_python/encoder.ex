defprotocol ErlangPython.Encoder do
  @moduledoc """
  How your structs go to Python.

  By default a struct reaches Python as any map does: a `dict` of its
  fields, with the key `"__struct__"` holding the module's name. The
  structs of the standard library that have a Python counterpart (`Date`,
  `Time`, `NaiveDateTime`, `DateTime`, `Duration`, and `Decimal` of the
  `decimal` package) convert natively, and so does `ErlangPython.Array`.
  Implement this protocol to choose another form: `encode/1` returns any
  term, which is converted by the usual rules (and encoded again if it
  holds structs of its own).

      defmodule Money do
        defstruct [:amount, :currency]
      end

      defimpl ErlangPython.Encoder, for: Money do
        def encode(%Money{amount: amount, currency: currency}),
          do: %{"amount" => amount, "currency" => Atom.to_string(currency)}
      end

  Encoding applies to the arguments, keyword arguments and locals of
  `ErlangPython.call/4`, `ErlangPython.eval/3` and
  `ErlangPython.call_method/4` (and whatever is built on them). Until a
  project implements the protocol for one of its structs, nothing is walked
  and calls cost nothing extra.

  For the other direction, Python types to Elixir terms, see
  `ErlangPython.register_decoder/2`.
  """

  @fallback_to_any true

  @doc "The term to convert in place of `struct`."
  @spec encode(t()) :: term()
  def encode(struct)
end

defimpl ErlangPython.Encoder, for: Any do
  # The fallback: the struct converts by the built-in rules.
  def encode(struct), do: struct
end
