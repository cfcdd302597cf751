defmodule ErlangPython.ConversionTest do
  use ExUnit.Case, async: true

  alias ErlangPython.Error

  # What Python sees: its type name and repr.
  defp seen(value) do
    {:ok, seen} = ErlangPython.eval("(type(v).__name__, repr(v))", %{v: value})
    seen
  end

  defp identity(value), do: ErlangPython.eval("v", %{v: value})

  describe "Elixir -> Python" do
    test "integers of any size are exact ints" do
      for n <- [
            0,
            1,
            -1,
            2 ** 31,
            2 ** 63 - 1,
            2 ** 63,
            2 ** 64 - 1,
            2 ** 64,
            -(2 ** 63),
            -(2 ** 63) - 1,
            2 ** 200,
            -(2 ** 200)
          ] do
        assert seen(n) == {"int", Integer.to_string(n)}, "for #{n}"
      end
    end

    test "floats, including -0.0" do
      assert seen(1.5) == {"float", "1.5"}
      assert seen(-0.0) == {"float", "-0.0"}
      assert seen(1.0e300) == {"float", "1e+300"}
    end

    test "booleans and the nil-like atoms" do
      assert seen(true) == {"bool", "True"}
      assert seen(false) == {"bool", "False"}
      assert seen(nil) == {"NoneType", "None"}
      assert seen(:none) == {"NoneType", "None"}
      assert seen(:undefined) == {"NoneType", "None"}
    end

    test "other atoms are strings, except the special floats" do
      assert seen(:hello) == {"str", "'hello'"}
      assert seen(:"with space") == {"str", "'with space'"}
      # Beyond Latin-1: these came through as '' before (read as Latin-1).
      assert seen(:"héllo ✓") == {"str", "'héllo ✓'"}
      assert seen(:函数) == {"str", "'函数'"}
      assert seen(%{"✓": 1}) == {"dict", "{'✓': 1}"}
      assert seen(:nan) == {"float", "nan"}
      assert seen(:infinity) == {"float", "inf"}
      assert seen(:neg_infinity) == {"float", "-inf"}
    end

    test "binaries are str when valid UTF-8, bytes otherwise" do
      assert seen("héllo ✓") == {"str", "'héllo ✓'"}
      assert seen("") == {"str", "''"}
      assert seen(<<255, 0, 1>>) == {"bytes", "b'\\xff\\x00\\x01'"}
      assert seen({:bytes, "abc"}) == {"bytes", "b'abc'"}
      assert seen({:bytes, <<>>}) == {"bytes", "b''"}
    end

    test "lists, charlists, tuples" do
      assert seen([1, "a", [2]]) == {"list", "[1, 'a', [2]]"}
      assert seen([]) == {"list", "[]"}
      assert seen(~c"abc") == {"list", "[97, 98, 99]"}
      assert seen({1, "a"}) == {"tuple", "(1, 'a')"}
      assert seen({}) == {"tuple", "()"}
    end

    test "maps are dicts with converted keys" do
      assert {:ok, true} =
               ErlangPython.eval("v == {'a': 1, 'b': 2, 3: [4], (1, 2): None}", %{
                 v: %{"a" => 1, :b => 2, 3 => [4], {1, 2} => nil}
               })

      assert seen(%{}) == {"dict", "{}"}
    end

    test "large maps and MapSets" do
      map = Map.new(1..100_000, &{"k#{&1}", &1})
      assert {:ok, 100_000} = ErlangPython.call(:builtins, :len, [map])
      assert {:ok, 99_999} = ErlangPython.eval("v['k99999']", %{v: map})
      assert {:ok, 5000} = ErlangPython.call(:builtins, :len, [MapSet.new(1..5000)])
    end

    test "MapSets are sets" do
      assert {:ok, true} =
               ErlangPython.eval("v == {1, 'a'} and type(v) is set", %{v: MapSet.new([1, "a"])})
    end

    # Elixir 1.18 dropped %MapSet{}'s `version: 2` field. A set must arrive in
    # Python as a set and come back `==` to the user's own MapSet on every
    # Elixir (compared with ==, as a user would, not MapSet.equal?).
    test "a MapSet of 5,000 elements round-trips with ==" do
      set = MapSet.new(1..5000)
      assert {:ok, 5000} = ErlangPython.call(:builtins, :len, [set])
      assert {:ok, "set"} = ErlangPython.eval("type(v).__name__", %{v: set})
      assert {:ok, ^set} = ErlangPython.call(:builtins, :set, [set])
      assert {:ok, ^set} = ErlangPython.eval("v", %{v: set})
      assert {:ok, true} = ErlangPython.eval("v == set(range(1, 5001))", %{v: set})
    end

    test "a set from Python is the running Elixir's own MapSet" do
      assert {:ok, set} = ErlangPython.eval("{1, 2}")
      assert set == MapSet.new([1, 2])
      assert Map.keys(set) |> Enum.sort() == Map.keys(MapSet.new()) |> Enum.sort()
    end

    test "a MapSet in either Elixir's shape is read as a set" do
      with_version = Map.put(MapSet.new([1, 2]), :version, 2)
      without_version = Map.delete(MapSet.new([1, 2]), :version)

      for shape <- [with_version, without_version] do
        assert {:ok, "set"} = ErlangPython.eval("type(v).__name__", %{v: shape})
        assert {:ok, 2} = ErlangPython.call(:builtins, :len, [shape])
      end

      # A struct with another extra field is a map like any other struct.
      other = Map.put(without_version, :extra, 1)
      assert {:ok, "dict"} = ErlangPython.eval("type(v).__name__", %{v: other})
    end

    test "pids are erlang.Pid" do
      assert {"Pid", repr} = seen(self())
      assert repr =~ "<erlang.Pid <0."
    end

    test "references, ports, funs and other terms are opaque erlang.Term" do
      port = Port.open({:spawn, "cat"}, [])

      for term <- [make_ref(), port, fn x -> x end, &Enum.map/2, <<1::3>>, [1 | 2]] do
        assert {"Term", "<erlang.Term " <> _} = seen(term), "for #{inspect(term)}"
      end

      Port.close(port)
    end

    test "unhashable keys are a Python TypeError" do
      assert {:error, %Error{type: "TypeError", message: message}} = identity(%{[1] => 2})

      assert message =~ "unhashable"
    end
  end

  describe "Python -> Elixir" do
    test "None, booleans" do
      assert {:ok, nil} = ErlangPython.eval("None")
      assert {:ok, true} = ErlangPython.eval("True")
      assert {:ok, false} = ErlangPython.eval("1 == 2")
    end

    test "ints of any size are exact integers, never strings" do
      assert {:ok, n} = ErlangPython.eval("2**200")
      assert n === 2 ** 200
      assert {:ok, n} = ErlangPython.eval("-2**200")
      assert n === -(2 ** 200)
      assert {:ok, n} = ErlangPython.eval("2**64 - 1")
      assert n === 18_446_744_073_709_551_615
      assert {:ok, n} = ErlangPython.eval("-2**63")
      assert n === -9_223_372_036_854_775_808
      assert {:ok, n} = ErlangPython.eval("10**2000")
      assert n === Integer.pow(10, 2000)
    end

    test "floats, with nan and infinities as atoms and -0.0 kept" do
      assert {:ok, 0.1} = ErlangPython.eval("0.1")
      assert {:ok, :nan} = ErlangPython.eval("float('nan')")
      assert {:ok, :infinity} = ErlangPython.eval("float('inf')")
      assert {:ok, :neg_infinity} = ErlangPython.eval("float('-inf')")
      assert {:ok, zero} = ErlangPython.eval("-0.0")
      assert <<1::1, _::63>> = <<zero::float>>
    end

    test "str, bytes and bytearray are binaries" do
      assert {:ok, "héllo ✓"} = ErlangPython.eval("'héllo ✓'")
      assert {:ok, <<255, 0>>} = ErlangPython.eval("b'\\xff\\x00'")
      assert {:ok, "ab"} = ErlangPython.eval("bytearray(b'ab')")
    end

    test "a str that is not valid Unicode is an error, not garbage" do
      assert {:error, %Error{type: "UnicodeEncodeError"}} = ErlangPython.eval("'\\ud800'")
    end

    test "lists, tuples, dicts, sets" do
      assert {:ok, [1, [2, {3, "x"}]]} = ErlangPython.eval("[1, [2, (3, 'x')]]")
      assert {:ok, {}} = ErlangPython.eval("()")
      assert {:ok, %{"a" => 1, 2 => [nil]}} = ErlangPython.eval("{'a': 1, 2: [None]}")
      assert {:ok, set} = ErlangPython.eval("{1, 2, 'three'}")
      assert set == MapSet.new([1, 2, "three"])
      assert {:ok, frozen} = ErlangPython.eval("frozenset([(1, 2)])")
      assert frozen == MapSet.new([{1, 2}])
      assert {:ok, empty} = ErlangPython.eval("set()")
      assert empty == MapSet.new()
    end

    test "subclasses of the builtin containers convert like their base" do
      assert {:ok, %{"a" => 1}} = ErlangPython.eval("__import__('collections').OrderedDict(a=1)")

      assert {:ok, {1, 2}} =
               ErlangPython.eval("__import__('collections').namedtuple('P', 'x y')(1, 2)")

      assert {:ok, 1} = ErlangPython.eval("__import__('enum').IntEnum('E', 'A').A")
    end

    test "two Python keys that become the same term are refused, not merged" do
      assert {:error, :duplicate_key} = ErlangPython.eval("{'a': 1, b'a': 2}")
      # Also in large maps (more than 32 and more than 128 keys).
      for n <- [40, 300] do
        assert {:error, :duplicate_key} =
                 ErlangPython.eval("dict([(str(i), i) for i in range(n)] + [(b'7', 0)])", %{n: n})
      end

      assert {:error, :duplicate_key} = ErlangPython.eval("{'x', b'x'} | set(range(200))")
    end

    test "large dicts and sets (a regression: OTP crashed on >128-key maps built off-scheduler)" do
      for n <- [33, 129, 1000, 100_000] do
        assert {:ok, map} = ErlangPython.eval("{str(i): i for i in range(n)}", %{n: n})
        assert map_size(map) == n
        assert map["#{n - 1}"] == n - 1

        # Keys that cannot collide (ints, and ints with strs) build the map
        # in one step on OTP 27.3 and later.
        assert {:ok, map} =
                 ErlangPython.eval(
                   "{**{i: -i for i in range(n)}, **{str(i): i for i in range(n)}}",
                   %{n: n}
                 )

        assert map_size(map) == 2 * n
        assert map[n - 1] == 1 - n and map["#{n - 1}"] == n - 1
      end

      assert {:ok, set} = ErlangPython.eval("set(range(5000))")
      assert set == MapSet.new(0..4999)
    end

    test "objects with no Elixir form come back as handles naming their type" do
      assert {:ok, %ErlangPython.Object{type: "object"}} = ErlangPython.eval("object()")

      assert {:ok, %ErlangPython.Object{type: "fractions.Fraction"} = fraction} =
               ErlangPython.eval("__import__('fractions').Fraction(3, 2)")

      assert {:ok, "3/2"} = ErlangPython.decode(fraction)
      assert {:ok, %ErlangPython.Object{type: "function"}} = ErlangPython.eval("lambda: 1")
      # Inside containers too.
      assert {:ok, [1, %ErlangPython.Object{type: "object"}]} = ErlangPython.eval("[1, object()]")
    end
  end

  describe "round trips" do
    test "pids, references, ports and funs come back identical" do
      port = Port.open({:spawn, "cat"}, [])
      fun = fn x -> x + 1 end

      for term <- [self(), make_ref(), port, fun, &Enum.map/2, <<1::3>>, [1 | 2]] do
        assert {:ok, back} = identity(term)
        assert back === term, "for #{inspect(term)}"
      end

      assert {:ok, back} = identity(fun)
      assert back.(1) == 2
      Port.close(port)
    end

    test "erlang.Pid and erlang.Term compare and hash by identity" do
      ref = make_ref()

      assert {:ok, true} =
               ErlangPython.eval("a == b and hash(a) == hash(b) and len({a, b}) == 1", %{
                 a: self(),
                 b: self()
               })

      assert {:ok, true} = ErlangPython.eval("a == b and len({a, b}) == 1", %{a: ref, b: ref})
      assert {:ok, false} = ErlangPython.eval("a == b", %{a: make_ref(), b: make_ref()})
    end

    test "nested structures" do
      value = %{
        "list" => [1, 2.5, "three", [4, {5, 6}], nil, true],
        "tuple" => {:atom_becomes_string_key_value, -(2 ** 100)},
        42 => %{"deep" => [[[["x"]]]]}
      }

      expected = put_in(value, ["tuple"], {"atom_becomes_string_key_value", -(2 ** 100)})
      assert {:ok, ^expected} = identity(value)
    end

    test "special floats survive a round trip" do
      assert {:ok, [:nan, :infinity, :neg_infinity]} = identity([:nan, :infinity, :neg_infinity])
    end
  end

  describe "Elixir -> Python, items of bulk data (each kind read on its own fast path)" do
    test "floats in lists, tuples and maps are exact, tiny, huge and negative zero included" do
      floats = [0.1, -0.0, 5.0e-324, 1.7976931348623157e308, -2.5, 1.0e-300]

      assert {:ok, reprs} =
               ErlangPython.eval(
                 "([repr(x) for x in v[0]], [type(x).__name__ for x in v[1]], repr(v[2]['k']))",
                 %{v: {floats, List.to_tuple(floats), %{k: -0.0}}}
               )

      assert reprs ==
               {~w(0.1 -0.0 5e-324 1.7976931348623157e+308 -2.5 1e-300), List.duplicate("float", 6),
                "-0.0"}

      assert {:ok, ^floats} = identity(floats)
    end

    test "atoms: the special ones keep their values, the others are interned str, in any number" do
      special = [true, false, nil, :none, :undefined, :nan, :infinity, :neg_infinity]
      # More distinct atoms than a worker thread remembers (1,024), each twice.
      plain = for i <- 1..1_500, do: String.to_atom("conversion_test_atom_#{i}")
      items = special ++ plain ++ plain ++ special

      assert {:ok, seen} =
               ErlangPython.eval(
                 "[x if type(x) is str and x is __import__('sys').intern(x) else repr(x) for x in v]",
                 %{v: items}
               )

      special_seen = ~w(True False None None None nan inf -inf)
      plain_seen = Enum.map(plain, &Atom.to_string/1)
      assert seen == special_seen ++ plain_seen ++ plain_seen ++ special_seen

      # The same again: what a worker remembered is the same value.
      assert {:ok, ^seen} =
               ErlangPython.eval(
                 "[x if type(x) is str and x is __import__('sys').intern(x) else repr(x) for x in v]",
                 %{v: items}
               )
    end

    test "rows: plain maps with atom keys are dicts; structs keep their forms" do
      rows = for i <- 1..300, do: %{id: i, name: "user#{i}", score: i * 1.5, active: rem(i, 2) == 0}

      assert {:ok, [300, true, ["active", "id", "name", "score"], 450.0]} =
               ErlangPython.eval(
                 "[len(v), all(type(r) is dict for r in v), sorted(v[0]), v[299]['score']]",
                 %{v: rows}
               )

      # A struct among rows, and a map whose "__struct__" key is a string,
      # not the atom: only the first is a struct.
      assert {:ok, {"set", "dict", "date"}} =
               ErlangPython.eval(
                 "tuple(type(x).__name__ for x in v)",
                 %{v: [MapSet.new([1]), %{"__struct__" => "x"}, ~D[2024-01-02]]}
               )
    end

    test "tuples: pairs of any kind, and the tagged forms, anywhere in a list" do
      pairs = for i <- 1..200, do: {:"key_#{rem(i, 7)}", i}

      assert {:ok, {200, ["key_1", 1], true}} =
               ErlangPython.eval(
                 "(len(v), list(v[0]), all(type(p) is tuple and len(p) == 2 for p in v))",
                 %{v: pairs}
               )

      tagged = [{:bytes, "ab"}, {:timedelta, 1_000_000}, {1, 2}, {:ok, "ab"}, {}, {1, 2, 3}]

      assert {:ok,
              [
                "b'ab'",
                "datetime.timedelta(seconds=1)",
                "(1, 2)",
                "('ok', 'ab')",
                "()",
                "(1, 2, 3)"
              ]} = ErlangPython.eval("[repr(x) for x in v]", %{v: tagged})
    end

    test "a tuple whose later item cannot convert is an error, and nothing breaks" do
      deep = Enum.reduce(1..20_000, [], fn _, acc -> [acc] end)
      assert {:error, {:too_deep, 10_000}} = ErlangPython.call(:builtins, :len, [{1, "two", deep}])
      assert {:ok, 3} = ErlangPython.call(:builtins, :len, [{1, "two", [3]}])
    end
  end

  describe "the size that keeps a request on a normal scheduler" do
    # The NIF walks a request before copying it on a normal scheduler, and
    # refuses one over 20,000 cells or nested deeper than 64 containers;
    # ErlangPython.Runtime then copies it on a dirty scheduler.
    defp inline?(args) do
      ref = make_ref()

      case ErlangPython.Native.submit(ref, {:call, :builtins, :len, args, %{}}) do
        :too_large ->
          false

        handle ->
          assert_receive {^ref, {:ok, _}}, 10_000
          # Used after the wait, so the handle stays alive through it:
          # dropping it cancels the job. The `_ = handle` that stood here was
          # compiled away, so a garbage collection of this process while it
          # waited cancelled the request: no reply (once in CI, on OTP 27;
          # a script that collects a waiting caller loses every reply so).
          # The reply was committed: :done.
          assert ErlangPython.Native.cancel(handle) == :done
          true
      end
    end

    defp nest_in(0), do: []
    defp nest_in(n), do: [nest_in(n - 1)]

    test "counts list cells, tuple elements and map entries exactly" do
      # The request tuple's 5 elements and the args list's cell count too.
      assert inline?([Enum.to_list(1..19_994)])
      refute inline?([Enum.to_list(1..19_995)])
      assert inline?([List.to_tuple(Enum.to_list(1..19_994))])
      refute inline?([List.to_tuple(Enum.to_list(1..19_995))])
      # A map entry is one cell; its key and value are walked within it.
      assert inline?([Map.new(1..19_994, &{&1, &1})])
      refute inline?([Map.new(1..19_995, &{&1, &1})])
      assert inline?([Map.new(1..9_997, &{&1, [&1]})])
      refute inline?([Map.new(1..9_998, &{&1, [&1]})])
    end

    test "counts how deep containers nest, not scalars" do
      # The args list is the first level below the request tuple.
      assert inline?([nest_in(62)])
      refute inline?([nest_in(63)])
      assert inline?([[[[[1.5, :a, "b"]]]]])
    end
  end

  describe "nesting limit (10,000 levels) in both directions" do
    setup do
      :ok =
        ErlangPython.exec("""
        def _conversion_test_depth(v):
            n = 1
            while v:
                v = v[0]
                n += 1
            return n
        """)
    end

    defp nest(0), do: []
    defp nest(n), do: [nest(n - 1)]

    defp depth([]), do: 1
    defp depth([inner]), do: 1 + depth(inner)

    test "Elixir -> Python" do
      assert {:ok, 10_000} = ErlangPython.call(:__main__, :_conversion_test_depth, [nest(9_999)])
      assert {:error, {:too_deep, 10_000}} = identity(nest(10_000))
      assert {:error, {:too_deep, 10_000}} = ErlangPython.call(:builtins, :len, [nest(20_000)])
    end

    test "Python -> Elixir" do
      nested = "__import__('functools').reduce(lambda a, _: [a], range(n), [])"
      assert {:ok, value} = ErlangPython.eval(nested, %{n: 9_999})
      assert depth(value) == 10_000
      assert {:error, {:too_deep, 10_000}} = ErlangPython.eval(nested, %{n: 10_000})

      assert {:error, {:too_deep, 10_000}} =
               ErlangPython.eval(
                 "__import__('functools').reduce(lambda a, _: {'k': a}, range(50000), {})"
               )
    end
  end
end
