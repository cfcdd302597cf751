# Own-GIL contexts against separate python3 processes, side by side in one run.
#
#   mix run bench/subinterp.exs             # N = 2, 3 rounds
#   N=4 ROUNDS=5 mix run bench/subinterp.exs
#
# Each round runs the same pure-Python integer loop (calibrated to ~1 s on
# this machine) as:
#   * one own-GIL context alone;
#   * one shared-GIL context alone (the main interpreter);
#   * N own-GIL contexts at once;
#   * N shared-GIL contexts at once (the main interpreter's one GIL);
#   * N separate `python3` processes at once (the ceiling: what the machine
#     gives N independent interpreters).
# Each run's time is its makespan measured inside Python (first loop start
# to last loop end, `time.time()`), so process start-up is not counted.
# Throughput is loops per second; the figure that matters is own-GIL
# throughput as a share of the processes' in the same round. Meanwhile a
# process measures BEAM scheduler latency (how late a 5 ms timer fires).
# Python 3.12+ only (own-GIL contexts).
Code.require_file("machine.exs", __DIR__)

alias ErlangPython.ContextServer

unless ErlangPython.OwnGil.supported?() do
  IO.puts("own-GIL contexts need Python 3.12+: #{ErlangPython.OwnGil.unsupported_message()}")
  System.halt(0)
end

n = String.to_integer(System.get_env("N", "2"))
rounds = String.to_integer(System.get_env("ROUNDS", "3"))
{executable, version} = ErlangPython.Native.build_info()

Bench.Machine.start(
  "Python #{version}; #{ErlangPython.Runtime.workers()} shared-GIL workers; N = #{n}"
)

loop = """
import time
def spin(n):
    start = time.time()
    x = 0
    for i in range(n):
        x = (x * 31 + i) % 1000003
    return [start, time.time(), x]
"""

# Calibrate in the main interpreter: ~1 s per loop.
:ok = ErlangPython.exec(loop)
{:ok, [s, e, _]} = ErlangPython.call(:__main__, :spin, [2_000_000], timeout: :infinity)
iterations = round(2_000_000 / (e - s))
IO.puts("loop: #{iterations} iterations (~1 s alone, calibrated now)")

start_contexts = fn own_gil ->
  for _ <- 1..n do
    {:ok, ctx} = ContextServer.start_link(own_gil: own_gil)
    :ok = ErlangPython.exec(loop, context: ctx)
    ctx
  end
end

own = start_contexts.(true)
shared = start_contexts.(false)

makespan = fn spans ->
  starts = Enum.map(spans, &Enum.at(&1, 0))
  ends = Enum.map(spans, &Enum.at(&1, 1))
  Enum.max(ends) - Enum.min(starts)
end

in_contexts = fn contexts ->
  contexts
  |> Enum.map(fn ctx ->
    Task.async(fn ->
      {:ok, span} = ErlangPython.eval("spin(k)", %{k: iterations}, context: ctx, timeout: :infinity)

      span
    end)
  end)
  |> Task.await_many(:infinity)
  |> makespan.()
end

processes = fn count ->
  script = loop <> "\nimport json; print(json.dumps(spin(#{iterations})))"

  1..count
  |> Enum.map(fn _ ->
    Task.async(fn ->
      {out, 0} = System.cmd(executable, ["-c", script])

      out
      |> String.trim()
      |> String.split(["[", "]", ","], trim: true)
      |> Enum.take(2)
      |> Enum.map(&String.to_float(String.trim(&1)))
    end)
  end)
  |> Task.await_many(:infinity)
  |> makespan.()
end

# Scheduler latency: how late a 5 ms timer fires, while `fun` runs.
with_latency = fn fun ->
  parent = self()

  probe =
    spawn_link(fn ->
      sample = fn sample, acc ->
        t0 = System.monotonic_time(:microsecond)

        receive do
          :stop -> send(parent, {:latency, acc})
        after
          5 ->
            late = System.monotonic_time(:microsecond) - t0 - 5_000
            sample.(sample, [late | acc])
        end
      end

      sample.(sample, [])
    end)

  result = fun.()
  send(probe, :stop)

  lates =
    receive do
      {:latency, lates} -> Enum.sort(lates)
    end

  p99 = Enum.at(lates, min(length(lates) - 1, round(length(lates) * 0.99)))
  {result, "timer lateness p99 #{p99} us, max #{List.last(lates)} us (#{length(lates)} samples)"}
end

throughput = fn count, seconds -> count / seconds end

for round <- 1..rounds do
  IO.puts("\nround #{round} (load #{Bench.Machine.loadavg()})")
  one_own = in_contexts.([hd(own)])
  one_shared = in_contexts.([hd(shared)])
  {n_own, latency} = with_latency.(fn -> in_contexts.(own) end)
  n_shared = in_contexts.(shared)
  n_procs = processes.(n)
  one_proc = processes.(1)

  row = fn label, count, seconds ->
    IO.puts(
      "  #{String.pad_trailing(label, 30)} #{:io_lib.format("~6.3f", [seconds])} s  " <>
        "#{:io_lib.format("~5.2f", [throughput.(count, seconds)])} loops/s"
    )
  end

  row.("1 own-GIL context", 1, one_own)
  row.("1 shared-GIL context", 1, one_shared)
  row.("1 python3 process", 1, one_proc)
  row.("#{n} own-GIL contexts", n, n_own)
  row.("#{n} shared-GIL contexts", n, n_shared)
  row.("#{n} python3 processes", n, n_procs)

  IO.puts(
    "  => #{n} own-GIL contexts: #{Float.round(throughput.(n, n_own) / throughput.(1, one_own), 2)}x one context, " <>
      "#{round(100 * throughput.(n, n_own) / throughput.(n, n_procs))}% of #{n} processes' throughput " <>
      "(processes: #{Float.round(throughput.(n, n_procs) / throughput.(1, one_proc), 2)}x one process; " <>
      "shared GIL: #{Float.round(throughput.(n, n_shared) / throughput.(1, one_shared), 2)}x)"
  )

  IO.puts("  BEAM while #{n} own-GIL contexts ran: #{latency}")
end

IO.puts("\nload average at end #{Bench.Machine.loadavg()}")
