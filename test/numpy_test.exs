defmodule ErlangPython.NumpyTest do
  # The conversions against the real numpy and pandas, from the test venv
  # (ErlangPython.TestVenv: bin/test makes it and test_helper.exs puts it on
  # sys.path; without it these tests are excluded and test_helper.exs says
  # so, and under CI its absence fails the run).
  use ExUnit.Case, async: false

  alias ErlangPython.{Array, Object}

  @moduletag :test_venv

  setup_all do
    {:ok, _} =
      ErlangPython.eval("(__import__('numpy').__version__, __import__('pandas').__version__)")

    :ok
  end

  describe "numpy scalars" do
    test "convert to numbers and booleans, never handles" do
      assert {:ok, [5, -3, 200, true, false, 1.5, 0.25, 2.0]} =
               ErlangPython.eval(
                 "[np.int64(5), np.int8(-3), np.uint8(200), np.bool_(True), np.bool_(False), np.float32(1.5), np.float16(0.25), np.float64(2.0)]",
                 %{np: numpy()}
               )

      assert {:ok, 6} = ErlangPython.eval("np.arange(4).sum()", %{np: numpy()})
      assert {:ok, true} = ErlangPython.eval("(np.arange(4) > 2).any()", %{np: numpy()})

      assert {:ok, ~N[2024-01-02 00:00:00.000000]} =
               ErlangPython.eval("np.datetime64('2024-01-02T00:00:00', 'us')", %{np: numpy()})
    end
  end

  describe "arrays" do
    test "numpy arrays come back as Arrays of every numeric type, in C order" do
      for {dtype, type} <- [
            {"int8", {:s, 8}},
            {"int16", {:s, 16}},
            {"int32", {:s, 32}},
            {"int64", {:s, 64}},
            {"uint8", {:u, 8}},
            {"uint16", {:u, 16}},
            {"uint32", {:u, 32}},
            {"uint64", {:u, 64}},
            {"float16", {:f, 16}},
            {"float32", {:f, 32}},
            {"float64", {:f, 64}},
            {"bool", {:u, 8}}
          ] do
        assert {:ok, %Array{type: ^type, shape: {2, 3}} = array} =
                 ErlangPython.eval("np.arange(6).reshape(2, 3).astype(d)", %{np: numpy(), d: dtype},
                   arrays: true
                 )

        expected = if dtype == "bool", do: [0, 1, 1, 1, 1, 1], else: [0, 1, 2, 3, 4, 5]
        assert Enum.map(Array.to_list(array), &(&1 * 1)) == expected, dtype
      end

      assert {:ok, %Array{type: {:c, 128}} = c} =
               ErlangPython.eval("np.array([1+2j])", %{np: numpy()}, arrays: true)

      assert Array.to_list(c) == [{1.0, 2.0}]
      # A transposed (non-contiguous) array is copied into C order.
      assert {:ok, %Array{shape: {3, 2}} = t} =
               ErlangPython.eval("np.arange(6, dtype='int64').reshape(2, 3).T", %{np: numpy()},
                 arrays: true
               )

      assert Array.to_list(t) == [0, 3, 1, 4, 2, 5]

      assert {:ok, %Array{shape: {}, data: <<7::signed-native-64>>}} =
               ErlangPython.eval("np.array(7)", %{np: numpy()}, arrays: true)
    end

    test "a returned array is made read-only in Python, so the binary never changes" do
      :ok = ErlangPython.exec("import numpy as _np\n_owned = _np.zeros(4)")
      assert {:ok, %Array{data: data}} = ErlangPython.eval("_owned", %{}, arrays: true)

      assert {:error, %ErlangPython.Error{type: "ValueError", message: message}} =
               ErlangPython.exec("_owned[0] = 1.0")

      assert message =~ "read-only"
      assert data == <<0::256>>
      # A view into another array is copied instead: the base stays writable.
      :ok = ErlangPython.exec("_base = _np.zeros(4)")
      assert {:ok, %Array{data: view_data}} = ErlangPython.eval("_base[1:3]", %{}, arrays: true)
      :ok = ErlangPython.exec("_base[1] = 5.0")
      assert view_data == <<0::128>>
      :ok = ErlangPython.exec("del _owned, _base")
    end

    test "Elixir binaries reach numpy without a copy, as read-only arrays" do
      data = for i <- 1..1000, into: <<>>, do: <<i::float-native-64>>

      assert {:ok, {500_500.0, false, true}} =
               ErlangPython.eval(
                 "(float(a.sum()), a.flags.writeable, a.base is not None)",
                 frombuffer_locals(data)
               )

      array = %Array{data: data, type: {:f, 64}, shape: {10, 100}}

      assert {:ok, {[10, 100], 500_500.0}} =
               ErlangPython.eval("(list(np.asarray(v).shape), float(np.asarray(v).sum()))", %{
                 np: numpy(),
                 v: array
               })

      # A round trip: Elixir -> numpy -> Elixir, the same bytes.
      assert {:ok, %Array{data: ^data}} =
               ErlangPython.eval("np.asarray(v)", %{np: numpy(), v: array}, arrays: true)
    end

    test "a 100 MB array comes back without a copy: RSS grows far less than 100 MB" do
      :ok = ErlangPython.exec("import numpy as _np\n_big = _np.ones(12_500_000)")
      before = rss_kb()

      assert {:ok, %Array{data: data, shape: {12_500_000}}} =
               ErlangPython.eval("_big", %{}, arrays: true)

      grown = rss_kb() - before
      assert byte_size(data) == 100_000_000
      assert binary_part(data, 99_999_992, 8) == <<1.0::float-native-64>>
      assert grown < 20_000, "RSS grew #{grown} kB for a 100 MB array"
      :ok = ErlangPython.exec("del _big")
    end
  end

  describe "Elixir binaries in numpy" do
    test "a 100 MB binary reaches numpy without a copy: RSS grows far less than 100 MB" do
      data = :binary.copy(<<2.0::float-native-64>>, 12_500_000)
      before = rss_kb()

      assert {:ok, {25_000_000.0, false}} =
               ErlangPython.eval(
                 "(lambda a: (float(a.sum()), a.flags.writeable))(np.asarray(v))",
                 %{np: numpy(), v: %Array{data: data, type: {:f, 64}, shape: {12_500_000}}}
               )

      grown = rss_kb() - before
      assert grown < 20_000, "RSS grew #{grown} kB for a 100 MB binary"
    end
  end

  describe "pandas" do
    test "a DataFrame decodes to a map of columns, a Series too, never a list of names" do
      {:ok, df} = ErlangPython.eval("pd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})", %{pd: pandas()})
      assert {:ok, %{"a" => [1, 2], "b" => ["x", "y"]}} = ErlangPython.decode(df)

      {:ok, grouped} =
        ErlangPython.eval(
          "pd.DataFrame({'k': ['a', 'b', 'a'], 'v': [1, 2, 3]}).groupby('k')['v'].sum()",
          %{pd: pandas()}
        )

      assert {:ok, %{"k" => ["a", "b"], "v" => [4, 2]}} = ErlangPython.decode(grouped)
      assert {:ok, 3} = ErlangPython.eval("pd.DataFrame({'a': [1, 2]})['a'].sum()", %{pd: pandas()})

      {:ok, dup} = ErlangPython.eval("pd.DataFrame([[1, 2]], columns=['a', 'a'])", %{pd: pandas()})
      assert {:error, %ErlangPython.Error{type: "ValueError"}} = ErlangPython.decode(dup)
    end

    test "a DataFrame itself stays a handle; its columns come back as arrays when asked" do
      assert {:ok, %Object{type: "pandas." <> _}} =
               ErlangPython.eval("pd.DataFrame({'a': [1.0]})", %{pd: pandas()})

      assert {:ok, %{"a" => %Array{type: {:f, 64}} = a}} =
               ErlangPython.eval(
                 "{c: df[c].to_numpy() for c in df}",
                 %{
                   df:
                     elem(ErlangPython.eval("pd.DataFrame({'a': [1.5, 2.5]})", %{pd: pandas()}), 1)
                 },
                 arrays: true
               )

      assert Array.to_list(a) == [1.5, 2.5]
    end
  end

  defp numpy, do: elem(ErlangPython.eval("__import__('numpy')", %{}, decode: false), 1)
  defp pandas, do: elem(ErlangPython.eval("__import__('pandas')", %{}, decode: false), 1)

  defp frombuffer_locals(data) do
    {:ok, a} =
      ErlangPython.eval("np.frombuffer(b, dtype='float64')", %{np: numpy(), b: {:buffer, data}},
        decode: false
      )

    %{a: a}
  end

  defp rss_kb do
    :erlang.garbage_collect()

    [line] =
      "/proc/self/status"
      |> File.read!()
      |> String.split("\n")
      |> Enum.filter(&String.starts_with?(&1, "VmRSS:"))

    [_, kb, "kB"] = String.split(line)
    String.to_integer(kb)
  end
end
