# What a request costs the interpreter thread, by kind:
#   MIX_ENV=prod mix run bench/worker_costs.exs
#
# Wall times of small calls swing with the machine's load (see
# bench/sequential.exs); the time the worker is busy with a request moves
# much less. For each kind this prints the worker's busy microseconds per
# request (`ErlangPython.pool_stats/0`: `busy_us` over `completed`, 200,000
# requests one after another), then the milliseconds to pass a list of
# 100,000 values of the types converted through Python helpers
# (`builtins.len` of it, best of 5), and to take lists of 100,000 dates,
# datetimes, timedeltas and (for scale) small dicts from Python (best of 5).
#
# Figures on the development VM (3 runs each, alternated with the build
# before): `eval("1 + 1")` 1.1-1.7 us, against 2.7-7.0 before `__main__`
# was found without the import system; 100,000 UTC DateTimes 52-66 ms,
# against 453-603 before they were built without the helper; 100,000
# dates from Python 130-164 ms, against 295-427 before they were written
# straight into the external format (92-97 on the next VM once the decoder
# registry was looked up once per result); 100,000 UTC datetimes from
# Python 229-267 ms, against 680-928 through the zone helper; 100,000
# datetimes at +02:00 from Python 311-373 ms, against 640-770 before their
# zone was read in Rust (3 runs alternated; in Europe/Paris 280-309 against
# 699-905); 100,000 UUIDs from Python 30 ms, against 200-298 through
# `str(uuid)`, and as many `{:uuid, text}` to Python 179-190 ms, against
# 321-357 through `uuid.UUID(text)` (3 runs alternated); 100,000
# Decimals to Python 87-123 ms and from Python 118-139, against 295-513
# and 565-669 through the helper's `as_tuple()`; 100,000 DateTimes in
# Europe/Paris to Python 140-157 ms, against 384-454 through the helper
# (3 runs alternated each).
# On Debian 13: bin/test-trixie --exec env MIX_ENV=prod mix run bench/worker_costs.exs
Code.require_file("machine.exs", __DIR__)

defmodule Bench.WorkerCosts do
  @requests 200_000

  # The worker's busy microseconds per request over @requests calls of `fun`.
  def busy_us(fun) do
    for _ <- 1..20_000, do: fun.()
    {busy_before, done_before} = busy()
    for _ <- 1..@requests, do: fun.()
    {busy_after, done_after} = busy()
    (busy_after - busy_before) / max(done_after - done_before, 1)
  end

  defp busy do
    counts = Bench.Machine.worker_counts([:busy_us, :completed])
    {counts[:busy_us], counts[:completed]}
  end

  # Best of 5: milliseconds to take the list Python's `name` holds (made in
  # __main__ by `code`), 100,000 values.
  def returned_ms(name, code) do
    :ok = ErlangPython.exec("import datetime\n#{name} = #{code}")

    Enum.min(
      for _ <- 1..5 do
        {us, {:ok, list}} = :timer.tc(fn -> ErlangPython.eval(name) end)
        100_000 = length(list)
        us / 1000
      end
    )
  end

  # A UUID's 8-4-4-4-12 text.
  def uuid_text(<<a::binary-4, b::binary-2, c::binary-2, d::binary-2, e::binary-6>>) do
    Enum.map_join([a, b, c, d, e], "-", &Base.encode16(&1, case: :lower))
  end

  # Best of 5: milliseconds to pass `list` to Python and take its length.
  def list_ms(list) do
    length = length(list)

    Enum.min(
      for _ <- 1..5 do
        {us, {:ok, ^length}} = :timer.tc(fn -> ErlangPython.call(:builtins, :len, [list]) end)
        us / 1000
      end
    )
  end
end

Bench.Machine.start("1 Python worker")

rows = [
  {"call operator.add(1, 2)", "us busy/request",
   Bench.WorkerCosts.busy_us(fn -> {:ok, 3} = ErlangPython.call(:operator, :add, [1, 2]) end)},
  {"eval \"1 + 1\"", "us busy/request",
   Bench.WorkerCosts.busy_us(fn -> {:ok, 2} = ErlangPython.eval("1 + 1") end)},
  {"eval \"x + 1\" with x: 1", "us busy/request",
   Bench.WorkerCosts.busy_us(fn -> {:ok, 2} = ErlangPython.eval("x + 1", %{x: 1}) end)},
  {"exec \"pass\"", "us busy/request",
   Bench.WorkerCosts.busy_us(fn -> :ok = ErlangPython.exec("pass") end)},
  {"100,000 UTC DateTimes to Python", "ms",
   Bench.WorkerCosts.list_ms(for i <- 1..100_000, do: DateTime.from_unix!(1_700_000_000 + i))},
  {"100,000 Paris DateTimes to Python", "ms",
   Bench.WorkerCosts.list_ms(
     for i <- 1..100_000 do
       %DateTime{
         year: 2024,
         month: 7,
         day: 1 + rem(i, 28),
         hour: rem(i, 24),
         minute: 0,
         second: 0,
         microsecond: {0, 6},
         time_zone: "Europe/Paris",
         zone_abbr: "CEST",
         utc_offset: 3600,
         std_offset: 3600
       }
     end
   )},
  {"100,000 NaiveDateTimes to Python", "ms",
   Bench.WorkerCosts.list_ms(for i <- 1..100_000, do: NaiveDateTime.add(~N[2024-01-01 00:00:00], i))},
  {"100,000 {:uuid, bytes} to Python", "ms",
   Bench.WorkerCosts.list_ms(for _ <- 1..100_000, do: {:uuid, :crypto.strong_rand_bytes(16)})},
  {"100,000 {:uuid, text} to Python", "ms",
   Bench.WorkerCosts.list_ms(
     for _ <- 1..100_000, do: {:uuid, Bench.WorkerCosts.uuid_text(:crypto.strong_rand_bytes(16))}
   )},
  {"100,000 Decimals to Python", "ms",
   Bench.WorkerCosts.list_ms(
     for i <- 1..100_000,
         do: %{__struct__: Decimal, sign: 1 - 2 * rem(i, 2), coef: i * 1237, exp: -2}
   )},
  {"100,000 Decimals from Python", "ms",
   Bench.WorkerCosts.returned_ms(
     "bench_decimals",
     "[__import__('decimal').Decimal(i * 1237).scaleb(-2) for i in range(100000)]"
   )},
  {"100,000 UUIDs from Python", "ms",
   Bench.WorkerCosts.returned_ms(
     "bench_uuids",
     "[__import__('uuid').uuid4() for _ in range(100000)]"
   )},
  {"100,000 dates from Python", "ms",
   Bench.WorkerCosts.returned_ms(
     "bench_dates",
     "[datetime.date(2024, 1, 1) + datetime.timedelta(days=i % 3000) for i in range(100000)]"
   )},
  {"100,000 naive datetimes from Python", "ms",
   Bench.WorkerCosts.returned_ms(
     "bench_naive",
     "[datetime.datetime(2024, 1, 1) + datetime.timedelta(seconds=i) for i in range(100000)]"
   )},
  {"100,000 UTC datetimes from Python", "ms",
   Bench.WorkerCosts.returned_ms(
     "bench_utc",
     "[datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=i) for i in range(100000)]"
   )},
  {"100,000 datetimes at +02:00 from Python", "ms",
   Bench.WorkerCosts.returned_ms(
     "bench_zoned",
     "[datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=2))) + datetime.timedelta(seconds=i) for i in range(100000)]"
   )},
  {"100,000 timedeltas from Python", "ms",
   Bench.WorkerCosts.returned_ms(
     "bench_deltas",
     "[datetime.timedelta(seconds=i) for i in range(100000)]"
   )},
  {"100,000 dicts of 8 keys from Python", "ms",
   Bench.WorkerCosts.returned_ms(
     "bench_dicts",
     "[dict(a=1, b=2, c=3, d=4, e=5, f=6, g=7, h=i) for i in range(100000)]"
   )}
]

for {name, unit, value} <- rows do
  IO.puts(
    String.pad_trailing(name, 40) <>
      String.pad_leading(:erlang.float_to_binary(value / 1, decimals: 2), 10) <> "  " <> unit
  )
end
