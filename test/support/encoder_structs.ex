defmodule ErlangPython.Test.Money do
  @moduledoc "A struct with an `ErlangPython.Encoder` implementation, for the tests."
  defstruct [:amount, :currency]
end

defimpl ErlangPython.Encoder, for: ErlangPython.Test.Money do
  def encode(%{amount: amount, currency: currency}),
    do: %{"amount" => amount, "currency" => Atom.to_string(currency)}
end

defmodule ErlangPython.Test.Wrapper do
  @moduledoc "A struct whose encoding holds another encoded struct."
  defstruct [:inner]
end

defimpl ErlangPython.Encoder, for: ErlangPython.Test.Wrapper do
  def encode(%{inner: inner}), do: {:wrapped, inner}
end
