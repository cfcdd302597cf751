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

  test "a large map of mixed keys and values arrives exact and comes back the same" do
    # Past 32 keys the VM keeps a map as a hash trie, read entry by entry.
    map =
      Map.new(1..300, fn i ->
        case rem(i, 6) do
          0 -> {"key#{i}", i}
          1 -> {"ключ#{i}", 2 ** 70 + i}
          2 -> {<<255, i::16>>, i * 1.5}
          3 -> {-i, "v\0#{i}"}
          4 -> {2 ** 64 + i, [i, "é", <<200>>]}
          5 -> {{i, "t"}, nil}
        end
      end)

    assert identity(map) == {:ok, map}

    assert {:ok, %{"str" => 100, "bytes" => 50, "int" => 100, "tuple" => 50}} =
             ErlangPython.eval(
               "dict(__import__('collections').Counter(type(k).__name__ for k in v))",
               %{v: map}
             )

    # Keys made here are equal to, and hash like, strings Python makes.
    big = 2 ** 70 + 1

    assert {:ok, [6, ^big, 3.0, "v\0" <> "3"]} =
             ErlangPython.eval("[v['key6'], v['ключ1'], v[b'\\xff\\x00\\x02'], v[-3]]", %{
               v: map
             })
  end

  test "ASCII binaries with control characters are the same str as Python's own" do
    text = "tab\tnul\0del\d" <> <<1, 31, 127>>

    assert {:ok, true} =
             ErlangPython.eval("v == 'tab\\tnul\\x00del\\x7f\\x01\\x1f\\x7f'", %{v: text})

    assert {:ok, [3, true]} = ErlangPython.eval("[len(v[0]), v[1].isascii()]", %{v: ["a\0b", "x"]})
  end

  test "long lists of small integers mixed with bignums and floats arrive exact" do
    # Long enough to be packed, until the odd item turns up late.
    ints = Enum.to_list(1..5000)

    for list <- [
          ints ++ [2 ** 70] ++ ints,
          ints ++ [-(2 ** 65), 2 ** 63 - 1, -(2 ** 63)] ++ ints,
          [1.5 | ints],
          ints ++ [0.25]
        ] do
      assert {:ok, sum} = ErlangPython.eval("sum(v)", %{v: list})
      assert sum == Enum.sum(list)
      assert identity(list) == {:ok, list}
    end
  end

  test "large zeroed buffers are zero after large blocks were freed" do
    # bytes(n) asks for zeroed memory; a freed block of nearly its size,
    # full of 0xFF, may be handed out for it.
    code = """
    def zeroed(n):
        for extra in (0, n // 16):
            filled = b'\\xff' * (n + extra)
            del filled
            if bytes(n).count(0) != n:
                return False
        return True
    """

    :ok = ErlangPython.exec(code)

    for size <- [200_000, 1_000_000, 8_000_000] do
      assert {:ok, true} = ErlangPython.call(:__main__, :zeroed, [size]), "size #{size}"
    end
  end
end
