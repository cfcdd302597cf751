defmodule ErlangPython.External do
  @moduledoc false
  # Large results come as `{:etf, binary}`, the external form the
  # interpreter thread wrote (native/erlang_python_nif/src/convert/external.rs),
  # and each caller decodes its own. `:erlang.binary_to_term/2` yields as it
  # reads but builds a large map in one go at the end, holding a normal
  # scheduler for milliseconds: from @dirty_from bytes the NIF decodes on a
  # dirty scheduler instead, so other processes keep running. Both give the
  # same term (`[:safe]`: no new atoms).

  # About 4,000 map entries or 10,000 integers: `binary_to_term` of this
  # much takes well under a millisecond.
  @dirty_from 65_536

  @doc false
  @spec decode(binary()) :: term()
  def decode(external) when byte_size(external) < @dirty_from,
    do: :erlang.binary_to_term(external, [:safe])

  def decode(external), do: ErlangPython.Native.decode_external(external)
end
