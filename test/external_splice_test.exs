# A large result with an item the external-format writer has no form of
# (a date, a pid) keeps the external route: that
# item is converted the direct way on its own and its external form spliced
# in (native/erlang_python_nif/src/convert/external.rs). Items whose form
# would not decode to the same term (handles, references, funs), and odd
# dict keys and set elements, and any odd item while a decoder is
# registered, still send the whole value the direct way.
# Every case compares with the same item converted in a small result, which
# never takes the route.
defmodule ErlangPython.ExternalSpliceTest do
  # Not async: a decoder registered anywhere (data_types_test registers
  # some) sends odd items the direct way, which would change the routes
  # these tests check.
  use ExUnit.Case, async: false

  setup_all do
    :ok =
      ErlangPython.exec("""
      import datetime, decimal, uuid
      class SpliceOdd:
          def __init__(self, n):
              self.n = n
      def splice_odd_as_tuple(odd):
          return ('odd', odd.n, [odd.n] * 3)
      def splice_odd_raises(odd):
          raise ValueError('no form for this one')
      class SpliceZone(datetime.tzinfo):
          def utcoffset(self, when):
              return datetime.timedelta(hours=-7)
          def dst(self, when):
              return datetime.timedelta(hours=1)
          def tzname(self, when):
              return 'SPL'
      def splice_nested(depth, leaf, size):
          value = leaf
          for _ in range(depth):
              value = [value]
          return [value, list(range(size))]
      """)

    :ok
  end

  # The reply as the caller receives it ({:etf, binary} on the route).
  defp raw_reply(code, locals \\ %{}), do: ErlangPython.TestHelpers.raw_reply(code, locals)

  defp decoded({:etf, external}), do: :erlang.binary_to_term(external, [:safe])
  defp decoded(reply), do: reply

  @odd_items [
    "datetime.date(2024, 1, 2)",
    "datetime.datetime(2024, 1, 2, 3, 4, 5, 6)",
    "datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)",
    "datetime.datetime(2024, 7, 1, 12, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))",
    "datetime.datetime(2024, 7, 1, 12, tzinfo=__import__('zoneinfo').ZoneInfo('Europe/Paris'))",
    "datetime.datetime(2024, 7, 1, 12, tzinfo=SpliceZone())",
    "datetime.time(23, 59, 58, 999999)",
    "datetime.timedelta(days=-1, microseconds=5)",
    "decimal.Decimal('-12.3400')",
    "decimal.Decimal('-sNaN3')",
    "decimal.Decimal('-Infinity')",
    "decimal.Decimal('1.5E+7')",
    # Coefficients beyond 63 bits: converted the direct way and spliced.
    "decimal.Decimal('9999999999999999999')",
    "decimal.Decimal('-123456789012345678901234567890.000000001')",
    "uuid.UUID(int=2**127 + 5)",
    "[1, datetime.date(2000, 2, 29), {'k': datetime.time(1, 2)}]",
    # Subclasses (pandas' Timestamp is a datetime) convert as their base.
    "type('Day', (datetime.date,), {})(2024, 1, 2)",
    "type('Stamp', (datetime.datetime,), {})(2024, 1, 2, 3, 4, 5, 6)",
    "datetime.datetime(1, 1, 1)",
    "datetime.timedelta(days=999999999, seconds=86399, microseconds=999999)"
  ]

  test "a late odd item is spliced in, and equals its direct conversion" do
    for item <- @odd_items do
      {:ok, alone} = ErlangPython.eval("[#{item}]")
      reply = raw_reply("list(range(10000)) + [#{item}]")
      assert {:etf, _} = reply, item
      assert {:ok, list} = decoded(reply)
      assert Enum.drop(list, 10_000) == alone, item
      assert Enum.take(list, 3) == [0, 1, 2]

      # As a dict value, deep in a large dict.
      reply = raw_reply("{**{i: i for i in range(5000)}, 'late': {'v': (#{item},)}}")
      {:ok, [small]} = ErlangPython.eval("[{'late': {'v': (#{item},)}}]")
      assert {:etf, _} = reply
      assert {:ok, map} = decoded(reply)
      assert map["late"] == small["late"] and map_size(map) == 5001
    end
  end

  test "UTC datetimes, written straight into a large result, are the DateTime Elixir makes" do
    code = "datetime.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc)"
    expected = DateTime.new!(~D[2024-01-02], ~T[03:04:05.000006], "Etc/UTC")

    assert {:ok, ^expected} = ErlangPython.eval(code)

    reply = raw_reply("[#{code}] * 100 + [#{code}.replace(microsecond=0)]")
    assert {:etf, _} = reply
    assert {:ok, list} = decoded(reply)
    assert Enum.uniq(Enum.take(list, 100)) == [expected]
    assert List.last(list) == %{expected | microsecond: {0, 6}}
    assert DateTime.to_iso8601(List.last(list)) == "2024-01-02T03:04:05.000000Z"
  end

  test "a pid is spliced in" do
    reply = raw_reply("list(range(100)) + [p, [p]]", %{"p" => self()})
    assert {:etf, _} = reply
    assert {:ok, list} = decoded(reply)
    assert Enum.drop(list, 100) == [self(), [self()]]
  end

  test "with a decoder registered, a late odd item sends the value the direct way, decoded once" do
    :ok = ErlangPython.register_decoder("__main__.SpliceOdd", {:__main__, :splice_odd_as_tuple})
    :ok = ErlangPython.exec("splice_odd_calls = []")

    counted =
      "def splice_odd_counted(odd):\n    splice_odd_calls.append(odd.n)\n    return ('odd', odd.n)"

    :ok = ErlangPython.exec(counted)
    :ok = ErlangPython.register_decoder("__main__.SpliceOdd", {:__main__, :splice_odd_counted})
    reply = raw_reply("list(range(100)) + [datetime.date(2024, 1, 2), SpliceOdd(7)]")
    assert {:ok, list} = reply
    assert Enum.drop(list, 100) == [~D[2024-01-02], {"odd", 7}]
    assert {:ok, [7]} = ErlangPython.eval("splice_odd_calls")

    :ok = ErlangPython.register_decoder("__main__.SpliceOdd", {:__main__, :splice_odd_raises})
    {:error, small} = ErlangPython.eval("[SpliceOdd(1)]")
    assert {:error, ^small} = ErlangPython.eval("list(range(100)) + [SpliceOdd(1)]")
  after
    ErlangPython.register_decoder("__main__.SpliceOdd", nil)
  end

  test "handles, references and funs late in a large value go the direct way, intact" do
    reply = raw_reply("list(range(100)) + [object()]")
    assert {:ok, list} = reply
    assert %ErlangPython.Object{} = handle = List.last(list)
    assert {:ok, "object"} = ErlangPython.eval("type(h).__name__", %{"h" => handle})

    ref = make_ref()
    fun = fn -> :ok end
    assert {:ok, list} = raw_reply("list(range(100)) + [r, (f, r)]", %{"r" => ref, "f" => fun})
    assert Enum.drop(list, 100) == [ref, {fun, ref}]
  end

  test "an odd dict key or set element sends the value the direct way" do
    assert {:ok, map} = raw_reply("{**{i: i for i in range(100)}, datetime.date(2024, 1, 2): 'd'}")
    assert map[~D[2024-01-02]] == "d" and map_size(map) == 101

    assert {:ok, %MapSet{} = set} = raw_reply("set(range(100)) | {datetime.date(2024, 1, 2)}")
    assert MapSet.member?(set, ~D[2024-01-02]) and MapSet.size(set) == 101
  end

  test "an odd item at the nesting limit fails or passes as it does alone" do
    for depth <- [9_996, 9_997, 9_998, 9_999, 10_000] do
      small = ErlangPython.eval("splice_nested(#{depth}, datetime.date(2024, 1, 2), 1)")
      large = raw_reply("splice_nested(#{depth}, datetime.date(2024, 1, 2), 100)")

      case small do
        {:ok, [nested, [0]]} ->
          assert {:ok, [^nested, range]} = decoded(large)
          assert range == Enum.to_list(0..99)

        {:error, reason} ->
          assert {:error, ^reason} = decoded(large)
      end
    end
  end

  test "in a fresh VM, the first large result of dates and timedeltas decodes" do
    # The caller reads the external form with binary_to_term(_, [:safe]),
    # which refuses atoms the VM does not have yet; a VM that never
    # converted a timedelta the direct way had no :timedelta.
    {peer, node} = ErlangPython.PeerNode.start!()

    try do
      code =
        "[(d, d - datetime.date(2000, 1, 1)) for d in " <>
          "(datetime.date(2000, 1, 1) + datetime.timedelta(days=i) for i in range(5000))]"

      assert :ok = :erpc.call(node, ErlangPython, :exec, ["import datetime"])
      assert {:ok, pairs} = :erpc.call(node, ErlangPython, :eval, [code])
      assert length(pairs) == 5000
      assert Enum.at(pairs, 0) == {~D[2000-01-01], {:timedelta, 0}}

      assert Enum.at(pairs, 4999) ==
               {Date.add(~D[2000-01-01], 4999), {:timedelta, 4999 * 86_400_000_000}}
    after
      ErlangPython.PeerNode.stop(peer)
    end
  end
end
