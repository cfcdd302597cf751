# Isolated contexts against embedded ones and the port bridge:
#   MIX_ENV=prod mix run bench/isolated.exs      (BENCH_QUICK=1 for a smoke run)
#
# Three rows, each measured in this one run, interleaved (so they compare on
# a noisy machine), the median of several: a call's latency, a 1,000,000-integer
# list summed, a 100 MB binary passed as bytes. "isolated" moves frames
# through shared memory (the default transport), "pipes" is the same worker
# with `transport: :pipes`. A call to an idle shared-memory worker goes
# direct (caller -> ring -> caller, no server hop); pipes pass the server. The port bridge is
# bench/port_bridge.py, Python on a port with a codec in Python (as
# erlport-style bridges run it); the isolated worker is also Python on a port,
# with the codec in Rust. The load average is printed with every row.
Code.require_file("machine.exs", __DIR__)
Code.require_file("port_bridge.exs", __DIR__)

defmodule IsolatedBench do
  @quick System.get_env("BENCH_QUICK") in ["1", "true"]
  @runs if @quick, do: 3, else: 7

  def scale(n), do: if(@quick, do: max(div(n, 20), 1), else: n)

  def median(values), do: values |> Enum.sort() |> Enum.at(div(length(values), 2))

  # Median microseconds per call of each fun, calls of the three interleaved
  # run by run.
  def per_call_us(n, funs) do
    n = scale(n)
    Enum.each(funs, fn {_, fun} -> fun.() end)

    runs =
      for _ <- 1..@runs do
        for {name, fun} <- funs do
          {us, _} = :timer.tc(fn -> for _ <- 1..n, do: fun.() end)
          {name, us / n}
        end
      end

    for {name, _} <- funs, do: {name, median(for run <- runs, do: :proplists.get_value(name, run))}
  end
end

Bench.Machine.start(
  "#{System.schedulers_online()} schedulers; embedded: a context process; isolated: a worker process"
)

{:ok, _} = Application.ensure_all_started(:erlang_python)
{:ok, embedded} = ErlangPython.ContextServer.start_link()
{:ok, isolated} = ErlangPython.ContextServer.start_link(isolated: true)
{:ok, piped} = ErlangPython.ContextServer.start_link(isolated: true, transport: :pipes)
port = PortBridge.start()

list_1m = Enum.to_list(1..1_000_000)
bin_100mb = :binary.copy(<<7>>, 100_000_000)

rows = [
  {"call operator.add(1, 2)", 5_000, "us/call",
   fn ctx -> {:ok, 3} = ErlangPython.call(:operator, :add, [1, 2], context: ctx) end,
   fn -> 3 = PortBridge.call(port, "operator", "add", [1, 2]) end, 1},
  {"sum of a 1,000,000-integer list", 3, "ms",
   fn ctx ->
     {:ok, _} = ErlangPython.call(:builtins, :sum, [list_1m], context: ctx, timeout: 60_000)
   end, fn -> PortBridge.call(port, "builtins", "sum", [list_1m]) end, 1},
  {"len of a 100 MB binary as bytes", 3, "GB/s",
   fn ctx ->
     {:ok, 100_000_000} =
       ErlangPython.call(:builtins, :len, [{:bytes, bin_100mb}], context: ctx, timeout: 60_000)
   end, fn -> 100_000_000 = PortBridge.call(port, "builtins", "len", [bin_100mb]) end, 100_000_000}
]

IO.puts(
  String.pad_trailing("workload", 34) <>
    "embedded     isolated     pipes        port bridge  port/isolated  load average"
)

for {name, n, unit, in_context, bridged, bytes} <- rows do
  results =
    IsolatedBench.per_call_us(n,
      embedded: fn -> in_context.(embedded) end,
      isolated: fn -> in_context.(isolated) end,
      pipes: fn -> in_context.(piped) end,
      port: bridged
    )

  show = fn us ->
    value =
      case unit do
        "us/call" -> us
        "ms" -> us / 1000
        "GB/s" -> bytes / us / 1000
      end

    String.pad_trailing("#{Float.round(value * 1.0, 2)} #{unit}", 13)
  end

  us = Map.new(results)
  ratio = Float.round(us.port / us.isolated, 1)

  IO.puts(
    String.pad_trailing(name, 34) <>
      show.(us.embedded) <>
      show.(us.isolated) <>
      show.(us.pipes) <>
      show.(us.port) <> String.pad_trailing("#{ratio}x", 15) <> Bench.Machine.loadavg()
  )
end
