# Large results' external form is decoded on a dirty scheduler from 64 KB
# (ErlangPython.External, Native.decode_external); smaller ones with
# :erlang.binary_to_term/2. Both must give the same term, refuse new atoms
# ([:safe]) and refuse bad input with an ArgumentError.
defmodule ErlangPython.ExternalDecodeTest do
  use ExUnit.Case, async: true

  alias ErlangPython.External

  defp values do
    big_map = Map.new(1..100_000, &{"key#{&1}", &1})

    [
      {:ok, Map.new(1..129, &{&1, &1})},
      {:ok, big_map},
      {:ok, %{"nested" => big_map, 1 => [big_map]}},
      {:ok, Enum.to_list(-50_000..50_000)},
      {:ok, Enum.map(1..20_000, &{&1 * 0.5, -&1, 2 ** 70 + &1, <<&1::32>>, [self()]})},
      {:ok, String.duplicate("é", 40_000)},
      {:ok, [1 | 2]}
    ]
  end

  test "gives what binary_to_term gives, below and above the dirty threshold" do
    for value <- values() do
      external = :erlang.term_to_binary(value)
      assert External.decode(external) === :erlang.binary_to_term(external, [:safe])
      assert ErlangPython.Native.decode_external(external) === value
    end

    small = :erlang.term_to_binary({:ok, [1, 2, 3]})
    assert byte_size(small) < 65_536
    assert External.decode(small) == {:ok, [1, 2, 3]}
  end

  test "refuses atoms that do not exist, and bad or trailing bytes" do
    name = "erlang_python_no_such_atom_#{System.unique_integer([:positive])}"
    padding = String.duplicate("x", 70_000)
    # The external form of {padding, :name}, written by hand so the atom
    # is never created.
    external =
      <<131, 104, 2, 109, byte_size(padding)::32, padding::binary, 118, byte_size(name)::16,
        name::binary>>

    assert_raise ArgumentError, fn -> External.decode(external) end
    assert_raise ArgumentError, fn -> :erlang.binary_to_term(external, [:safe]) end

    valid = :erlang.term_to_binary({:ok, padding})
    assert_raise ArgumentError, fn -> External.decode(valid <> <<0>>) end
    assert_raise ArgumentError, fn -> External.decode(binary_part(valid, 0, 70_000)) end
  end
end
