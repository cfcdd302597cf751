# Issue #16's targets for a loaded machine, over long runs and with their
# spread: BENCH_MODE=busy MIX_ENV=prod mix run bench/loaded.exs
#
# bench/run.exs gives one figure per row in each mode: the median of 7 runs
# of 20,000 calls. On a shared machine the busy figure moves with the
# hour (the host's own load shows through the hogs): one full run said
# 24 us a call, focused runs of the same build 12-100 us. This file runs
# the sequential rows (ping, the call, and the same call through the
# Erlang facade `:py.call`) for LOADED_RUNS runs (default 5) of LOADED_SECONDS
# each (default 3), in the mode BENCH_MODE sets up (busy by default; see
# bench/machine.exs), and prints every run, then the spread:
#
# - us/call: the run's mean (its wall time over its calls), and the
#   median of its blocks of 1,000 calls;
# - cpu us/call and cpu/wall: this OS process's CPU time (every thread,
#   exact: `Bench.Machine.cpu_us/1`) over the run;
# - spun / parked: how the worker's waits for a request ended
#   (`pool_stats/0`): whether it spun on the loaded machine;
# - ref us: the machine's own speed at the time, the CPU time (the worker
#   thread's own, `time.thread_time_ns`) of a fixed Python loop run after
#   the run; waits for a core do not count in it. On the development VM it
#   moves up to 2x from run to run, idle or busy (6.3-12.2 ms), without
#   following the call's time: a slow run beside a usual reference is
#   waits, not a slower CPU.
#
# Then #16's targets (call at most 25 us, CPU at most 1.3x wall) run by
# run: met in how many. Takes about 3 x LOADED_RUNS x LOADED_SECONDS.
# On Debian 13: bin/test-trixie --exec env BENCH_MODE=busy MIX_ENV=prod mix run bench/loaded.exs
Code.require_file("machine.exs", __DIR__)

defmodule Bench.Loaded do
  @block 1_000

  # One run of `fun` for `seconds`, in blocks: %{mean:, block_median:,
  # cpu:, share:, spun:, parked:, reference:}.
  def run(fun, seconds) do
    run = Bench.Machine.timed_run(fun, seconds, @block)
    {:ok, reference} = ErlangPython.call(:__main__, :_loaded_reference_us, [])

    %{
      reference: reference,
      mean: run.wall / run.calls,
      block_median: Bench.Machine.median(run.block_us) / @block,
      cpu: run.cpu / run.calls,
      share: run.cpu / run.wall,
      spun: run.spun,
      parked: run.parked
    }
  end
end

runs = String.to_integer(System.get_env("LOADED_RUNS", "5"))
seconds = String.to_integer(System.get_env("LOADED_SECONDS", "3"))
if System.get_env("BENCH_MODE") in [nil, ""], do: System.put_env("BENCH_MODE", "busy")

{mode, _} =
  Bench.Machine.start(
    "#{System.schedulers_online()} schedulers, #{ErlangPython.Runtime.workers()} Python worker(s)"
  )

rows = [
  {"ping", fn -> :pong = ErlangPython.ping() end},
  {"call (operator.add)", fn -> {:ok, 3} = ErlangPython.call(:operator, :add, [1, 2]) end},
  # The Erlang facade (a semaphore slot, the process's environment), as the
  # original's py:call is measured.
  {":py.call (operator.add)", fn -> {:ok, 3} = :py.call(:operator, :add, [1, 2]) end}
]

fmt = fn value, width, decimals ->
  String.pad_leading(:erlang.float_to_binary(value * 1.0, decimals: decimals), width)
end

header =
  "#{String.pad_trailing("", 34)}#{String.pad_leading("us/call", 9)}#{String.pad_leading("block med", 11)}" <>
    "#{String.pad_leading("cpu us", 9)}#{String.pad_leading("cpu/wall", 10)}#{String.pad_leading("spun", 10)}#{String.pad_leading("parked", 9)}" <>
    "#{String.pad_leading("ref us", 9)}"

line = fn label, r ->
  "#{String.pad_trailing(label, 34)}#{fmt.(r.mean, 9, 2)}#{fmt.(r.block_median, 11, 2)}" <>
    "#{fmt.(r.cpu, 9, 2)}#{fmt.(r.share, 10, 2)}#{String.pad_leading(to_string(r.spun), 10)}#{String.pad_leading(to_string(r.parked), 9)}" <>
    "#{String.pad_leading(to_string(r.reference), 9)}"
end

# The reference work: 200,000 additions in a Python loop.
:ok =
  ErlangPython.exec("""
  import time

  def _loaded_reference_us():
      start = time.thread_time_ns()
      total = 0
      for i in range(200_000):
          total += i
      return (time.thread_time_ns() - start) // 1_000
  """)

IO.puts("#{runs} runs of #{seconds} s per row\n\n" <> header)

results =
  for {name, fun} <- rows, into: %{} do
    for _ <- 1..100, do: fun.()

    per_run =
      for i <- 1..runs do
        r = Bench.Loaded.run(fun, seconds)
        IO.puts(line.("#{name}, run #{i}", r))
        r
      end

    spread = fn key ->
      values = Enum.map(per_run, &Map.fetch!(&1, key))
      {Enum.min(values), Bench.Machine.median(values), Enum.max(values)}
    end

    for {label, pick} <- [{"min", 0}, {"median", 1}, {"max", 2}] do
      r =
        Map.new(
          [:mean, :block_median, :cpu, :share, :spun, :parked, :reference],
          &{&1, elem(spread.(&1), pick)}
        )

      IO.puts(line.("#{name}, #{label}", r))
    end

    IO.puts("")
    {name, per_run}
  end

calls = results["call (operator.add)"]
met = fn check -> Enum.count(calls, check) end

IO.puts("targets, run by run (#{mode}; each run's mean)")
IO.puts("  #16 #{mode}: call <= 25 us: met in #{met.(&(&1.mean <= 25.0))} of #{runs}")

IO.puts(
  "  #16 #{mode}: call's CPU <= 1.3x its wall time: met in #{met.(&(&1.share <= 1.3))} of #{runs}"
)

IO.puts(
  "  both in the same run: #{met.(&(&1.mean <= 25.0 and &1.share <= 1.3))} of #{runs}\n" <>
    "load average at end #{Bench.Machine.loadavg()}"
)
