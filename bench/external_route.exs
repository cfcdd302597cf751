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
# Then many callers at once decoding large replies, with what the VM's
# system monitor saw (see Storm below).
#   MIX_ENV=prod mix run bench/external_route.exs
#   bin/test-trixie --exec env MIX_ENV=prod mix run bench/external_route.exs
Code.require_file("machine.exs", __DIR__)
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

median = &Bench.Machine.median/1

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

# Many callers at once, each decoding its large reply itself with
# binary_to_term on its own scheduler. The VM's system monitor reports every
# process that ran 10 ms and more without yielding (long_schedule) and
# every garbage collection of 10 ms and more (long_gc): binary_to_term
# yields as it reads but builds a large map in one go, and each caller
# then collects a heap that holds the whole value. (A dirty-scheduler
# decoder was tried and parked, see the branch issue-16-data-s6-wip: under
# this machine's load its figures did not separate from the callers' GCs.)
defmodule Storm do
  # Runs `fun` in `callers` processes at once; the wall ms and what the
  # system monitor reported meanwhile: {count, worst ms} of each kind.
  def run(callers, fun) do
    :erlang.system_monitor(self(), long_schedule: 10, long_gc: 10)
    started = System.monotonic_time(:microsecond)

    1..callers
    |> Enum.map(fn _ -> Task.async(fun) end)
    |> Enum.each(&Task.await(&1, 300_000))

    wall = (System.monotonic_time(:microsecond) - started) / 1000
    :erlang.system_monitor(:undefined)
    {wall, drain(%{long_schedule: {0, 0}, long_gc: {0, 0}})}
  end

  defp drain(seen) do
    receive do
      {:monitor, _, kind, info} when kind in [:long_schedule, :long_gc] ->
        ms = Keyword.get(info, :timeout, 0)
        drain(Map.update!(seen, kind, fn {n, worst} -> {n + 1, max(worst, ms)} end))
    after
      100 -> seen
    end
  end

  def report(name, {wall, seen}) do
    {n_sched, worst_sched} = seen.long_schedule
    {n_gc, worst_gc} = seen.long_gc

    IO.puts(
      "#{String.pad_trailing(name, 58)} #{Float.round(wall, 1)} ms; " <>
        ">=10 ms unyielding: #{n_sched} (worst #{worst_sched} ms), GCs: #{n_gc} (worst #{worst_gc} ms)"
    )
  end
end

external = :erlang.term_to_binary({:ok, Map.new(1..100_000, &{"key#{&1}", &1})})

IO.puts(
  "-- #{byte_size(external)} bytes of external format (a 100,000-key map), decoded at once by"
)

for callers <- [1, 20] do
  Storm.report(
    "#{callers} processes, binary_to_term on their schedulers",
    Storm.run(callers, fn -> {:ok, _} = :erlang.binary_to_term(external, [:safe]) end)
  )
end

IO.puts("-- whole calls")

for {callers, n} <- [{1, 100_000}, {20, 100_000}, {100, 20_000}] do
  Storm.report(
    "#{callers} callers at once, each a #{n}-key map",
    Storm.run(callers, fn ->
      {:ok, map} = ErlangPython.call(:__main__, :existing, [n])
      ^n = map_size(map)
    end)
  )
end

IO.puts("load average #{load.()}")
