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

defmodule ErlangPython.Encoding do
  @moduledoc false
  # Applies ErlangPython.Encoder to a request's values before it is sent.

  alias ErlangPython.Encoder

  @doc false
  @spec encode_request(tuple() | atom()) :: tuple() | atom()
  def encode_request(request) do
    if user_impls?(), do: encode_fields(request), else: request
  end

  defp encode_fields({:call, module, function, args, kwargs}),
    do: {:call, module, function, encode(args), encode(kwargs)}

  defp encode_fields({:eval, code, locals}), do: {:eval, code, encode(locals)}

  defp encode_fields({:call_method, object, name, args, kwargs}),
    do: {:call_method, object, name, encode(args), encode(kwargs)}

  defp encode_fields(request), do: request

  # Whether any struct implements the protocol (other than the fallback).
  # Consolidated protocols list their implementations; otherwise assume so.
  defp user_impls? do
    case Encoder.__protocol__(:impls) do
      {:consolidated, impls} -> Enum.any?(impls, &(&1 != Any))
      :not_consolidated -> true
    end
  end

  @doc false
  @spec encode(term()) :: term()
  def encode(%module{} = struct) do
    case Encoder.impl_for(struct) do
      Encoder.Any ->
        struct

      impl ->
        case impl.encode(struct) do
          %^module{} = same -> same
          other -> encode(other)
        end
    end
  end

  def encode(map) when is_map(map), do: Map.new(map, fn {k, v} -> {encode(k), encode(v)} end)
  def encode([head | tail]), do: [encode(head) | encode(tail)]

  def encode(tuple) when is_tuple(tuple),
    do: tuple |> Tuple.to_list() |> encode() |> List.to_tuple()

  def encode(other), do: other
end
