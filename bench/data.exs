# The data rows of issue #16 alone, embedded against the port bridge:
# mix run bench/data.exs
#
# Faster than bench/run.exs when only conversions changed. Each figure is
# the median of several runs, in milliseconds per call; the ratio is the
# port bridge's time over ours. Prints the load average beside the table,
# since the machine is shared.
Code.require_file("port_bridge.exs", __DIR__)

defmodule DataBench do
  def median(values), do: values |> Enum.sort() |> Enum.at(div(length(values), 2))

  def ms(fun, runs) do
    fun.()
    median(for _ <- 1..runs, do: elem(:timer.tc(fun), 0)) / 1000
  end
end

runs = String.to_integer(System.get_env("BENCH_RUNS") || "9")
list_1m = Enum.to_list(1..1_000_000)
map_100k = Map.new(1..100_000, &{"key#{&1}", &1})

File.write!(
  Path.expand("bench_helpers.py", __DIR__),
  """
  def million():
      return list(range(1_000_000))
  def map_100k():
      return {f"key{i}": i for i in range(100_000)}
  _MAP_100K = map_100k()
  def existing_map_100k():
      return _MAP_100K
  """
)

port = PortBridge.start()
PortBridge.call(port, "sys", "path.insert", [0, Path.expand(".", __DIR__)])
:ok = ErlangPython.exec("import sys; sys.path.insert(0, #{inspect(Path.expand(".", __DIR__))})")

rows = [
  {"sum of a 1,000,000-integer list (in)",
   fn -> {:ok, _} = ErlangPython.call(:builtins, :sum, [list_1m]) end,
   fn -> PortBridge.call(port, "builtins", "sum", [list_1m]) end},
  # The same list without the sum: the conversion alone.
  {"len of a 1,000,000-integer list (in)",
   fn -> {:ok, _} = ErlangPython.call(:builtins, :len, [list_1m]) end,
   fn -> PortBridge.call(port, "builtins", "len", [list_1m]) end},
  {"len of a 100,000-key map (in)",
   fn -> {:ok, _} = ErlangPython.call(:builtins, :len, [map_100k]) end,
   fn -> PortBridge.call(port, "builtins", "len", [map_100k]) end},
  {"a 100,000-key map returned (out)",
   fn -> {:ok, _} = ErlangPython.call(:bench_helpers, :map_100k, []) end,
   fn -> PortBridge.call(port, "bench_helpers", "map_100k", []) end},
  # A dict built once, at import: the conversion alone, without the
  # comprehension that the row above times on both sides.
  {"an existing 100,000-key map returned (out)",
   fn -> {:ok, _} = ErlangPython.call(:bench_helpers, :existing_map_100k, []) end,
   fn -> PortBridge.call(port, "bench_helpers", "existing_map_100k", []) end},
  {"a 1,000,000-element list returned (out)",
   fn -> {:ok, _} = ErlangPython.call(:bench_helpers, :million, []) end,
   fn -> PortBridge.call(port, "bench_helpers", "million", []) end}
]

{:ok, load} = File.read("/proc/loadavg")
IO.puts("load average: #{load |> String.split() |> Enum.take(3) |> Enum.join(" ")}")

IO.puts(
  "#{String.pad_trailing("benchmark", 44)} #{String.pad_leading("ours ms", 9)} #{String.pad_leading("port ms", 9)} #{String.pad_leading("ratio", 7)}"
)

for {name, ours, theirs} <- rows do
  ours_ms = DataBench.ms(ours, runs)
  port_ms = DataBench.ms(theirs, max(div(runs, 2), 3))

  IO.puts(
    "#{String.pad_trailing(name, 44)} #{String.pad_leading(:erlang.float_to_binary(ours_ms, decimals: 1), 9)} " <>
      "#{String.pad_leading(:erlang.float_to_binary(port_ms, decimals: 1), 9)} " <>
      "#{String.pad_leading(:erlang.float_to_binary(port_ms / ours_ms, decimals: 1), 6)}x"
  )
end

{:ok, load} = File.read("/proc/loadavg")
IO.puts("load average: #{load |> String.split() |> Enum.take(3) |> Enum.join(" ")}")
Port.close(port)
