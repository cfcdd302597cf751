defmodule ErlangPython.DataTypesTest do
  # Dates, times, decimals, UUIDs, buffers as memoryviews and arrays,
  # ErlangPython.Encoder and registered decoders: everything here needs
  # only the standard library (numpy and pandas: test/numpy_test.exs).
  use ExUnit.Case, async: true

  import ErlangPython.TestHelpers, only: [not_utf8: 1, received: 1, sha256_hex: 1]

  alias ErlangPython.{Array, Object}
  alias ErlangPython.Test.{Money, Wrapper}

  defp repr(value) do
    {:ok, text} = ErlangPython.eval("repr(v)", %{v: value})
    text
  end

  describe "dates and times" do
    test "Date, Time and NaiveDateTime become date, time and naive datetime, and come back equal" do
      assert repr(~D[2024-02-29]) == "datetime.date(2024, 2, 29)"
      assert repr(~T[23:59:58.123456]) == "datetime.time(23, 59, 58, 123456)"
      assert repr(~N[2024-01-02 03:04:05]) == "datetime.datetime(2024, 1, 2, 3, 4, 5)"

      for value <- [~D[2024-02-29], ~T[23:59:58.123456], ~N[2024-01-02 03:04:05.000001]] do
        assert {:ok, back} = ErlangPython.eval("v", %{v: value})
        assert back.__struct__ == value.__struct__
        assert to_string(back) == to_string(value) or back == value
      end

      assert {:ok, ~D[2000-01-01]} = ErlangPython.eval("__import__('datetime').date(2000, 1, 1)")

      assert {:ok, ~N[2000-01-01 10:00:00.000000]} =
               ErlangPython.eval("__import__('datetime').datetime(2000, 1, 1, 10)")
    end

    test "a UTC DateTime is an aware datetime in timezone.utc, and back an equal DateTime" do
      now = DateTime.utc_now()

      assert {:ok, {true, 0}} =
               ErlangPython.eval(
                 "(v.tzinfo is __import__('datetime').timezone.utc, int(v.utcoffset().total_seconds()))",
                 %{v: now}
               )

      assert {:ok, back} = ErlangPython.eval("v", %{v: now})
      assert DateTime.compare(back, now) == :eq
      assert back.time_zone == "Etc/UTC"
    end

    test "zones: a ZoneInfo keeps its key and offsets; a fixed offset keeps its offset" do
      assert {:ok, paris} =
               ErlangPython.eval(
                 "__import__('datetime').datetime(2024, 7, 1, 12, 0, tzinfo=__import__('zoneinfo').ZoneInfo('Europe/Paris'))"
               )

      assert %DateTime{
               time_zone: "Europe/Paris",
               zone_abbr: "CEST",
               utc_offset: 3600,
               std_offset: 3600,
               hour: 12
             } = paris

      assert DateTime.to_iso8601(paris) == "2024-07-01T12:00:00.000000+02:00"
      # And back: the same zone, the same instant.
      assert {:ok, {"Europe/Paris", "2024-07-01T12:00:00+02:00"}} =
               ErlangPython.eval("(v.tzinfo.key, v.isoformat())", %{v: paris})

      assert {:ok, fixed} =
               ErlangPython.eval(
                 "__import__('datetime').datetime(2024, 1, 1, 9, 30, tzinfo=__import__('datetime').timezone(__import__('datetime').timedelta(hours=-5)))"
               )

      assert fixed.utc_offset + fixed.std_offset == -5 * 3600
      assert DateTime.to_iso8601(fixed) == "2024-01-01T09:30:00.000000-05:00"
      assert {:ok, "2024-01-01T09:30:00-05:00"} = ErlangPython.eval("v.isoformat()", %{v: fixed})
    end

    test "zones from any tzinfo: its dst splits the offset, its name or the offset names it" do
      :ok =
        ErlangPython.exec("""
        import datetime as _dt
        class _Summer(_dt.tzinfo):
            key = 5  # not a zone key: the name comes from tzname()
            def utcoffset(self, when):
                return _dt.timedelta(hours=3)
            def dst(self, when):
                return _dt.timedelta(hours=1)
            def tzname(self, when):
                return 'XST'
        class _Nameless(_dt.tzinfo):
            def utcoffset(self, when):
                return _dt.timedelta(hours=-3, minutes=-30)
            def dst(self, when):
                return None
            def tzname(self, when):
                return None
        def _at(tz):
            return _dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=tz)
        """)

      zone = fn code ->
        assert {:ok, %DateTime{} = value} = ErlangPython.eval(code)
        assert {value.year, value.hour, value.second} == {2024, 7, 9}
        {value.utc_offset, value.std_offset, value.time_zone, value.zone_abbr}
      end

      assert zone.("_at(_Summer())") == {7200, 3600, "XST", "XST"}
      assert zone.("_at(_Nameless())") == {-12_600, 0, "UTC-03:30", "UTC-03:30"}
      # Python names a fixed offset itself; the name is kept.
      assert zone.("_at(_dt.timezone(_dt.timedelta(hours=5, minutes=30)))") ==
               {19_800, 0, "UTC+05:30", "UTC+05:30"}

      assert zone.("_at(_dt.timezone(_dt.timedelta(0), 'GMT'))") == {0, 0, "GMT", "GMT"}
      # Seconds of an offset are kept, its fraction dropped toward zero.
      assert {-90, 0, "UTC-00:01:30.500000", _} =
               zone.("_at(_dt.timezone(-_dt.timedelta(seconds=90, microseconds=500000)))")
    end

    test "a DateTime goes to its ZoneInfo in the fold of its offset, or to a fixed offset" do
      dt = fn {h, m}, zone, abbr, utc_offset, std_offset ->
        %DateTime{
          year: 2024,
          month: 10,
          day: 27,
          hour: h,
          minute: m,
          second: 0,
          microsecond: {5, 6},
          time_zone: zone,
          zone_abbr: abbr,
          utc_offset: utc_offset,
          std_offset: std_offset
        }
      end

      described =
        "(type(v.tzinfo).__name__, getattr(v.tzinfo, 'key', None), v.fold, v.tzname(), v.isoformat())"

      # 02:30 on 2024-10-27 comes twice in Paris: at +02:00, then at +01:00.
      assert {:ok, {"ZoneInfo", "Europe/Paris", 0, "CEST", "2024-10-27T02:30:00.000005+02:00"}} =
               ErlangPython.eval(described, %{v: dt.({2, 30}, "Europe/Paris", "CEST", 3600, 3600)})

      assert {:ok, {"ZoneInfo", "Europe/Paris", 1, "CET", "2024-10-27T02:30:00.000005+01:00"}} =
               ErlangPython.eval(described, %{v: dt.({2, 30}, "Europe/Paris", "CET", 3600, 0)})

      # An offset the zone never has there, a zone zoneinfo does not know, a
      # zone without a `/`: a fixed offset named by the abbreviation, or by
      # Python when there is none.
      assert {:ok, {"timezone", nil, 0, "XYZ", "2024-10-27T12:00:00.000005+05:00"}} =
               ErlangPython.eval(described, %{v: dt.({12, 0}, "Europe/Paris", "XYZ", 18_000, 0)})

      assert {:ok, {"timezone", nil, 0, "OLY", "2024-10-27T12:00:00.000005-03:30"}} =
               ErlangPython.eval(described, %{v: dt.({12, 0}, "Mars/Olympus", "OLY", -12_600, 0)})

      assert {:ok, {"timezone", nil, 0, "UTC+02:00", "2024-10-27T12:00:00.000005+02:00"}} =
               ErlangPython.eval(described, %{v: dt.({12, 0}, "Nowhere", "", 7200, 0)})

      assert {:ok, {"timezone", nil, 0, "UTC", "2024-10-27T12:00:00.000005+00:00"}} =
               ErlangPython.eval(described, %{v: dt.({12, 0}, "Etc/UTC", "UTC", 0, 0)})

      # timezone() takes offsets within a day only.
      assert {:error, %ErlangPython.Error{type: "ValueError"}} =
               ErlangPython.eval("v", %{v: dt.({12, 0}, "Nowhere", "", 90_000, 0)})
    end

    test "a tzinfo with no offset makes a naive datetime; one that raises is the caller's error" do
      :ok =
        ErlangPython.exec("""
        import datetime as _dt
        class _NoOffset(_dt.tzinfo):
            def utcoffset(self, when):
                return None
        class _Broken(_dt.tzinfo):
            def utcoffset(self, when):
                raise ValueError('no offset today')
        """)

      # Naive, as Python's docs define it.
      assert {:ok, ~N[2024-01-01 00:00:00.000000]} =
               ErlangPython.eval("_dt.datetime(2024, 1, 1, tzinfo=_NoOffset())")

      # In a small result and in a large one.
      broken = "_dt.datetime(2024, 1, 1, tzinfo=_Broken())"

      for code <- [broken, "list(range(10000)) + [#{broken}]"] do
        assert {:error, %ErlangPython.Error{type: "ValueError", message: message}} =
                 ErlangPython.eval(code)

        assert message =~ "no offset today"
      end
    end

    test "timedelta is {:timedelta, microseconds}, both ways; Duration goes to timedelta" do
      assert {:ok, {:timedelta, -86_395_000_000}} =
               ErlangPython.eval("__import__('datetime').timedelta(days=-1, seconds=5)")

      assert repr({:timedelta, 1_500_000}) == "datetime.timedelta(seconds=1, microseconds=500000)"

      if Code.ensure_loaded?(Duration) do
        duration = struct(Duration, hour: 1, minute: 2, microsecond: {5, 6})
        assert {:ok, 3_720.000005} = ErlangPython.eval("v.total_seconds()", %{v: duration})
      end
    end

    test "another calendar is refused, not sent as a dict" do
      date = %{~D[2024-01-01] | calendar: Some.Calendar}

      assert {:error, %ErlangPython.Error{type: "TypeError", message: message}} =
               ErlangPython.eval("v", %{v: date})

      assert message =~ "Calendar.ISO"
    end
  end

  describe "decimals and UUIDs" do
    test "Decimal is the decimal package's struct, both ways, exactly" do
      assert {:ok, %{__struct__: Decimal, sign: -1, coef: 150, exp: -2}} =
               ErlangPython.eval("__import__('decimal').Decimal('-1.50')")

      big = "123456789012345678901234567890.000000001"

      assert {:ok, %{coef: coef, exp: -9}} =
               ErlangPython.eval("__import__('decimal').Decimal(v)", %{v: big})

      assert coef == 123_456_789_012_345_678_901_234_567_890_000_000_001
      assert {:ok, ^big} = ErlangPython.eval("str(__import__('decimal').Decimal(v))", %{v: big})

      assert repr(%{__struct__: Decimal, sign: -1, coef: 150, exp: -2}) == "Decimal('-1.50')"
      assert repr(%{__struct__: Decimal, sign: 1, coef: :inf, exp: 0}) == "Decimal('Infinity')"
      assert {:ok, %{coef: :NaN}} = ErlangPython.eval("__import__('decimal').Decimal('NaN')")
    end

    test "every kind of Decimal keeps its sign, digits and exponent both ways, whatever the context" do
      :ok =
        ErlangPython.exec("""
        import decimal, erlang
        def send_in_context(p, texts):
            # A context that rounds to 3 digits and writes a lower-case
            # exponent: the conversion is exact and reads either letter.
            with decimal.localcontext() as context:
                context.prec = 3
                context.capitals = 0
                values = [decimal.Decimal(t) for t in texts]
                assert 'e' in str(values[4])
                erlang.send(p, values)
        """)

      texts = [
        {"-1.50", {-1, 150, -2}},
        {"0", {1, 0, 0}},
        {"-0", {-1, 0, 0}},
        {"-0E-9", {-1, 0, -9}},
        {"1E+10", {1, 1, 10}},
        {"1.23E-7", {1, 123, -9}},
        {"0.000123", {1, 123, -6}},
        {"9999999999999999999", {1, 9_999_999_999_999_999_999, 0}},
        {"123456789012345678901234567890.000000001",
         {1, 123_456_789_012_345_678_901_234_567_890_000_000_001, -9}},
        {"-1.2345678901234567890E+999", {-1, 12_345_678_901_234_567_890, 980}},
        {"Infinity", {1, :inf, 0}},
        {"-Infinity", {-1, :inf, 0}},
        {"NaN", {1, :NaN, 0}},
        {"-sNaN7", {-1, :NaN, 0}}
      ]

      for {text, {sign, coef, exp}} <- texts do
        assert {:ok, %{__struct__: Decimal, sign: ^sign, coef: ^coef, exp: ^exp} = value} =
                 ErlangPython.eval("decimal.Decimal(t)", %{t: text}),
               text

        # Back in Python: the same digits and exponent (NaNs lose a payload
        # and signal, as the decimal package has no form for them).
        expected = if coef == :NaN, do: "NaN", else: text

        assert {:ok, {^expected, true}} =
                 ErlangPython.eval("(str(v), isinstance(v, decimal.Decimal))", %{
                   v: value
                 }),
               text
      end

      expected =
        Enum.map(texts, fn {_, {sign, coef, exp}} -> %{sign: sign, coef: coef, exp: exp} end)

      sent = Enum.map(texts, &elem(&1, 0))
      assert {:ok, nil} = ErlangPython.call(:__main__, :send_in_context, [self(), sent])
      assert_receive values when is_list(values)
      assert Enum.map(values, &Map.take(&1, [:sign, :coef, :exp])) == expected

      many =
        for i <- 1..3000,
            do: %{__struct__: Decimal, sign: 1 - 2 * rem(i, 2), coef: i * 7, exp: -rem(i, 5)}

      assert {:ok, ^many} = ErlangPython.eval("list(v)", %{v: many})
    end

    test "a Decimal of more digits than Python converts between int and str keeps them all, both ways" do
      # Python refuses str(int) and int(str) beyond sys.get_int_max_str_digits()
      # (4,300 by default, at least 640); its decimal module has no such limit.
      :ok =
        ErlangPython.exec("""
        import decimal, sys
        def decimal_digits(d):
            return len(d.as_tuple().digits), d.as_tuple().exponent, d.is_signed()
        """)

      limit = ErlangPython.eval!("sys.get_int_max_str_digits()")
      digits = limit + 700
      coef = 10 ** (digits - 1) + 987_654_321

      for {sign, exp} <- [{1, 0}, {-1, -digits - 3}, {1, 12}] do
        value = %{__struct__: Decimal, sign: sign, coef: coef, exp: exp}

        assert {:ok, [^digits, ^exp, negative]} =
                 ErlangPython.eval("list(decimal_digits(v))", %{v: value})

        assert negative == sign < 0
        text = "#{if sign < 0, do: "-"}#{coef}E#{exp}"

        assert {:ok, %{__struct__: Decimal, sign: ^sign, coef: ^coef, exp: ^exp}} =
                 ErlangPython.eval("decimal.Decimal(t)", %{t: text})

        assert {:ok, ^value} = ErlangPython.eval("v", %{v: value})
      end

      # In a large result too, and with the limit at its lowest (640) for
      # coefficients of 1,000 digits.
      many = for i <- 1..300, do: %{__struct__: Decimal, sign: 1, coef: coef + i, exp: -i}
      assert {:ok, ^many} = ErlangPython.eval("list(v)", %{v: many})
      :ok = ErlangPython.exec("sys.set_int_max_str_digits(640)")

      try do
        thousand =
          for i <- 1..300, do: %{__struct__: Decimal, sign: -1, coef: 10 ** 999 + i, exp: i}

        assert {:ok, ^thousand} = ErlangPython.eval("list(v)", %{v: thousand})

        assert {:ok, [1000, 1, true]} =
                 ErlangPython.eval("list(decimal_digits(v[0]))", %{v: thousand})
      after
        ErlangPython.exec("sys.set_int_max_str_digits(#{limit})")
      end
    end

    test "a Decimal with a bad sign or coefficient is refused with a clear error" do
      for {decimal, type} <- [
            {%{__struct__: Decimal, sign: 2, coef: 1, exp: 0}, "ValueError"},
            {%{__struct__: Decimal, sign: 1, coef: -5, exp: 0}, "ValueError"},
            {%{__struct__: Decimal, sign: 1, coef: -(2 ** 80), exp: 0}, "ValueError"},
            {%{__struct__: Decimal, sign: 1, coef: 1.5, exp: 0}, "TypeError"},
            {%{__struct__: Decimal, sign: 1, coef: 1, exp: :x}, "TypeError"}
          ] do
        assert {:error, %ErlangPython.Error{type: ^type}} = ErlangPython.eval("v", %{v: decimal}),
               inspect(decimal)
      end
    end

    test "UUID is its text; {:uuid, text or 16 bytes} is a uuid.UUID" do
      assert {:ok, "12345678-1234-5678-1234-567812345678"} =
               ErlangPython.eval("__import__('uuid').UUID('12345678123456781234567812345678')")

      assert repr({:uuid, "12345678-1234-5678-1234-567812345678"}) ==
               "UUID('12345678-1234-5678-1234-567812345678')"

      assert repr({:uuid, <<0::120, 5>>}) == "UUID('00000000-0000-0000-0000-000000000005')"
    end

    test "{:uuid, 16 bytes} is the very UUID uuid.UUID(bytes=...) makes" do
      # Made without UUID.__init__'s checks (convert/numeric.rs, uuid_of):
      # the same value, fields, version, safety, hash and pickled form.
      compare = """
      (u == uuid.UUID(bytes=b), u.fields == uuid.UUID(bytes=b).fields, u.version,
       u.is_safe is uuid.SafeUUID.unknown, hash(u) == hash(uuid.UUID(bytes=b)),
       pickle.loads(pickle.dumps(u)) == u, type(u) is uuid.UUID, str(u))
      """

      :ok = ErlangPython.exec("import uuid, pickle")

      for bytes <- [<<0::128>>, <<255::8, 0::120>>, :crypto.strong_rand_bytes(16)] do
        hex = Base.encode16(bytes, case: :lower)

        text =
          Enum.join(
            for(
              {at, len} <- [{0, 8}, {8, 4}, {12, 4}, {16, 4}, {20, 12}],
              do: binary_part(hex, at, len)
            ),
            "-"
          )

        version = Bitwise.band(:binary.at(bytes, 6), 0xF0) |> Bitwise.bsr(4)

        expected_version =
          if Bitwise.band(:binary.at(bytes, 8), 0xC0) == 0x80, do: version, else: nil

        assert {:ok, {true, true, ^expected_version, true, true, true, true, ^text}} =
                 ErlangPython.eval(compare, %{u: {:uuid, bytes}, b: {:bytes, bytes}})
      end
    end

    test "{:uuid, text} is the UUID uuid.UUID(text) makes of every form it reads, or its error" do
      :ok = ErlangPython.exec("import uuid")
      hex = "0123456789abcdeffedcba9876543210"

      forms = [
        "01234567-89ab-cdef-fedc-ba9876543210",
        String.upcase("01234567-89ab-cdef-fedc-ba9876543210"),
        hex,
        "{01234567-89ab-cdef-fedc-ba9876543210}",
        "urn:uuid:01234567-89ab-cdef-fedc-ba9876543210",
        "uuid:{0123-4567-89ab-cdef-fedc-ba98-7654-3210}",
        # int(_, 16) reads an underscore between digits: uuid.UUID reads it.
        String.duplicate("0", 15) <> "_" <> String.duplicate("1", 16)
      ]

      for text <- forms do
        assert {:ok, {true, true, str}} =
                 ErlangPython.eval("(v == uuid.UUID(t), type(v) is uuid.UUID, str(v))", %{
                   v: {:uuid, text},
                   t: text
                 }),
               text

        assert String.length(str) == 36
      end

      for text <- [
            "",
            "not a uuid",
            String.slice(hex, 1..-1//1),
            hex <> "0",
            String.duplicate("g", 32)
          ] do
        assert {:error, %ErlangPython.Error{type: "ValueError"}} =
                 ErlangPython.eval("v", %{v: {:uuid, text}}),
               text

        assert {:error, %ErlangPython.Error{type: "ValueError"}} =
                 ErlangPython.eval("uuid.UUID(t)", %{t: text})
      end
    end

    test "a UUID from Python is str(uuid), in a small result and a large one" do
      :ok =
        ErlangPython.exec("""
        import uuid
        uuid_edges = [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), uuid.UUID(int=2**127 + 5)]
        uuid_many = uuid_edges + [uuid.uuid4() for _ in range(5000)]
        """)

      assert {:ok,
              ["00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff", _]} =
               ErlangPython.eval("uuid_edges")

      {:ok, texts} = ErlangPython.eval("[str(u) for u in uuid_many]")
      assert {:ok, ^texts} = ErlangPython.eval("uuid_many")
      assert length(texts) == 5003
    end
  end

  describe "binaries of many megabytes" do
    # From 8 MB the copy into Python asks for huge pages for the buffer's
    # whole 2 MiB pages (convert/pyobjects.rs): the odd sizes leave
    # unaligned ends on both sides, and every byte must still arrive.
    test "arrive whole as bytes, as str, and as bytes when they are not UTF-8" do
      ascii =
        :binary.part(:binary.copy("0123456789abcdefghijklmnopqrstuvwxyz\n", 600_000), 0, 20_971_529)

      raw = not_utf8(11_111_117)

      for {value, data, type} <- [
            {{:bytes, ascii}, ascii, "bytes"},
            {ascii, ascii, "str"},
            {raw, raw, "bytes"}
          ] do
        assert received(value) == {:ok, [type, byte_size(data), sha256_hex(data)]}
      end
    end
  end

  describe "binaries as buffers" do
    test "a binary of small int32s is valid UTF-8 and arrives as str; {:buffer, bin} is a read-only memoryview" do
      ints = <<1::little-32, 2::little-32, 3::little-32>>
      assert String.valid?(ints)
      assert {:ok, "str"} = ErlangPython.eval("type(v).__name__", %{v: ints})

      assert {:ok, {"memoryview", true, "B", 12, [1, 2, 3]}} =
               ErlangPython.eval(
                 "(type(v).__name__, v.readonly, v.format, v.nbytes, v.cast('i').tolist())",
                 %{v: {:buffer, ints}}
               )
    end

    test "the view cannot be written, and outlives the request that made it" do
      data = :binary.copy(<<7>>, 1_000_000)

      assert {:error, %ErlangPython.Error{type: "TypeError"}} =
               ErlangPython.eval("v.__setitem__(0, 1)", %{v: {:buffer, data}})

      :ok = ErlangPython.exec("_kept_views = []")
      assert {:ok, nil} = ErlangPython.eval("_kept_views.append(v)", %{v: {:buffer, data}})
      :erlang.garbage_collect()

      assert {:ok, {1_000_000, 7_000_000}} =
               ErlangPython.eval("(len(_kept_views[0]), sum(_kept_views[0]))")

      :ok = ErlangPython.exec("del _kept_views")
    end

    test "an Array is a typed, shaped memoryview; a wrong size is an error" do
      array = %Array{
        data:
          <<1.5::float-native-64, 2.5::float-native-64, 0.0::float-native-64, 1.0::float-native-64>>,
        type: {:f, 64},
        shape: {2, 2}
      }

      assert {:ok, {"d", {2, 2}, rows}} =
               ErlangPython.eval("(v.format, v.shape, v.tolist())", %{v: array})

      assert rows == [[1.5, 2.5], [0.0, 1.0]]

      assert {:error, %ErlangPython.Error{type: "ValueError", message: message}} =
               ErlangPython.eval("v", %{v: %{array | shape: {3, 2}}})

      assert message =~ "needs 48 bytes"
    end

    test "arrays: true returns array.array and memoryview as Arrays; by default they stay handles" do
      code = "__import__('array').array('i', [1, -2, 3])"
      assert {:ok, %Object{type: "array.array"}} = ErlangPython.eval(code)

      assert {:ok, %Array{type: {:s, 32}, shape: {3}} = array} =
               ErlangPython.eval(code, %{}, arrays: true)

      assert Array.to_list(array) == [1, -2, 3]

      assert {:ok, %{"m" => %Array{type: {:f, 32}, shape: {2, 2}} = m}} =
               ErlangPython.eval(
                 "{'m': memoryview(__import__('array').array('f', [1, 2, 3, 4])).cast('B').cast('f', [2, 2])}",
                 %{},
                 arrays: true
               )

      assert Array.to_list(m) == [1.0, 2.0, 3.0, 4.0]
      # bytes stay binaries.
      assert {:ok, "ab"} = ErlangPython.eval("b'ab'", %{}, arrays: true)
    end

    test "Array.from_python/2 reads a handle's buffer, and says when there is none" do
      {:ok, handle} = ErlangPython.eval("__import__('array').array('d', [0.5])", %{}, decode: false)

      assert {:ok, %Array{type: {:f, 64}, shape: {1}, data: <<0.5::float-native-64>>}} =
               Array.from_python(handle)

      {:ok, other} = ErlangPython.eval("object()")
      assert {:error, {:not_a_buffer, "object"}} = Array.from_python(other)
    end

    test "a writable array.array is copied: changing it later does not change the binary" do
      :ok = ErlangPython.exec("_arr = __import__('array').array('b', [1, 2, 3])")
      assert {:ok, %Array{data: <<1, 2, 3>> = data}} = ErlangPython.eval("_arr", %{}, arrays: true)
      :ok = ErlangPython.exec("_arr[0] = 9")
      assert data == <<1, 2, 3>>
      :ok = ErlangPython.exec("del _arr")
    end

    test "a buffer format with no array type is an error naming it" do
      assert {:error, %ErlangPython.Error{type: "TypeError", message: message}} =
               ErlangPython.eval("memoryview(b'abcdefgh').cast('P')", %{}, arrays: true)

      assert message =~ "format \"P\""
    end
  end

  describe "ErlangPython.Encoder" do
    test "a struct with an implementation goes as its encoding; others as a dict with __struct__" do
      money = %Money{amount: 12, currency: :eur}
      assert {:ok, %{"amount" => 12, "currency" => "eur"}} = ErlangPython.eval("v", %{v: money})

      assert {:ok, {"wrapped", %{"amount" => 1}}} =
               ErlangPython.call(:builtins, :tuple, [[:wrapped, %{"amount" => 1}]])

      assert {:ok, ["wrapped", %{"amount" => 1, "currency" => "usd"}]} =
               ErlangPython.call(:builtins, :list, [
                 %Wrapper{inner: %Money{amount: 1, currency: :usd}}
               ])

      assert {:ok, %{"__struct__" => "Elixir.URI", "host" => "example.com"}} =
               ErlangPython.eval("v", %{v: URI.parse("http://example.com")})
    end
  end

  describe "registered decoders" do
    test "from Elixir and from Python, nested anywhere, and removable" do
      :ok = ErlangPython.exec("def _as_pair(f):\n    return (f.numerator, f.denominator)")
      assert :ok = ErlangPython.register_decoder("fractions.Fraction", {:__main__, :_as_pair})

      assert {:ok, [%{"x" => {1, 3}}]} =
               ErlangPython.eval("[{'x': __import__('fractions').Fraction(1, 3)}]")

      assert :ok = ErlangPython.register_decoder("fractions.Fraction", nil)
      assert {:ok, %Object{}} = ErlangPython.eval("__import__('fractions').Fraction(1, 3)")

      assert {:ok, "complex"} =
               ErlangPython.eval(
                 "__import__('erlang').register_decoder(complex, lambda c: (c.real, c.imag))"
               )

      assert {:ok, {1.0, 2.0}} = ErlangPython.eval("1+2j")
      assert {:ok, _} = ErlangPython.eval("__import__('erlang').register_decoder('complex', None)")
      assert {:ok, %Object{type: "complex"}} = ErlangPython.eval("1+2j")
    end

    test "a decoder that raises is the call's error" do
      :ok = ErlangPython.exec("class _Odd: pass\ndef _bad(o):\n    raise ValueError('no form')")
      :ok = ErlangPython.register_decoder("__main__._Odd", {:__main__, :_bad})
      assert {:error, %ErlangPython.Error{type: "ValueError"}} = ErlangPython.eval("_Odd()")
      :ok = ErlangPython.register_decoder("__main__._Odd", nil)
    end
  end

  describe "decode/1" do
    test "an iterator or generator is not consumed: it stays a handle; sequences become lists" do
      {:ok, gen} = ErlangPython.eval("(i for i in range(3))")
      assert {:ok, %Object{type: "generator"}} = ErlangPython.decode(gen)
      assert {:ok, 0} = ErlangPython.call(:builtins, :next, [gen])

      {:ok, seq} = ErlangPython.eval("range(3)")
      assert {:ok, [0, 1, 2]} = ErlangPython.decode(seq)
      {:ok, deque} = ErlangPython.eval("__import__('collections').deque([1, 2])")
      assert {:ok, [1, 2]} = ErlangPython.decode(deque)
    end
  end
end
