# The benchmark suite: mix run bench/run.exs
#
# Every row is measured in this one run (so rows compare on a noisy machine)
# and is the median of several runs. Prints a table and writes
# bench/results.json (bench/results-MODE.json for the modes below). Set
# BENCH_QUICK=1 for a fast smoke run (a twentieth of the calls: its rows
# last tens of milliseconds, so in the modes below they show the first
# moments of the load; quote a full run, or bench/loaded.exs, for #16's
# targets).
#
# BENCH_MODE=busy keeps every core busy with other OS processes, and
# BENCH_MODE=pinned pins this VM to one core (see bench/machine.exs): the
# sequential rows then show what a call costs when the machine is loaded,
# in wall time and in CPU time (the whole OS process's, every thread).
Code.require_file("machine.exs", __DIR__)
Code.require_file("callers.exs", __DIR__)

defmodule Bench do
  @quick System.get_env("BENCH_QUICK") in ["1", "true"]
  @runs if @quick, do: 3, else: 7

  def scale(n), do: if(@quick, do: max(div(n, 20), 1), else: n)

  defdelegate median(values), to: Bench.Machine

  # Median microseconds per call of `fun`, called `n` times in a row.
  def per_call_us(n, fun) do
    n = scale(n)
    fun.()

    median(
      for _ <- 1..@runs do
        {us, _} = :timer.tc(fn -> for _ <- 1..n, do: fun.() end)
        us / n
      end
    )
  end

  # {median wall microseconds per call, CPU microseconds per call over all
  # runs} of `fun`, called `n` times in a row.
  def per_call_with_cpu(n, fun) do
    n = scale(n)
    fun.()
    cpu_before = Bench.Machine.cpu_us()

    walls =
      for _ <- 1..@runs do
        {us, _} = :timer.tc(fn -> for _ <- 1..n, do: fun.() end)
        {us, us / n}
      end

    cpu = Bench.Machine.cpu_us() - cpu_before
    wall_total = walls |> Enum.map(&elem(&1, 0)) |> Enum.sum()
    {median(Enum.map(walls, &elem(&1, 1))), cpu / (n * @runs), cpu / wall_total}
  end

  # Median microseconds of one call of `fun`.
  def once_us(fun, runs \\ @runs) do
    fun.()
    median(for _ <- 1..runs, do: elem(:timer.tc(fun), 0))
  end

  # Calls per second with `processes` callers, `total` calls in all.
  def throughput(processes, total, fun),
    do: median(Bench.Callers.rates(processes, scale(total), @runs, fun))
end

Code.require_file("port_bridge.exs", __DIR__)

ok! = fn {:ok, value} -> value end
rows = []

{mode, load_at_start} =
  Bench.Machine.start(
    "#{System.schedulers_online()} schedulers, #{ErlangPython.Runtime.workers()} Python worker(s)"
  )

row = fn rows, group, name, value, unit ->
  rows ++ [%{group: group, name: name, value: value, unit: unit}]
end

# --- round trips -----------------------------------------------------------
# CPU time is the whole OS process's (every scheduler and Python thread):
# what one caller costs the machine, spinning included.
#
# The host's steal over these rows: on a virtual machine whose host is
# busy, the sequential round trips are slow for that alone (see
# Bench.Machine.cpu_ticks/0).
ticks_before_round_trips = Bench.Machine.cpu_ticks()

{ping, ping_cpu, ping_share} =
  Bench.per_call_with_cpu(20_000, fn -> :pong = ErlangPython.ping() end)

{call, call_cpu, call_share} =
  Bench.per_call_with_cpu(20_000, fn -> {:ok, 3} = ErlangPython.call(:operator, :add, [1, 2]) end)

{eval, eval_cpu, eval_share} =
  Bench.per_call_with_cpu(20_000, fn -> {:ok, 2} = ErlangPython.eval("x + 1", %{x: 1}) end)

round_trips_steal = Bench.Machine.steal_share(ticks_before_round_trips, Bench.Machine.cpu_ticks())

rows = row.(rows, "round trip", "ping", ping, "us/call")
rows = row.(rows, "round trip", "call operator.add(1, 2), sequential", call, "us/call")
rows = row.(rows, "round trip", "eval \"x + 1\", sequential", eval, "us/call")
rows = row.(rows, "cpu", "ping", ping_cpu, "us/call")
rows = row.(rows, "cpu", "call operator.add(1, 2), sequential", call_cpu, "us/call")
rows = row.(rows, "cpu", "eval \"x + 1\", sequential", eval_cpu, "us/call")
rows = row.(rows, "cpu", "ping: CPU / wall", ping_share, "x")
rows = row.(rows, "cpu", "call: CPU / wall", call_share, "x")
rows = row.(rows, "cpu", "eval: CPU / wall", eval_share, "x")

rows =
  if round_trips_steal,
    do: row.(rows, "machine", "host steal during the round trips", 100 * round_trips_steal, "%"),
    else: rows

rows =
  Enum.reduce([1, 10, 100, 1000], rows, fn processes, rows ->
    cps =
      Bench.throughput(processes, 200_000, fn ->
        {:ok, 3} = ErlangPython.call(:operator, :add, [1, 2])
      end)

    row.(rows, "throughput", "call with #{processes} callers", cps, "calls/s")
  end)

rows =
  Enum.reduce([1, 10, 100, 1000], rows, fn processes, rows ->
    cps =
      Bench.throughput(processes, 200_000, fn -> {:ok, 2} = ErlangPython.eval("x + 1", %{x: 1}) end)

    row.(rows, "throughput", "eval with #{processes} callers", cps, "calls/s")
  end)

# --- callbacks --------------------------------------------------------------
Code.require_file("callback_setup.exs", __DIR__)

callback =
  Bench.median(
    for _ <- 1..5, do: ok!.(ErlangPython.call(:__main__, :bench_callbacks, [Bench.scale(20_000)]))
  )

rows = row.(rows, "round trip", "callback Python -> Elixir -> Python", callback, "us/call")

# --- data -------------------------------------------------------------------
list_100k = Enum.to_list(1..100_000)
list_1m = Enum.to_list(1..1_000_000)
map_100k = Map.new(1..100_000, &{"key#{&1}", &1})
bin_10mb = :binary.copy(<<7>>, 10_000_000)
bin_100mb = :binary.copy(<<7>>, 100_000_000)

data = [
  {"sum of a 100,000-integer list", fn -> ErlangPython.call(:builtins, :sum, [list_100k]) end,
   fn port -> PortBridge.call(port, "builtins", "sum", [list_100k]) end, 100_000, "ns/element"},
  {"sum of a 1,000,000-integer list", fn -> ErlangPython.call(:builtins, :sum, [list_1m]) end,
   fn port -> PortBridge.call(port, "builtins", "sum", [list_1m]) end, 1_000_000, "ns/element"},
  {"len of a 100,000-key map", fn -> ErlangPython.call(:builtins, :len, [map_100k]) end,
   fn port -> PortBridge.call(port, "builtins", "len", [map_100k]) end, 100_000, "ns/element"},
  {"len of a 10 MB binary as bytes",
   fn -> ErlangPython.call(:builtins, :len, [{:bytes, bin_10mb}]) end,
   fn port -> PortBridge.call(port, "builtins", "len", [bin_10mb]) end, 10_000_000, "MB/s"},
  {"len of a 100 MB binary as bytes",
   fn -> ErlangPython.call(:builtins, :len, [{:bytes, bin_100mb}]) end,
   fn port -> PortBridge.call(port, "builtins", "len", [bin_100mb]) end, 100_000_000, "MB/s"},
  {"a 1,000,000-element list returned", fn -> ErlangPython.eval("list(range(1_000_000))") end,
   fn port -> PortBridge.call(port, "bench_helpers", "million", []) end, 1_000_000, "ns/element"}
]

# The port process imports bench_helpers.million from here.
File.write!(
  Path.expand("bench_helpers.py", __DIR__),
  "def million():\n    return list(range(1_000_000))\n"
)

port = PortBridge.start()
Port.command(port, :erlang.term_to_binary({"sys", "path.insert", [0, Path.expand(".", __DIR__)]}))

receive do
  {^port, {:data, _}} -> :ok
end

to_unit = fn
  us, elements, "MB/s" -> elements / us
  us, elements, "ns/element" -> us * 1000 / elements
end

{rows, ratios} =
  Enum.reduce(data, {rows, []}, fn {name, embedded, over_port, elements, unit}, {rows, ratios} ->
    embedded_us = Bench.once_us(fn -> {:ok, _} = embedded.() end, 5)
    port_us = Bench.once_us(fn -> over_port.(port) end, 3)

    rows =
      rows
      |> row.("data", name, to_unit.(embedded_us, elements, unit), unit)
      |> row.("port_baseline", name, to_unit.(port_us, elements, unit), unit)

    {rows, ratios ++ [{name, port_us / embedded_us}]}
  end)

port_call = Bench.per_call_us(5_000, fn -> 3 = PortBridge.call(port, "operator", "add", [1, 2]) end)
rows = row.(rows, "port_baseline", "call operator.add(1, 2), sequential", port_call, "us/call")

# --- the cost Python itself imposes -------------------------------------------
timeit = fn stmt, setup, number ->
  ok!.(
    ErlangPython.eval(
      "min(__import__('timeit').repeat(stmt, setup, number=n, repeat=5)) / n * 1e6",
      %{stmt: stmt, setup: setup, n: number},
      timeout: :infinity
    )
  )
end

rows =
  row.(
    rows,
    "python_only",
    "operator.add(1, 2)",
    timeit.("add(1, 2)", "from operator import add", 1_000_000),
    "us/call"
  )

rows =
  row.(
    rows,
    "python_only",
    "x + 1 (eval of compiled code)",
    timeit.("eval(c, g)", "c = compile('x + 1', '', 'eval'); g = {'x': 1}", 1_000_000),
    "us/call"
  )

rows =
  row.(
    rows,
    "python_only",
    "sum of a 1,000,000-integer list",
    timeit.("sum(l)", "l = list(range(1_000_000))", 10) * 1000 / 1_000_000,
    "ns/element"
  )

Port.close(port)

# --- report -------------------------------------------------------------------
format = fn
  value when is_float(value) and value >= 1000 -> :erlang.float_to_binary(value, decimals: 0)
  value when is_float(value) -> :erlang.float_to_binary(value, decimals: 2)
  value -> to_string(value)
end

IO.puts(
  "\n#{String.pad_trailing("group", 14)} #{String.pad_trailing("benchmark", 44)} #{String.pad_leading("value", 12)}  unit"
)

for r <- rows do
  IO.puts(
    "#{String.pad_trailing(r.group, 14)} #{String.pad_trailing(r.name, 44)} #{String.pad_leading(format.(r.value), 12)}  #{r.unit}"
  )
end

find = fn group, name -> Enum.find(rows, &(&1.group == group and &1.name == name)).value end
million_ms = find.("data", "sum of a 1,000,000-integer list") * 1_000_000 / 1.0e6
hundred_mb = find.("data", "len of a 100 MB binary as bytes")
hundred_callers = find.("throughput", "call with 100 callers")

round_trip_checks =
  if mode == "idle" do
    [
      {"ping <= 4 us", ping <= 4.0, format.(ping)},
      {"call <= 1.5 x ping", call <= 1.5 * ping, format.(call / ping) <> "x"},
      {"call <= 3 us", call <= 3.0, format.(call)},
      {"100 callers >= 500,000 calls/s", hundred_callers >= 500_000, format.(hundred_callers)}
    ]
  else
    [
      {"#{mode}: call <= 25 us", call <= 25.0, format.(call)},
      {"#{mode}: call's CPU time <= 1.3 x its wall time", call_share <= 1.3,
       format.(call_share) <> "x"}
    ]
  end

checks =
  round_trip_checks ++
    [{"call >= 10x faster than the port", port_call / call >= 10, format.(port_call / call) <> "x"}] ++
    Enum.map(ratios, fn {name, ratio} ->
      {"#{name}: >= 5x faster than the port", ratio >= 5, format.(ratio) <> "x"}
    end) ++
    [
      {"1,000,000-integer list to Python <= 40 ms", million_ms <= 40, format.(million_ms) <> " ms"},
      {"100 MB binary to bytes >= 2 GB/s", hundred_mb >= 2000, format.(hundred_mb) <> " MB/s"}
    ]

IO.puts("\ntargets")

for {name, met, figure} <- checks,
    do:
      IO.puts(
        "  #{if met, do: "met    ", else: "not met"}  #{String.pad_trailing(name, 58)} #{figure}"
      )

json =
  ok!.(
    ErlangPython.call(
      :json,
      :dumps,
      [
        %{
          "machine" => %{
            "mode" => mode,
            "load_average_at_start" => load_at_start,
            "load_average_at_end" => Bench.Machine.loadavg(),
            "cores" => System.schedulers_online(),
            "otp" => System.otp_release(),
            "elixir" => System.version()
          },
          "rows" => Enum.map(rows, &Map.new(&1, fn {k, v} -> {Atom.to_string(k), v} end)),
          "targets" =>
            Enum.map(checks, fn {name, met, figure} ->
              %{"target" => name, "met" => met, "figure" => figure}
            end)
        }
      ],
      kwargs: %{indent: 2}
    )
  )

results = if mode == "idle", do: "results.json", else: "results-#{mode}.json"
File.write!(Path.expand(results, __DIR__), json)
IO.puts("\nload average at end #{Bench.Machine.loadavg()}; wrote bench/#{results}")
