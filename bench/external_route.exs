# Is the external-format route (src/convert/external.rs: results of 64
# items and more) worth it for maps on this VM, and what does an odd item
# cost it? Times maps of 1,000, 20,000 and 100,000 keys returned three ways
# in one run, alternating:
#   route:  the plain map, which takes the route;
#   spliced: the map plus one `datetime.date` value, which has no plain
#           form: converted on its own and spliced in (until the splice,
#           this column's map went the direct way after being written up
#           to the date in vain, and was called "direct");
#   direct: the map plus one `object()` (a handle, never spliced), which
#           sends the whole map the direct way.
# Then many callers at once, each decoding its large reply on its own
# scheduler, with the lateness of a 1 ms timer meanwhile (binary_to_term
# yields, so the timer should stay near 1 ms whatever the callers do).
#   MIX_ENV=prod mix run bench/external_route.exs
#   bin/test-trixie --exec env MIX_ENV=prod mix run bench/external_route.exs
runs = String.to_integer(System.get_env("BENCH_RUNS") || "11")

:ok =
  ErlangPython.exec("""
  import datetime
  def plain(n):
      return {f"key{i}": i for i in range(n)}
  def spliced(n):
      d = plain(n)
      d["date"] = datetime.date(2020, 1, 1)
      return d
  def direct(n):
      d = plain(n)
      d["object"] = object()
      return d
  _EXISTING = {n: plain(n) for n in (20_000, 100_000)}
  def existing(n):
      return _EXISTING[n]
  _LATE_DATE = list(range(1_000_000)) + [datetime.date(2020, 1, 1)]
  def late_date():
      return _LATE_DATE
  _LATE_OBJECT = list(range(1_000_000)) + [object()]
  def late_object():
      return _LATE_OBJECT
  """)

time = fn function, args ->
  {us, {:ok, value}} = :timer.tc(fn -> ErlangPython.call(:__main__, function, args) end)
  true = is_map(value) or is_list(value)
  us / 1000
end

median = fn values -> values |> Enum.sort() |> Enum.at(div(length(values), 2)) end

load = fn ->
  {:ok, load} = File.read("/proc/loadavg")
  load |> String.split() |> Enum.take(3) |> Enum.join(" ")
end

{:ok, py_version} = ErlangPython.eval("__import__('sys').version.split()[0]")
IO.puts("OTP #{System.otp_release()}, Python #{py_version}, load average #{load.()}")
fmt = &Float.round(&1 * 1.0, 1)

for n <- [1_000, 20_000, 100_000] do
  triples =
    for _ <- 1..runs,
        do: {time.(:plain, [n]), time.(:spliced, [n]), time.(:direct, [n])}

  [route, spliced, direct] = for i <- 0..2, do: median.(Enum.map(triples, &elem(&1, i)))

  IO.puts(
    "#{n}-key map returned: route #{fmt.(route)} ms, spliced #{fmt.(spliced)} ms, " <>
      "direct #{fmt.(direct)} ms"
  )
end

pairs = for _ <- 1..runs, do: {time.(:late_date, []), time.(:late_object, [])}

IO.puts(
  "1,000,000 ints then a date (spliced): #{fmt.(median.(Enum.map(pairs, &elem(&1, 0))))} ms, " <>
    "then an object (direct): #{fmt.(median.(Enum.map(pairs, &elem(&1, 1))))} ms"
)

# Many callers at once: each gets an existing map and decodes it itself.
defmodule Lateness do
  # Sleeps 1 ms in a loop until told to stop; answers the worst lateness.
  def ticker(worst \\ 0) do
    receive do
      {:stop, from} -> send(from, {:worst, worst})
    after
      0 ->
        started = System.monotonic_time(:microsecond)
        Process.sleep(1)
        late = System.monotonic_time(:microsecond) - started - 1000
        ticker(max(worst, late))
    end
  end
end

for {callers, n} <- [{1, 100_000}, {20, 100_000}, {100, 20_000}] do
  ticker = spawn(&Lateness.ticker/0)
  started = System.monotonic_time(:microsecond)

  1..callers
  |> Enum.map(fn _ ->
    Task.async(fn ->
      {:ok, map} = ErlangPython.call(:__main__, :existing, [n])
      map_size(map)
    end)
  end)
  |> Enum.each(fn task -> ^n = Task.await(task, 120_000) end)

  wall = (System.monotonic_time(:microsecond) - started) / 1000
  send(ticker, {:stop, self()})
  worst = receive do: ({:worst, worst} -> worst / 1000)

  IO.puts(
    "#{callers} callers at once, each a #{n}-key map: #{fmt.(wall)} ms in all, " <>
      "#{fmt.(wall / callers)} ms per reply, worst 1 ms timer lateness #{fmt.(worst)} ms"
  )
end

IO.puts("load average #{load.()}")
