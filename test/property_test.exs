defmodule ErlangPython.PropertyTest do
  use ExUnit.Case, async: true

  alias ErlangPython.TermGenerator

  # Fixed seed: the same cases every run (CI included). Set PROPERTY_SEED to
  # explore others; a failure prints the seed and the term.
  @seed String.to_integer(System.get_env("PROPERTY_SEED", "20261125"))
  @cases 10_000

  setup_all do
    :ok = ErlangPython.exec("def _property_identity(x):\n    return x")
  end

  test "#{@cases} random nested terms round-trip through Python unchanged (seed #{@seed})" do
    :rand.seed(:exsss, {@seed, @seed, @seed})

    for case_number <- 1..@cases do
      term = TermGenerator.term(:rand.uniform(5))

      assert {:ok, back} = ErlangPython.call(:__main__, :_property_identity, [term]),
             "case #{case_number}: conversion failed for #{inspect(term, limit: :infinity)}"

      assert back === term,
             "case #{case_number} (seed #{@seed}): #{inspect(term, limit: :infinity)} came back as #{inspect(back, limit: :infinity)}"
    end
  end

  # The types converted in Rust by rules of Python's own (decimals, UUIDs,
  # aware datetimes), checked against what Python itself makes of the same
  # value, in batches of 2,000 random ones.
  describe "random values of the types with Python's own rules (seed #{@seed})" do
    setup do
      :rand.seed(:exsss, {@seed, @seed, @seed})
      :ok = ErlangPython.exec("import datetime, decimal, uuid, zoneinfo")
    end

    test "Decimals: the struct is what Decimal(text) is, both ways" do
      cases =
        for _ <- 1..2_000 do
          sign = Enum.random([1, -1])
          coef = :rand.uniform(Integer.pow(10, :rand.uniform(40))) - 1
          exp = :rand.uniform(61) - 31

          {%{__struct__: Decimal, sign: sign, coef: coef, exp: exp},
           "#{if sign < 0, do: "-"}#{coef}E#{exp}"}
        end

      {decimals, texts} = Enum.unzip(cases)

      # To Python: the same value, digits and exponent as Python reads them.
      assert {:ok, []} =
               ErlangPython.eval(
                 "[t for v, t in zip(vs, ts) if str(v) != str(decimal.Decimal(t))]",
                 %{vs: decimals, ts: texts}
               )

      # From Python, one by one and as a large result.
      assert {:ok, ^decimals} = ErlangPython.eval("[decimal.Decimal(t) for t in ts]", %{ts: texts})
    end

    test "UUIDs: text and bytes make uuid.UUID(int=n), and a UUID is str(uuid)" do
      ints = for _ <- 1..2_000, do: :rand.uniform(Integer.pow(2, 128)) - 1

      forms =
        for n <- ints do
          hex = n |> Integer.to_string(16) |> String.pad_leading(32, "0")

          case :rand.uniform(4) do
            1 -> {:uuid, <<n::128>>}
            2 -> {:uuid, String.downcase(hex)}
            3 -> {:uuid, "urn:uuid:" <> hex}
            4 -> {:uuid, "{" <> Enum.join(for(<<c::binary-8 <- hex>>, do: c), "-") <> "}"}
          end
        end

      assert {:ok, []} =
               ErlangPython.eval(
                 "[n for u, n in zip(us, ns) if not (type(u) is uuid.UUID and u.int == n)]",
                 %{us: forms, ns: ints}
               )

      assert {:ok, texts} = ErlangPython.eval("[str(uuid.UUID(int=n)) for n in ns]", %{ns: ints})
      assert {:ok, ^texts} = ErlangPython.eval("[uuid.UUID(int=n) for n in ns]", %{ns: ints})
    end

    test "aware datetimes: the instant, offset and zone survive, in fixed offsets and in zones with DST" do
      zones = [
        "Europe/Paris",
        "America/New_York",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
        "America/St_Johns"
      ]

      :ok =
        ErlangPython.exec("""
        def _aware(seconds, micro, zone, minutes):
            tz = zoneinfo.ZoneInfo(zone) if zone else datetime.timezone(datetime.timedelta(minutes=minutes))
            at = datetime.datetime.fromtimestamp(seconds, tz).replace(microsecond=micro)
            iso = at.isoformat(timespec='microseconds')
            if not zone and at.utcoffset() == datetime.timedelta(0):
                # timezone(timedelta(0)) is timezone.utc.
                return at, iso.replace('+00:00', 'Z'), 'Etc/UTC', 'UTC'
            return at, iso, zone or at.tzname(), at.tzname()
        """)

      cases =
        for _ <- 1..2_000 do
          seconds = :rand.uniform(2_000_000_000)
          zone = if :rand.uniform(2) == 1, do: Enum.random(zones), else: nil
          [seconds, :rand.uniform(1_000_000) - 1, zone, :rand.uniform(2 * 1439) - 1440]
        end

      assert {:ok, made} = ErlangPython.eval("[_aware(*c) for c in cs]", %{cs: cases})

      for {value, iso, zone, abbr} <- made do
        assert %DateTime{time_zone: ^zone, zone_abbr: ^abbr} = value
        assert DateTime.to_iso8601(value) == iso
      end

      # Back in Python: the same instant, offset and zone.
      values = Enum.map(made, &elem(&1, 0))

      assert {:ok, []} =
               ErlangPython.eval(
                 """
                 [i for i, (v, c) in enumerate(zip(vs, cs)) if (v, v.utcoffset(), v.tzname())
                  != (lambda a: (a, a.utcoffset(), a.tzname()))(_aware(*c)[0])]
                 """,
                 %{vs: values, cs: cases}
               )
    end
  end

  test "the generator covers every kind of value it promises" do
    :rand.seed(:exsss, {@seed, @seed, @seed})
    terms = for _ <- 1..@cases, do: TermGenerator.term(:rand.uniform(5))
    flat = Enum.flat_map(terms, &flatten/1)

    for {kind, check} <- [
          big_integer: &(is_integer(&1) and abs(&1) > Integer.pow(2, 64)),
          float: &is_float/1,
          utf8: &(is_binary(&1) and String.valid?(&1) and &1 != ""),
          not_utf8: &(is_binary(&1) and not String.valid?(&1)),
          pid: &is_pid/1,
          reference: &is_reference/1,
          map: &(is_map(&1) and not is_struct(&1) and map_size(&1) > 0),
          mapset: &(is_struct(&1, MapSet) and MapSet.size(&1) > 0),
          tuple: &is_tuple/1
        ] do
      assert Enum.any?(flat, check), "no #{kind} generated"
    end
  end

  defp flatten(%MapSet{} = set), do: [set | Enum.flat_map(set, &flatten/1)]

  defp flatten(map) when is_map(map),
    do: [map | Enum.flat_map(map, fn {k, v} -> flatten(k) ++ flatten(v) end)]

  defp flatten(list) when is_list(list), do: [list | Enum.flat_map(list, &flatten/1)]
  defp flatten(tuple) when is_tuple(tuple), do: [tuple | flatten(Tuple.to_list(tuple))]
  defp flatten(other), do: [other]
end
