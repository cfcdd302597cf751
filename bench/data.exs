# The data rows of issue #16 alone, embedded against the port bridge:
# mix run bench/data.exs
#
# Faster than bench/run.exs when only conversions changed. Each figure is
# the median of several runs, in milliseconds per call; the ratio is the
# port bridge's time over ours. The cpu columns are the CPU time per call of
# the OS processes doing the work (the VM, plus the Python process for the
# port bridge; see Bench.Machine.cpu_us/1): they move much less with the
# machine's load.
# Prints the load average beside the table, since the machine is shared.
# On Debian 13 (OTP 27.3, Python 3.13):
#   bin/test-trixie --exec env MIX_ENV=prod mix run bench/data.exs
#
# Long lists of ints or floats passed as arguments of a large request are
# packed on the caller's dirty scheduler (convert/packed.rs); the float row
# shows that route for floats (added with it, so it has no older figures).
Code.require_file("machine.exs", __DIR__)
Code.require_file("port_bridge.exs", __DIR__)

defmodule DataBench do
  defdelegate median(values), to: Bench.Machine

  # Median wall milliseconds per call, and the CPU milliseconds per call
  # (mean over the timed calls) of the OS processes in `pids`: wall times
  # swing with the machine's load, CPU per call much less.
  def ms(fun, runs, pids) do
    fun.()
    cpu_before = cpu_ms(pids)
    wall = median(for _ <- 1..runs, do: elem(:timer.tc(fun), 0)) / 1000
    {wall, (cpu_ms(pids) - cpu_before) / runs}
  end

  # CPU milliseconds of each process (all its threads).
  defp cpu_ms(pids), do: pids |> Enum.map(&Bench.Machine.cpu_us/1) |> Enum.sum() |> Kernel./(1000)
end

runs = String.to_integer(System.get_env("BENCH_RUNS") || "9")
list_1m = Enum.to_list(1..1_000_000)
floats_1m = Enum.map(1..1_000_000, &(&1 * 0.5))
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
  _MAP_1K = {f"key{i}": i for i in range(1_000)}
  def existing_map_1k():
      return _MAP_1K
  _STRS = [f"text number {i}" for i in range(100_000)]
  def existing_strs_100k():
      return _STRS
  _ROWS = [{f"c{j}": j * i for j in range(10)} for i in range(20_000)]
  def existing_rows_20k():
      return _ROWS
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
  {"sum of a 1,000,000-float list (in)",
   fn -> {:ok, _} = ErlangPython.call(:builtins, :sum, [floats_1m]) end,
   fn -> PortBridge.call(port, "builtins", "sum", [floats_1m]) end},
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
  # A mid-sized map: built with a put per key on OTP 25 before maps from
  # 64 items took the external-format route (convert/external.rs).
  {"an existing 1,000-key map returned (out)",
   fn -> {:ok, _} = ErlangPython.call(:bench_helpers, :existing_map_1k, []) end,
   fn -> PortBridge.call(port, "bench_helpers", "existing_map_1k", []) end},
  # Strings and small maps in bulk: each binary and map was built in the
  # reply environment and copied again by the send before these took the
  # external-format route too.
  {"an existing 100,000-str list returned (out)",
   fn -> {:ok, _} = ErlangPython.call(:bench_helpers, :existing_strs_100k, []) end,
   fn -> PortBridge.call(port, "bench_helpers", "existing_strs_100k", []) end},
  {"20,000 existing 10-key dicts returned (out)",
   fn -> {:ok, _} = ErlangPython.call(:bench_helpers, :existing_rows_20k, []) end,
   fn -> PortBridge.call(port, "bench_helpers", "existing_rows_20k", []) end},
  {"a 1,000,000-element list returned (out)",
   fn -> {:ok, _} = ErlangPython.call(:bench_helpers, :million, []) end,
   fn -> PortBridge.call(port, "bench_helpers", "million", []) end}
]

{:ok, load} = File.read("/proc/loadavg")
IO.puts("load average: #{load |> String.split() |> Enum.take(3) |> Enum.join(" ")}")
{:ok, py_version} = ErlangPython.eval("__import__('sys').version.split()[0]")
IO.puts("OTP #{System.otp_release()}, Elixir #{System.version()}, Python #{py_version}")

IO.puts(
  "#{String.pad_trailing("benchmark", 44)} #{String.pad_leading("ours ms", 9)} #{String.pad_leading("port ms", 9)} #{String.pad_leading("ratio", 7)}" <>
    " #{String.pad_leading("ours cpu", 9)} #{String.pad_leading("port cpu", 9)}"
)

vm = "self"
{:os_pid, python_pid} = Port.info(port, :os_pid)

fmt = fn value, width ->
  String.pad_leading(:erlang.float_to_binary(value * 1.0, decimals: 1), width)
end

for {name, ours, theirs} <- rows do
  {ours_ms, ours_cpu} = DataBench.ms(ours, runs, [vm])
  {port_ms, port_cpu} = DataBench.ms(theirs, max(div(runs, 2), 3), [vm, python_pid])

  IO.puts(
    "#{String.pad_trailing(name, 44)} #{fmt.(ours_ms, 9)} #{fmt.(port_ms, 9)} #{fmt.(port_ms / ours_ms, 6)}x" <>
      " #{fmt.(ours_cpu, 9)} #{fmt.(port_cpu, 9)}"
  )
end

{:ok, load} = File.read("/proc/loadavg")
IO.puts("load average: #{load |> String.split() |> Enum.take(3) |> Enum.join(" ")}")
Port.close(port)
