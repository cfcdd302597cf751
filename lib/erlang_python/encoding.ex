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
