defmodule ErlangPython.ConversionBulkTest do
  # Bulk data through the fast paths: lists converted in one pass, and the
  # memory of Python's freed arenas reused from one request to the next.
  use ExUnit.Case, async: true

  defp identity(value), do: ErlangPython.eval("v", %{v: value})

  test "a million integers arrive exact, in order, and come back the same" do
    list = Enum.to_list(-500_000..499_999)

    assert {:ok, [-500_000, 499_999, 1_000_000, sum]} =
             ErlangPython.eval("[v[0], v[-1], len(v), sum(v)]", %{v: list})

    assert sum == Enum.sum(list)
    assert identity(list) == {:ok, list}
  end

  test "objects built in freed memory hold what they were given, request after request" do
    # Each request frees a million ints; the next builds its own in the
    # arenas they left, and must see only its own values.
    for offset <- [0, 7, 1_000_003] do
      list = Enum.map(1..1_000_000, &(&1 * 3 + offset))

      assert {:ok, true} =
               ErlangPython.eval("all(x == i * 3 + o for i, x in enumerate(v, 1))", %{
                 v: list,
                 o: offset
               })

      assert {:ok, returned} =
               ErlangPython.eval("[i * 3 + o for i in range(1, 1_000_001)]", %{o: offset})

      assert returned == list
    end
  end

  test "lists of every kind of item, empty and nested" do
    list = [
      1,
      -2,
      2 ** 70,
      1.5,
      "text",
      <<255>>,
      :atom,
      nil,
      true,
      [],
      [[1], [2, [3]]],
      {1, "a"},
      %{"k" => [1]}
    ]

    assert {:ok,
            [
              "int",
              "int",
              "int",
              "float",
              "str",
              "bytes",
              "str",
              "NoneType",
              "bool",
              "list",
              "list",
              "tuple",
              "dict"
            ]} = ErlangPython.eval("[type(x).__name__ for x in v]", %{v: list})

    assert identity([]) == {:ok, []}
    assert identity([[], [[]]]) == {:ok, [[], [[]]]}
  end

  test "an improper list stays an opaque term, whatever its items hold" do
    too_deep = Enum.reduce(1..20_000, [], fn _, acc -> [acc] end)

    for improper <- [[1 | 2], [1, 2, 3 | :tail], [too_deep | :tail]] do
      assert {:ok, "Term"} = ErlangPython.eval("type(v).__name__", %{v: improper}),
             "for #{inspect(improper, limit: 3)}"

      # Handed back unchanged.
      assert identity(improper) == {:ok, improper}
    end
  end

  test "a list whose conversion fails half-way releases the items converted so far" do
    {:ok, object} = ErlangPython.eval("object()", %{}, decode: false)
    too_deep = Enum.reduce(1..20_000, [], fn _, acc -> [acc] end)

    {:ok, before} = ErlangPython.call(:sys, :getrefcount, [object])

    for _ <- 1..50 do
      assert {:error, {:too_deep, _}} =
               ErlangPython.call(:builtins, :len, [[object, object, object, too_deep]])
    end

    assert {:ok, ^before} = ErlangPython.call(:sys, :getrefcount, [object])
  end
end
