# Large plain results come back as one external-format binary decoded by
# the caller (native/erlang_python_nif/src/convert/external.rs); smaller
# ones are converted directly. Both ways must give the same terms: every
# case here goes both ways and is compared. The isolated worker speaks the
# same codec (src/etf/), so the cases also run through an isolated context.
defmodule ErlangPython.ExternalResultsTest do
  use ExUnit.Case, async: true

  alias ErlangPython.ContextServer

  # Far above the route's threshold (64 items), and above 32 and 128
  # keys: the sizes where OTP builds maps differently (erlang/otp#8208).
  @big 25_000

  # Python expressions of plain values, each with the term it must give.
  @cases [
    {"None", nil},
    {"True", true},
    {"False", false},
    {"0", 0},
    {"-1", -1},
    {"2**31", 2 ** 31},
    {"-(2**63)", -(2 ** 63)},
    {"2**64", 2 ** 64},
    {"-(2**100)", -(2 ** 100)},
    {"2**2000", 2 ** 2000},
    {"1.5", 1.5},
    {"-0.0", -0.0},
    {"float('nan')", :nan},
    {"float('inf')", :infinity},
    {"float('-inf')", :neg_infinity},
    {"'text'", "text"},
    {"'h\\u00e9'", "hé"},
    {"b'\\xff\\x00'", <<255, 0>>},
    {"b'ascii'", "ascii"},
    {"bytearray(b'ab')", "ab"},
    {"[]", []},
    {"()", {}},
    {"(1, 'a', None)", {1, "a", nil}},
    {"[1, [2, [3]]]", [1, [2, [3]]]},
    {"{}", %{}},
    {"{'a': {'b': [1.0]}}", %{"a" => %{"b" => [1.0]}}},
    {"{1: 'x', 'k': (None,)}", %{1 => "x", "k" => {nil}}},
    {"{b'\\xff': 1, (1, 2): 2}", %{<<255>> => 1, {1, 2} => 2}},
    {"{1, 'a'}", MapSet.new([1, "a"])},
    {"frozenset([2.5])", MapSet.new([2.5])},
    {"set()", MapSet.new()},
    {"__import__('enum').IntEnum('E', 'A B').B", 2},
    {"type('S', (str,), {})('sub')", "sub"}
  ]

  setup_all do
    :ok =
      ErlangPython.exec("""
      def many(value, n):
          return {i: value for i in range(n)}
      """)
  end

  defp many(value_expr, n, opts \\ []) do
    ErlangPython.eval("many(#{value_expr}, #{n})", %{}, opts)
  end

  test "every plain value gives the same term directly and through the binary" do
    for {expr, expected} <- @cases do
      assert {:ok, direct} = ErlangPython.eval(expr), expr
      assert direct === expected, expr
      assert {:ok, small} = many(expr, 3)
      assert {:ok, big} = many(expr, @big)
      assert map_size(big) == @big
      assert small === Map.new(0..2, &{&1, expected}), expr
      assert big === Map.new(0..(@big - 1), &{&1, expected}), expr
    end
  end

  # The reply as the interpreter thread sends it, before Runtime decodes it.
  defp raw_reply(code), do: ErlangPython.TestHelpers.raw_reply(code, %{}, 5_000)

  test "a large map comes as one binary for the caller to decode, a small one does not" do
    assert {:ok, %{0 => "x"}} = raw_reply("many('x', 3)")
    assert {:etf, external} = raw_reply("many('x', #{@big})")
    assert {:ok, big} = :erlang.binary_to_term(external, [:safe])
    assert big == Map.new(0..(@big - 1), &{&1, "x"})
    # {:ok, big_map} in a tuple takes the route too, and so do long lists.
    assert {:etf, _} = raw_reply("(1, many('y', #{@big}))")
    assert {:etf, external} = raw_reply("list(range(#{@big * 4}))")
    assert {:ok, list} = :erlang.binary_to_term(external, [:safe])
    assert list == Enum.to_list(0..(@big * 4 - 1))
  end

  test "lists, tuples and strings from 64 items take the route and equal the direct terms" do
    assert {:ok, [_ | _]} = raw_reply("list(range(63))")
    assert {:etf, _} = raw_reply("list(range(64))")
    assert {:etf, _} = raw_reply("tuple(range(64))")
    strs = Enum.map(0..9999, &"text #{&1} \u00e9")
    assert {:ok, ^strs} = ErlangPython.eval("[f'text {i} \\u00e9' for i in range(10000)]")
    rows = Enum.map(0..999, &{&1, "n#{&1}", 1.5, nil, [true, false], <<255, rem(&1, 256)>>})
    code = "[(i, f'n{i}', 1.5, None, [True, False], bytes([255, i % 256])) for i in range(1000)]"
    assert {:ok, ^rows} = ErlangPython.eval(code)
    # A non-plain item anywhere sends the whole value the direct way.
    assert {:ok, [%ErlangPython.Object{} | rest]} =
             ErlangPython.eval("[object()] + list(range(100))")

    assert rest == Enum.to_list(0..99)

    assert {:ok, list} =
             ErlangPython.eval("list(range(100)) + [__import__('datetime').date(2024, 1, 2)]")

    assert List.last(list) == ~D[2024-01-02] and length(list) == 101
  end

  test "maps from 64 items take the route, nested ones counted too, and equal the direct terms" do
    assert {:ok, %{62 => "x"}} = raw_reply("many('x', 63)")
    assert {:etf, external} = raw_reply("many('x', 64)")
    assert {:ok, map} = :erlang.binary_to_term(external, [:safe])
    assert map == Map.new(0..63, &{&1, "x"})

    # Maps below dicts and lists count: 8 maps of 10 keys, and a large map
    # as a value of a small one.
    expected = Map.new(0..7, &{"m#{&1}", Map.new(0..9, fn i -> {i, "x"} end)})
    assert {:etf, external} = raw_reply("{f'm{j}': many('x', 10) for j in range(8)}")
    assert {:ok, ^expected} = :erlang.binary_to_term(external, [:safe])
    assert {:etf, _} = raw_reply("{'data': many(1.5, 500), 'n': 500}")
    assert {:etf, _} = raw_reply("[many(None, 100), 1]")

    # Whichever way they go, users get the same terms.
    strs = Map.new(0..4999, &{"key#{&1}", &1})
    assert {:ok, ^strs} = ErlangPython.eval("{f'key{i}': i for i in range(5000)}")
    nested = %{"outer" => %{"inner" => strs, "list" => [strs, MapSet.new(0..299)]}}
    code = "{'outer': {'inner': d, 'list': [d, set(range(300))]}}"

    assert {:ok, ^nested} =
             ErlangPython.eval("(lambda d: #{code})({f'key{i}': i for i in range(5000)})")

    assert {:ok, set} = ErlangPython.eval("frozenset(f'e{i}' for i in range(1000))")
    assert set == MapSet.new(0..999, &"e#{&1}")
  end

  test "keys that collide are refused the same way both ways" do
    for n <- [3, 40, 100, 300, @big] do
      assert {:error, direct} = ErlangPython.eval("{'a': 1, b'a': 2}")
      code = "dict(many(0, #{n}), **{}) | {'a': 1, b'a': 2}"
      assert {:error, big} = ErlangPython.eval(code)
      assert big == direct

      assert {:error, set_error} = ErlangPython.eval("set(range(#{n})) | {'a', b'a'}")
      assert set_error == direct
    end
  end

  test "values with no plain form make a large result go the direct way" do
    assert {:ok, big} = ErlangPython.eval("many(__import__('datetime').date(2024, 1, 2), #{@big})")
    assert big[0] == ~D[2024-01-02]
    assert {:ok, big} = ErlangPython.eval("many(object(), #{@big})")
    assert %ErlangPython.Object{} = big[@big - 1]
    pid = self()
    assert {:ok, big} = ErlangPython.eval("{i: p for i in range(#{@big})}", %{p: pid})
    assert big[7] == pid
  end

  test "an isolated context returns the same terms" do
    {:ok, ctx} = ContextServer.start_link(isolated: true)
    on_exit(fn -> ContextServer.stop(ctx) end)

    code = "def many(value, n):\n    return {i: value for i in range(n)}"
    :ok = ErlangPython.exec(code, context: ctx)

    for {expr, expected} <- @cases do
      assert {:ok, value} = ErlangPython.eval(expr, %{}, context: ctx), expr
      assert value === expected, expr
      assert {:ok, big} = many(expr, 300, context: ctx)
      assert big === Map.new(0..299, &{&1, expected}), expr
    end
  end
end
