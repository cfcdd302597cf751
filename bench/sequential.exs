# Idle sequential calls over long runs, call by call:
#   MIX_ENV=prod mix run bench/sequential.exs
#
# bench/latency.exs takes the best and the median of many runs of 500
# calls, which mostly says whether a run met one of the machine's pauses.
# This file times long runs (SEQ_RUNS runs, default 5, of SEQ_CALLS calls,
# default 300,000) of `ErlangPython.call(:operator, :add, [1, 2])` one call
# at a time, and prints for each:
#
# - mean: the run's microseconds per call (what a caller making many calls
#   gets), and the per-call percentiles p50, p90, p99 (each call timed by
#   `:erlang.monotonic_time/1` and counted in a histogram, which adds about
#   0.1 us to it; the percentiles are their bucket's upper bound: 0.05 us
#   apart up to 100 us, 10 us beyond; a list of the times would grow the
#   caller's heap and add its garbage collections to the calls timed);
# - over 20 us: the share of calls that took longer;
# - parks per 1,000 calls: how often the worker parked, by reason
#   (`ErlangPython.pool_stats/0`: after a spin that missed, for slow
#   arrivals, for want of a free core); every park costs a wake-up, and on
#   a virtual machine its caller's too;
# - cpu/wall: this OS process's CPU time over the run's wall time;
# - steal %: the share of the machine's time the hypervisor took from this
#   virtual machine during the run (`/proc/stat`; 0 on bare metal). The
#   slowest runs come with it: the worker and its caller then lose their
#   cores for tens of microseconds at a time, and keep parking (see the
#   threading guide).
#
# First, the machine's own pauses: a BEAM process that only reads the clock
# in a loop for SEQ_PAUSE_SECONDS (default 2), with nothing of Python
# involved: pauses longer than 20 us per second, and their median. On a
# virtual machine its cores pause now and then (the development VM: about
# 430 a second, median 56 us); a sequential caller's next request is that
# much later, and the worker spins through such a pause (at least
# `PAUSE_SPIN`, 100 us: native/erlang_python_nif/src/runtime/wait_strategy.rs)
# or parks. Then #16's idle target for the call (at most 3 us) by the
# runs' per-call medians and by their means.
#
# On a shared machine compare two checkouts by running this file from each
# in turn, several times alternated:
#   (cd CHECKOUT && MIX_ENV=prod mix run /path/to/bench/sequential.exs)
# On Debian 13: bin/test-trixie --exec env MIX_ENV=prod mix run bench/sequential.exs
Code.require_file("machine.exs", __DIR__)

defmodule Bench.Sequential do
  @runs String.to_integer(System.get_env("SEQ_RUNS", "5"))
  @calls String.to_integer(System.get_env("SEQ_CALLS", "300000"))
  @pause_seconds String.to_integer(System.get_env("SEQ_PAUSE_SECONDS", "2"))
  @pause_ns 20_000

  def runs, do: @runs

  # {pauses per second, median pause in us} of a loop that only reads the
  # clock for @pause_seconds.
  def machine_pauses do
    started = :erlang.monotonic_time(:nanosecond)
    pauses = clock_loop(started, started + @pause_seconds * 1_000_000_000, [])
    median = if pauses == [], do: 0, else: Bench.Machine.median(pauses) / 1_000
    {length(pauses) / @pause_seconds, median}
  end

  defp clock_loop(last, stop_at, pauses) do
    now = :erlang.monotonic_time(:nanosecond)

    cond do
      now > stop_at -> pauses
      now - last > @pause_ns -> clock_loop(now, stop_at, [now - last | pauses])
      true -> clock_loop(now, stop_at, pauses)
    end
  end

  # The histogram of run/0's call times.
  @fine_ns 50
  @fine 2_000
  @coarse_ns 10_000
  @coarse 990
  @buckets @fine + @coarse + 1

  # One run: %{mean:, p50:, p90:, p99:, over:, parks:, share:, steal:}. The calls'
  # times go into a histogram held in :atomics (50 ns buckets up to 100 us,
  # 10 us buckets up to 10 ms, then one for the rest): a list of 300,000
  # times would grow the caller's heap, and its garbage collections, some
  # on a dirty scheduler, would take cores and time from the calls timed.
  def run do
    call = fn -> {:ok, 3} = ErlangPython.call(:operator, :add, [1, 2]) end
    for _ <- 1..10_000, do: call.()
    histogram = :atomics.new(@buckets, signed: false)
    parks_before = parks()
    cpu_before = Bench.Machine.cpu_us()
    ticks_before = Bench.Machine.cpu_ticks()
    started = :erlang.monotonic_time(:nanosecond)
    timed(call, @calls, histogram)
    wall = :erlang.monotonic_time(:nanosecond) - started
    cpu = Bench.Machine.cpu_us() - cpu_before
    steal = Bench.Machine.steal_share(ticks_before, Bench.Machine.cpu_ticks())
    parks = Map.merge(parks(), parks_before, fn _key, later, earlier -> later - earlier end)
    counts = for bucket <- 1..@buckets, do: :atomics.get(histogram, bucket)
    over = counts |> Enum.drop(bucket(@pause_ns)) |> Enum.sum()

    %{
      mean: wall / @calls / 1_000,
      p50: percentile(counts, 0.5),
      p90: percentile(counts, 0.9),
      p99: percentile(counts, 0.99),
      over: over / @calls,
      parks: Map.new(parks, fn {key, count} -> {key, count * 1_000 / @calls} end),
      share: cpu * 1_000 / wall,
      steal: steal
    }
  end

  # The histogram's bucket (1-based, as :atomics counts) for `ns`.
  defp bucket(ns) when ns < @fine * @fine_ns, do: div(ns, @fine_ns) + 1
  defp bucket(ns), do: @fine + min(div(ns - @fine * @fine_ns, @coarse_ns), @coarse) + 1

  # The upper bound, in microseconds, of the bucket where the share `share`
  # of the calls is reached.
  defp percentile(counts, share) do
    wanted = share * @calls

    index =
      counts
      |> Enum.scan(&(&1 + &2))
      |> Enum.find_index(&(&1 >= wanted))

    if index < @fine,
      do: (index + 1) * @fine_ns / 1_000,
      else: (@fine * @fine_ns + (index - @fine + 1) * @coarse_ns) / 1_000
  end

  defp timed(_call, 0, _histogram), do: :ok

  defp timed(call, left, histogram) do
    began = :erlang.monotonic_time(:nanosecond)
    call.()
    :atomics.add(histogram, bucket(:erlang.monotonic_time(:nanosecond) - began), 1)
    timed(call, left - 1, histogram)
  end

  @reasons [
    after_spin: :parked_after_spin,
    slow: :parked_slow_arrivals,
    no_core: :parked_no_free_core
  ]

  def reasons, do: Keyword.keys(@reasons)

  defp parks do
    counts = Bench.Machine.worker_counts(Keyword.values(@reasons))
    Map.new(@reasons, fn {name, key} -> {name, counts[key]} end)
  end
end

Bench.Machine.start("1 Python worker; #{Bench.Sequential.runs()} runs")
{per_second, median_pause} = Bench.Sequential.machine_pauses()

IO.puts(
  "machine's own pauses (a BEAM loop reading the clock): " <>
    "#{round(per_second)} a second over 20 us, median #{Float.round(median_pause, 1)} us\n"
)

format = fn
  nil -> "-"
  value -> :erlang.float_to_binary(value / 1, decimals: 2)
end

reasons = Bench.Sequential.reasons()

IO.puts(
  String.pad_trailing("", 8) <>
    Enum.map_join(
      ["mean", "p50", "p90", "p99", ">20us %"] ++
        Enum.map(reasons, &"#{&1}/1k") ++ ["cpu/wall", "steal %"],
      &String.pad_leading(&1, 14)
    )
)

results =
  for run <- 1..Bench.Sequential.runs() do
    result = Bench.Sequential.run()

    columns =
      [result.mean, result.p50, result.p90, result.p99, 100 * result.over] ++
        Enum.map(reasons, &result.parks[&1]) ++
        [result.share, result.steal && 100 * result.steal]

    IO.puts(
      String.pad_trailing("run #{run}", 8) <>
        Enum.map_join(columns, &String.pad_leading(format.(&1), 14))
    )

    result
  end

median_of = fn key -> Bench.Machine.median(Enum.map(results, & &1[key])) end

IO.puts(
  "\n#16 idle: call <= 3 us: by the runs' per-call medians #{format.(median_of.(:p50))} us " <>
    "(median of runs), by their means #{format.(median_of.(:mean))} us"
)

build =
  with git when git != nil <- System.find_executable("git"),
       {commit, 0} <- System.cmd(git, ["rev-parse", "--short", "HEAD"], stderr_to_stdout: true) do
    commit
  else
    _ -> "(unknown: not a git checkout here)"
  end

IO.puts("build: the checkout at #{String.trim(build)} (#{File.cwd!()})")
