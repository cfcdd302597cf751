defmodule ErlangPython.Encoding do
  @moduledoc false
  # Applies ErlangPython.Encoder to a request's values before it is sent.

  alias ErlangPython.Encoder

  @doc false
  @spec encode_request(tuple() | atom()) :: tuple() | atom()
  def encode_request(request) do
    if user_impls?() and needs_encoding?(request), do: encode_fields(request), else: request
  end

  # Whether `term` holds a struct with an implementation: a walk that
  # allocates nothing, so requests without such structs are sent as they are.
  defp needs_encoding?(%_{} = struct), do: Encoder.impl_for(struct) != Encoder.Any
  defp needs_encoding?(map) when is_map(map), do: Enum.any?(map, &needs_encoding?/1)
  defp needs_encoding?([head | tail]), do: needs_encoding?(head) or needs_encoding?(tail)

  defp needs_encoding?(tuple) when is_tuple(tuple),
    do: tuple_needs_encoding?(tuple, tuple_size(tuple))

  defp needs_encoding?(_other), do: false

  defp tuple_needs_encoding?(_tuple, 0), do: false

  defp tuple_needs_encoding?(tuple, index),
    do: needs_encoding?(elem(tuple, index - 1)) or tuple_needs_encoding?(tuple, index - 1)

  defp encode_fields({:call, module, function, args, kwargs}),
    do: {:call, module, function, encode(args), encode(kwargs)}

  defp encode_fields({:eval, code, locals}), do: {:eval, code, encode(locals)}

  defp encode_fields({:call_method, object, name, args, kwargs}),
    do: {:call_method, object, name, encode(args), encode(kwargs)}

  defp encode_fields(request), do: request

  # Whether any struct implements the protocol (other than the fallback).
  # Consolidated protocols list their implementations; otherwise assume so.
  # Asked on every request: a plain walk of the list, as `Enum.any?/2` with
  # a capture would allocate a fun per call.
  defp user_impls? do
    case Encoder.__protocol__(:impls) do
      {:consolidated, impls} -> other_than_any?(impls)
      :not_consolidated -> true
    end
  end

  defp other_than_any?([Any | rest]), do: other_than_any?(rest)
  defp other_than_any?([_ | _]), do: true
  defp other_than_any?([]), do: false

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
