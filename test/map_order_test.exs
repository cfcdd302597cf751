# Large results are written as one external-format binary; on the OTP
# releases whose map order the NIF predicts (OTP 25), a dict of at least
# 1,024 keys, all exact str or ints of one machine word, is written in the
# order the VM keeps the map's keys in, which `binary_to_term` decodes
# faster (native/erlang_python_nif/src/etf/map_order.rs). The order must
# never change a result: every case is compared with the map Elixir builds,
# and, where the order is predicted, the bytes with `term_to_binary/1`'s,
# which writes a map in the VM's own order.
defmodule ErlangPython.MapOrderTest do
  use ExUnit.Case, async: true

  import ErlangPython.TestHelpers, only: [raw_reply: 1]

  # OTP 27.3's internal hash is another one: the NIF's check against
  # enif_hash finds it and keeps the dict's order there.
  defp predicted?, do: System.otp_release() == "25"

  # The external form of `{:ok, value}` as the NIF writes it, without the
  # tuple and atom in front; and the VM's own form of `map`.
  defp written({:etf, <<131, 104, 2, 119, 2, "ok", value::binary>>}), do: value

  defp vm_form(map),
    do: binary_part(:erlang.term_to_binary(map), 1, byte_size(:erlang.term_to_binary(map)) - 1)

  # The first key written (MAP_EXT, arity, then the first key's form).
  defp first_key(<<116, _arity::32, rest::binary>>), do: first_term(rest)
  defp first_term(<<109, size::32, bytes::binary-size(size), _::binary>>), do: bytes
  defp first_term(<<97, value, _::binary>>), do: value
  defp first_term(<<98, value::signed-32, _::binary>>), do: value
  defp first_term(<<110, _::binary>>), do: :big_first

  defp check(code, expected) do
    reply = raw_reply(code)
    assert {:ok, ^expected} = :erlang.binary_to_term(elem(reply, 1), [:safe])
    assert {:ok, ^expected} = ErlangPython.eval(code)
    written(reply)
  end

  defp check_in_vm_order(code, expected) do
    bytes = check(code, expected)
    if predicted?(), do: assert(bytes == vm_form(expected))
    bytes
  end

  test "a large dict of str keys comes in the VM's map order where it is predicted" do
    expected = Map.new(0..4_999, &{"key#{&1}", &1})
    bytes = check_in_vm_order(~s|{f"key{i}": i for i in range(5000)}|, expected)
    # Elsewhere the dict's own order stays.
    if not predicted?(), do: assert(first_key(bytes) == "key0")
  end

  test "str keys of every tail length, non-ASCII and empty, in the VM's order" do
    code = ~s|{("é" * (i % 30)) + str(i) if i else "": i for i in range(2000)}|

    expected =
      Map.new(0..1_999, fn i ->
        {if(i == 0, do: "", else: String.duplicate("é", rem(i, 30)) <> "#{i}"), i}
      end)

    check_in_vm_order(code, expected)
  end

  test "int keys across one machine word, and mixed with str keys, in the VM's order" do
    edges = [
      0,
      1,
      -1,
      255,
      256,
      2 ** 31 - 1,
      -(2 ** 31),
      2 ** 31,
      2 ** 40,
      -(2 ** 40),
      2 ** 59 - 1,
      -(2 ** 59)
    ]

    expected =
      Map.new(
        Enum.map(edges, &{&1, "edge"}) ++
          Enum.map(1_000..2_999, &{&1 * 7919, &1}) ++ Enum.map(0..499, &{"s#{&1}", &1})
      )

    code =
      "dict([(k, 'edge') for k in #{inspect(edges)}] + [(i * 7919, i) for i in range(1000, 3000)] + [(f's{i}', i) for i in range(500)])"

    check_in_vm_order(code, expected)
  end

  test "keys beyond one machine word keep the dict's order and convert exactly" do
    bigs = [2 ** 59, -(2 ** 59) - 1, 2 ** 64]
    expected = Map.new(Enum.map(bigs, &{&1, "big"}) ++ Enum.map(0..1_999, &{&1, &1}))
    code = "dict([(k, 'big') for k in #{inspect(bigs)}] + [(i, i) for i in range(2000)])"
    bytes = check(code, expected)
    assert first_key(bytes) == :big_first
  end

  test "1,023 and 1,024 keys: below and at the size where the order starts" do
    for n <- [1_023, 1_024, 1_025] do
      check(~s|{f"k{i}": i for i in range(#{n})}|, Map.new(0..(n - 1), &{"k#{&1}", &1}))
    end
  end

  test "bool, float and bytes keys keep the dict's order and their usual forms" do
    expected = Map.new([{true, 1}, {1.5, 2}, {"raw", 3}] ++ Enum.map(0..1_999, &{"k#{&1}", &1}))
    code = ~s|dict([(True, 1), (1.5, 2), (b"raw", 3)] + [(f"k{i}", i) for i in range(2000)])|
    check(code, expected)
  end

  test "two keys that convert to the same term are refused, as in any dict" do
    code = ~s|dict([(f"k{i}", i) for i in range(2000)] + [(b"k7", 0)])|
    assert {:error, :duplicate_key} = ErlangPython.eval(code)
  end

  test "a key that cannot be encoded fails the call cleanly, early or late" do
    for at <- [0, 1_999] do
      code = ~s|{("\\ud800" if i == #{at} else f"k{i}"): i for i in range(2000)}|
      assert {:error, _} = ErlangPython.eval(code)
    end

    # The interpreter is still fine afterwards.
    assert {:ok, 2_000} = ErlangPython.eval(~s|len({f"k{i}": i for i in range(2000)})|)
  end
end
