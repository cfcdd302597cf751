# Where the time of issue #16's "100,000-key map returned" and "sum of a
# 1,000,000-integer list" rows goes, on
# whatever stack runs it (Debian 12: OTP 25 / Python 3.11; Debian 13 through
# `bin/test-trixie --exec`: OTP 27.3 / Python 3.13):
#
#   MIX_ENV=prod mix run bench/data_breakdown.exs
#
# Python's own share (the dict comprehension, and the port bridge's pure
# Python encoder), the BEAM's own cost to build a 100,000-key map three ways,
# and our whole call. Medians in milliseconds, with the load average.
Code.require_file("machine.exs", __DIR__)
Code.require_file("port_bridge.exs", __DIR__)

defmodule Breakdown do
  defdelegate median(values), to: Bench.Machine

  def ms(fun, runs) do
    fun.()
    median(for _ <- 1..runs, do: elem(:timer.tc(fun), 0)) / 1000
  end

  def row(name, ms) do
    figure = ms |> :erlang.float_to_binary(decimals: 1) |> String.pad_leading(8)
    IO.puts("#{String.pad_trailing(name, 62)} #{figure}")
  end

  def load do
    {:ok, load} = File.read("/proc/loadavg")
    load |> String.split() |> Enum.take(3) |> Enum.join(" ")
  end
end

runs = String.to_integer(System.get_env("BENCH_RUNS") || "9")

File.write!(
  Path.expand("bench_breakdown_helpers.py", __DIR__),
  """
  import time
  def map_100k():
      return {f"key{i}": i for i in range(100_000)}
  _MAP_100K = map_100k()
  def existing_map_100k():
      return _MAP_100K
  def pairs_100k():
      return list(_MAP_100K.items())
  def _median_ms(fun, runs):
      fun()
      times = []
      for _ in range(runs):
          start = time.perf_counter()
          fun()
          times.append((time.perf_counter() - start) * 1000)
      return sorted(times)[len(times) // 2]
  def time_comprehension(runs):
      return _median_ms(map_100k, runs)
  def time_million_longs(runs):
      return _median_ms(lambda: list(range(1_000, 1_001_000)), runs)
  _MILLION = list(range(1, 1_000_001))
  def time_sum(runs):
      return _median_ms(lambda: sum(_MILLION), runs)
  def time_port_encode(runs):
      import port_bridge
      return _median_ms(lambda: port_bridge.encode(("ok", _MAP_100K), bytearray(b"\\x83")), runs)
  """
)

port = PortBridge.start()
PortBridge.call(port, "sys", "path.insert", [0, Path.expand(".", __DIR__)])
:ok = ErlangPython.exec("import sys; sys.path.insert(0, #{inspect(Path.expand(".", __DIR__))})")

map = Map.new(0..99_999, &{"key#{&1}", &1})
pairs = Map.to_list(map)
keys = Map.keys(map)
external = :erlang.term_to_binary({:ok, map})

IO.puts("load average: #{Breakdown.load()}  (OTP #{System.otp_release()}, #{System.version()})")
{:ok, py_version} = ErlangPython.eval("sys.version.split()[0]")
IO.puts("embedded Python #{py_version}")

{:ok, comp} = ErlangPython.call(:bench_breakdown_helpers, :time_comprehension, [runs])
Breakdown.row("Python: the comprehension alone (embedded, in Python)", comp)

Breakdown.row(
  "Python: the comprehension alone (port's python3)",
  PortBridge.call(port, "bench_breakdown_helpers", "time_comprehension", [runs])
)

Breakdown.row(
  "Python: the port bridge's encoder on the dict",
  PortBridge.call(port, "bench_breakdown_helpers", "time_port_encode", [max(div(runs, 2), 3)])
)

Breakdown.row(
  "BEAM: :maps.from_list of 100,000 pairs",
  Breakdown.ms(fn -> :maps.from_list(pairs) end, runs)
)

Breakdown.row(
  "BEAM: :maps.from_keys of 100,000 keys",
  Breakdown.ms(fn -> :maps.from_keys(keys, 0) end, runs)
)

Breakdown.row(
  "BEAM: binary_to_term of {:ok, map}",
  Breakdown.ms(fn -> :erlang.binary_to_term(external) end, runs)
)

Breakdown.row(
  "BEAM: binary_to_term of {:ok, map}, [:safe]",
  Breakdown.ms(fn -> :erlang.binary_to_term(external, [:safe]) end, runs)
)

Breakdown.row(
  "BEAM: term_to_binary of {:ok, map}",
  Breakdown.ms(fn -> :erlang.term_to_binary({:ok, map}) end, runs)
)

Breakdown.row(
  "BEAM: a 100,000-key map sent to another process",
  Breakdown.ms(
    fn ->
      parent = self()
      spawn(fn -> send(parent, {:m, map}) end)

      receive do
        {:m, _} -> :ok
      end
    end,
    runs
  )
)

Breakdown.row(
  "ours: a 100,000-pair list returned (no map built)",
  Breakdown.ms(
    fn -> {:ok, _} = ErlangPython.call(:bench_breakdown_helpers, :pairs_100k, []) end,
    runs
  )
)

Breakdown.row(
  "ours: an existing 100,000-key map returned",
  Breakdown.ms(
    fn -> {:ok, _} = ErlangPython.call(:bench_breakdown_helpers, :existing_map_100k, []) end,
    runs
  )
)

Breakdown.row(
  "ours: a 100,000-key map returned (comprehension + conversion)",
  Breakdown.ms(
    fn -> {:ok, _} = ErlangPython.call(:bench_breakdown_helpers, :map_100k, []) end,
    runs
  )
)

Breakdown.row(
  "port: an existing 100,000-key map returned",
  Breakdown.ms(
    fn -> PortBridge.call(port, "bench_breakdown_helpers", "existing_map_100k", []) end,
    max(div(runs, 2), 3)
  )
)

Breakdown.row(
  "port: a 100,000-key map returned",
  Breakdown.ms(
    fn -> PortBridge.call(port, "bench_breakdown_helpers", "map_100k", []) end,
    max(div(runs, 2), 3)
  )
)

IO.puts("-- the 1,000,000-integer list in")
list_1m = Enum.to_list(1..1_000_000)

Breakdown.row(
  "Python: 1,000,000 ints made (list(range(...)), no small-int cache)",
  ErlangPython.call(:bench_breakdown_helpers, :time_million_longs, [runs]) |> elem(1)
)

Breakdown.row(
  "Python: sum of an existing 1,000,000-int list",
  ErlangPython.call(:bench_breakdown_helpers, :time_sum, [runs]) |> elem(1)
)

Breakdown.row(
  "BEAM: the list sent to another process (a copy, as into the request)",
  Breakdown.ms(
    fn ->
      parent = self()

      pid =
        spawn(fn ->
          receive do
            {:l, l} -> send(parent, {:done, length(l)})
          end
        end)

      send(pid, {:l, list_1m})

      receive do
        {:done, _} -> :ok
      end
    end,
    runs
  )
)

# Since the list is packed on the dirty scheduler (convert/packed.rs), the
# "copy" below is that packing: one read of each cell, 8 bytes written.
Breakdown.row(
  "ours: len of the list (copy + conversion)",
  Breakdown.ms(fn -> {:ok, _} = ErlangPython.call(:builtins, :len, [list_1m]) end, runs)
)

Breakdown.row(
  "ours: sum of the list (copy + conversion + sum)",
  Breakdown.ms(fn -> {:ok, _} = ErlangPython.call(:builtins, :sum, [list_1m]) end, runs)
)

IO.puts("load average: #{Breakdown.load()}")
Port.close(port)
