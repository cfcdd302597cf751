# Long lists of integers or floats passed as positional arguments of a large
# request are packed into a flat array on the caller's dirty scheduler
# (native/erlang_python_nif/src/convert/packed.rs) instead of being copied
# cell by cell. Python must get exactly the list it gets the other way:
# these cases compare every item's type and value, at the edges of 64-bit
# integers and floats, and around what is packed and what is not (mixed
# lists, bignums, improper lists, short lists, lists inside other terms).
defmodule ErlangPython.PackedArgsTest do
  use ExUnit.Case, async: true

  alias ErlangPython.ContextServer

  # Requests of more than 20,000 cells take the dirty route, where lists
  # of 1,024 items and more are packed.
  @long 30_000

  @min_int -9_223_372_036_854_775_808
  @max_int 2 ** 63 - 1

  setup_all do
    :ok =
      ErlangPython.exec("""
      import math
      def packed_probe(xs, *more):
          # Each item's type name and value, as Python sees them; floats by
          # their sign and repr, so -0.0 and 0.0 differ.
          def one(x):
              if type(x) is float:
                  return ('float', repr(x), math.copysign(1.0, x) < 0)
              return (type(x).__name__, x)
          return [one(x) for x in xs]
      def packed_echo(*args):
          return list(args)
      def packed_map_seen(*maps):
          # Each entry's key and value, by type and repr, in the dict's order.
          def one(x):
              return (type(x).__name__, repr(x))
          return [[(one(k), one(v)) for k, v in m.items()] for m in maps]
      def nested_map_seen(wrapped):
          return packed_map_seen(*wrapped)
      def type_name(x):
          return type(x).__name__
      class PackedHolder:
          def total(self, xs):
              return (type(xs).__name__, len(xs), sum(xs))
      """)

    :ok
  end

  defp probe(list, opts \\ []) do
    {:ok, seen} = ErlangPython.call(:__main__, :packed_probe, [list], opts)
    seen
  end

  defp expected(list) do
    for x <- list do
      if is_float(x) do
        {:ok, text} = ErlangPython.eval("repr(x)", %{x: x})
        {"float", text, match?(<<1::1, _::bitstring>>, <<x::float>>)}
      else
        {"int", x}
      end
    end
  end

  # The same values in a small list, which is never packed.
  defp each_small(list), do: Enum.flat_map(list, &probe([&1]))

  test "integers at the edges of 64 bits, negative, small and cached" do
    edges = [0, 1, -1, -5, 256, 257, @min_int, @max_int, @min_int + 1, @max_int - 1, 2 ** 31]
    list = edges ++ Enum.to_list(-@long..@long//7) ++ edges
    seen = probe(list)
    assert seen == expected(list)
    assert Enum.take(seen, 11) == each_small(edges)
  end

  test "floats: signed zero, extremes, subnormals" do
    max = 1.7976931348623157e308
    edges = [0.0, -0.0, 1.0, -1.5, max, -max, 5.0e-324, 2.2250738585072014e-308]
    list = edges ++ Enum.map(1..@long, &(&1 / 3)) ++ edges
    seen = probe(list)
    assert seen == expected(list)
    assert Enum.take(seen, 8) == each_small(edges)
  end

  test "a list that stops being packable late keeps every item's type" do
    ints = Enum.to_list(1..@long)

    for odd <- [2 ** 63, @min_int - 1, 2 ** 200, 1.0, "text", [1], {1}, %{"a" => 1}, nil, true] do
      list = ints ++ [odd]
      {:ok, echoed} = ErlangPython.call(:__main__, :packed_echo, [list])
      assert echoed == [list]
      assert list |> probe() |> Enum.at(-2) == {"int", @long}
    end

    floats_then_int = Enum.map(1..@long, &(&1 * 1.0)) ++ [1]
    assert List.last(probe(floats_then_int)) == {"int", 1}
    assert Enum.at(probe(floats_then_int), 0) == {"float", "1.0", false}
  end

  test "an improper list is still kept intact" do
    improper = Enum.reduce(@long..1//-1, 0, fn x, tail -> [x | tail] end)
    assert {:ok, [^improper]} = ErlangPython.call(:__main__, :packed_echo, [improper])
  end

  test "around the packing threshold and beside other arguments" do
    filler = Enum.to_list(1..@long) |> Enum.map(&Integer.to_string/1)

    for n <- [1, 1023, 1024, 1025] do
      list = Enum.to_list(-1..(n - 2))
      assert length(list) == n
      args = [filler, list, [list]]
      {:ok, [echoed_filler, echoed, nested]} = ErlangPython.call(:__main__, :packed_echo, args)
      assert echoed_filler == filler
      assert echoed == list
      assert nested == [list]
    end
  end

  test "several packed arguments, keyword arguments and a long argument list" do
    ints = Enum.to_list(1..@long)
    floats = Enum.map(ints, &(&1 * 0.5))
    {:ok, [a, b, c]} = ErlangPython.call(:__main__, :packed_echo, [ints, floats, ints])
    assert {a, b, c} == {ints, floats, ints}

    {:ok, total} = ErlangPython.call(:builtins, :sum, [ints], kwargs: %{start: 1})
    assert total == div(@long * (@long + 1), 2) + 1

    # The argument list itself is long: max(*ints).
    assert {:ok, @long} = ErlangPython.call(:builtins, :max, ints)
  end

  test "a method call, a context and an own-GIL-free scope get the same list" do
    ints = Enum.to_list(1..@long)
    {:ok, holder} = ErlangPython.eval("PackedHolder()", %{}, decode: false)
    sum = div(@long * (@long + 1), 2)
    assert {:ok, {"list", @long, ^sum}} = ErlangPython.call_method(holder, :total, [ints])

    {:ok, ctx} = ContextServer.start_link()

    :ok =
      ErlangPython.exec("def total(xs): return (type(xs).__name__, len(xs), sum(xs))", context: ctx)

    {:ok, in_context} = ErlangPython.call(:__main__, :total, [ints], context: ctx)
    assert in_context == {"list", @long, sum}
    ContextServer.stop(ctx)
  end

  test "the same request can be sent again, and by many callers at once" do
    ints = Enum.to_list(1..@long)
    sum = div(@long * (@long + 1), 2)

    results =
      1..8
      |> Enum.map(fn _ -> Task.async(fn -> ErlangPython.call(:builtins, :sum, [ints]) end) end)
      |> Enum.map(&Task.await(&1, 30_000))

    assert results == List.duplicate({:ok, sum}, 8)
    assert {:ok, ^sum} = ErlangPython.call(:builtins, :sum, [ints])
  end

  # Large maps of scalars are packed too. A map inside a list is never
  # packed (only positional arguments are), so it shows what the copied
  # route makes of the same map: the two must agree entry by entry, in
  # order.
  defp map_seen(map) do
    {:ok, [packed]} = ErlangPython.call(:__main__, :packed_map_seen, [map])
    {:ok, [copied]} = ErlangPython.call(:__main__, :nested_map_seen, [[map]])
    assert packed == copied
    packed
  end

  # For maps whose keys stay apart in Python and come back as they went.
  defp round_trips?(map) do
    {:ok, [echoed]} = ErlangPython.call(:__main__, :packed_echo, [map])
    echoed == map
  end

  test "a large map of scalar keys and values arrives as the copied route makes it" do
    map =
      Map.new(1..@long, fn i ->
        case rem(i, 8) do
          0 -> {"k#{i}", i}
          1 -> {"ключ#{i}", i * 0.5}
          2 -> {<<255, i::32>>, "v#{i}"}
          3 -> {i, <<>>}
          4 -> {-i - 0.25, @min_int}
          5 -> {String.pad_leading("#{i}", 64, "0"), @max_int}
          6 -> {-i, String.duplicate("é", 32)}
          7 -> {i + 0.0, -0.0}
        end
      end)

    assert round_trips?(map)

    kinds =
      map
      |> map_seen()
      |> Enum.map(fn {{key, _}, {value, _}} -> {key, value} end)
      |> Enum.frequencies()

    eighth = div(@long, 8)

    assert kinds == %{
             {"str", "int"} => eighth * 2,
             {"str", "float"} => eighth,
             {"bytes", "str"} => eighth,
             {"int", "str"} => eighth * 2,
             {"float", "int"} => eighth,
             {"float", "float"} => eighth
           }
  end

  test "a large map that stops being packable late, or holds Python-equal keys, is the same" do
    base = Map.new(1..@long, &{"k#{&1}", &1})

    for {key, value} <- [
          {"long", String.duplicate("x", 65)},
          {2 ** 64, 1},
          {"list", [1, 2]},
          {"none", nil},
          {{1, 2}, "tuple key"},
          {1.0, "float one"}
        ] do
      map = Map.put(base, key, value)
      assert length(map_seen(map)) == @long + 1
      assert round_trips?(map)
    end

    # An atom key is a str in Python; 1 and 1.0 are one key there.
    assert length(map_seen(Map.put(base, :atom_key, 1))) == @long + 1
    assert length(map_seen(Map.merge(base, %{1 => 1, 1.0 => 2}))) == @long + 1
    assert {:ok, "set"} = ErlangPython.call(:__main__, :type_name, [MapSet.new(1..@long)])
  end
end

defmodule ErlangPython.PackedArgsOwnGilTest do
  # The packed form reaches an own-GIL context's interpreter too (Python
  # 3.12+: tagged :own_gil, excluded on older Pythons by test_helper.exs).
  use ExUnit.Case, async: true

  @moduletag :own_gil

  test "an own-GIL context gets a plain list" do
    {:ok, ctx} = ErlangPython.ContextServer.start_link(own_gil: true)
    ints = Enum.to_list(-15_000..15_000)
    floats = Enum.map(ints, &(&1 / 4))
    kinds = "def kinds(*xs): return [(type(x).__name__, len(x), sum(x)) for x in xs]"
    :ok = ErlangPython.exec(kinds, context: ctx)
    {:ok, seen} = ErlangPython.call(:__main__, :kinds, [ints, floats], context: ctx)
    assert [{"list", 30_001, 0}, {"list", 30_001, float_sum}] = seen
    assert float_sum == 0.0
    ErlangPython.ContextServer.stop(ctx)
  end
end
