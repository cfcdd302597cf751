# What the :py facade's semaphore costs: MIX_ENV=prod mix run bench/semaphore.exs
#
# The semaphore (ErlangPython.Semaphore) bounds concurrent `py:call`s.
# Rows, each the best and median of RUNS runs:
#
# - `with_slot` alone, one process (no Python): acquire + release;
# - `:py.call(:operator, :add, [1, 2])`, one process;
# - the same with 50 callers at `set_max(5)` (every call contends: the
#   line is used), and with 50 callers at `set_max(50)` (never full);
# - with_slot around `:erlang.yield()` (no Python), 50 callers at limit 5
#   and 50: the semaphore's own cost when callers contend, and when not;
# - process CPU per call (all threads, `Bench.Machine.cpu_us/1`) for the 50-caller rows,
#   so a rate bought by burning more CPU shows.
#
# For an A/B against another checkout, run the same file from there:
#   (cd /work/main && MIX_ENV=prod mix run /path/to/bench/semaphore.exs)
Code.require_file("machine.exs", __DIR__)
Code.require_file("callers.exs", __DIR__)

defmodule Bench.SemaphoreRows do
  @runs String.to_integer(System.get_env("RUNS", "7"))

  alias ErlangPython.Semaphore

  def per_call(n, fun) do
    for _ <- 1..100, do: fun.()

    for _ <- 1..@runs do
      {us, _} = :timer.tc(fn -> for _ <- 1..n, do: fun.() end)
      us / n
    end
    |> best_and_median(&Enum.min/1)
  end

  # {best, median} calls/s and the median process CPU us per call.
  def callers(limit, processes, total, fun) do
    old = Semaphore.max_concurrent()
    :ok = Semaphore.set_max(limit)

    try do
      fun.()

      samples =
        for _ <- 1..@runs do
          cpu = Bench.Machine.cpu_us()
          [rate] = Bench.Callers.rates(processes, total, 1, fun)
          {rate, (Bench.Machine.cpu_us() - cpu) / total}
        end

      {best_and_median(Enum.map(samples, &elem(&1, 0)), &Enum.max/1),
       samples |> Enum.map(&elem(&1, 1)) |> median()}
    after
      Semaphore.set_max(old)
    end
  end

  defp best_and_median(values, best), do: {best.(values), median(values)}
  defp median(values), do: Bench.Machine.median(values)
end

{_mode, _load} = Bench.Machine.start("semaphore rows, best / median of short runs")

alias ErlangPython.Semaphore
py_add = fn -> {:ok, 3} = :py.call(:operator, :add, [1, 2]) end

fmt = fn
  value when value >= 1000 -> :erlang.float_to_binary(value / 1, decimals: 0)
  value -> :erlang.float_to_binary(value / 1, decimals: 2)
end

row = fn name, {best, median}, unit, extra ->
  IO.puts(
    "#{String.pad_trailing(name, 40)} #{String.pad_leading(fmt.(best), 9)} " <>
      "#{String.pad_leading(fmt.(median), 9)}  #{unit}#{extra}"
  )
end

IO.puts(
  "#{String.pad_trailing("", 40)} #{String.pad_leading("best", 9)} #{String.pad_leading("median", 9)}"
)

row.(
  "with_slot(fn -> :ok end), 1 process",
  Bench.SemaphoreRows.per_call(100_000, fn -> Semaphore.with_slot(5_000, fn -> :ok end) end),
  "us",
  ""
)

row.(":py.call operator.add, 1 process", Bench.SemaphoreRows.per_call(20_000, py_add), "us", "")

# Contention without Python: each holder yields its scheduler while it
# holds, so the other callers find the slots taken and wait in line.
for limit <- [5, 50] do
  {rates, cpu} =
    Bench.SemaphoreRows.callers(limit, 50, 200_000, fn ->
      Semaphore.with_slot(5_000, fn -> :erlang.yield() end)
    end)

  row.(
    "with_slot(yield), 50 callers, limit #{limit}",
    rates,
    "calls/s",
    "   CPU #{fmt.(cpu)} us/call"
  )
end

for limit <- [5, 50] do
  {rates, cpu} = Bench.SemaphoreRows.callers(limit, 50, 50_000, py_add)
  row.(":py.call, 50 callers, limit #{limit}", rates, "calls/s", "   CPU #{fmt.(cpu)} us/call")
end

IO.puts("\nload average at end #{Bench.Machine.loadavg()}")
