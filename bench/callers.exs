# Shared by the benchmarks: many processes calling at once.
Code.require_file("machine.exs", __DIR__)

defmodule Bench.Callers do
  @doc """
  Calls per second of `processes` callers running `fun` `total` times in
  all (each `div(total, processes)` times, at least once), measured
  `runs` times: one rate per run.
  """
  def rates(processes, total, runs, fun) do
    per = max(div(total, processes), 1)

    for _ <- 1..runs do
      {us, _} =
        :timer.tc(fn ->
          1..processes
          |> Enum.map(fn _ -> Task.async(fn -> for _ <- 1..per, do: fun.() end) end)
          |> Task.await_many(:infinity)
        end)

      processes * per / (us / 1.0e6)
    end
  end

  @doc """
  One run of `processes` callers making `total` calls of `fun` in all, and
  what each call cost: `%{rate:, sched:, workers:, other:, busy:, parks:}`,
  the calls per second, then per call the CPU microseconds of the VM's
  schedulers, of the Python worker threads and of every other thread of
  this OS process (`Bench.Machine.thread_cpu_us/1`, so spinning and parking
  count), the
  microseconds the workers were busy with requests (`pool_stats/0`), and
  how many of the workers' waits for a request ended parked.
  """
  def budget(processes, total, fun) do
    {cpu_before, pool_before} = {thread_cpu_us(), pool_figures()}
    [rate] = rates(processes, total, 1, fun)
    {cpu_after, pool_after} = {thread_cpu_us(), pool_figures()}
    calls = processes * max(div(total, processes), 1)
    per_call = fn map_after, map_before, key -> (map_after[key] - map_before[key]) / calls end

    %{
      rate: rate,
      sched: per_call.(cpu_after, cpu_before, :sched),
      workers: per_call.(cpu_after, cpu_before, :workers),
      other: per_call.(cpu_after, cpu_before, :other),
      busy: per_call.(pool_after, pool_before, :busy_us),
      parks: per_call.(pool_after, pool_before, :parks)
    }
  end

  @doc """
  CPU microseconds so far of this OS process's threads, by kind: the VM's
  normal schedulers (`:sched`), the Python worker threads (`:workers`,
  named `erlang_python*`) and the rest (`:other`: dirty schedulers, aux,
  poll, Python's own threads). See `Bench.Machine.thread_cpu_us/1`.
  """
  def thread_cpu_us do
    Enum.reduce(Bench.Machine.thread_cpu_us(), %{sched: 0, workers: 0, other: 0}, fn {name, us},
                                                                                     sums ->
      Map.update!(sums, thread_kind(name), &(&1 + us))
    end)
  end

  defp thread_kind("erlang_python" <> _), do: :workers

  defp thread_kind(name) do
    if String.ends_with?(name, "_scheduler") and not String.contains?(name, "dirty"),
      do: :sched,
      else: :other
  end

  # Busy microseconds and parked waits, summed over the workers.
  defp pool_figures do
    workers = ErlangPython.pool_stats().workers

    %{
      busy_us: Enum.sum(Enum.map(workers, & &1.busy_us)),
      parks:
        Enum.sum(
          Enum.map(
            workers,
            &(&1.parked_after_spin + &1.parked_slow_arrivals + &1.parked_no_free_core)
          )
        )
    }
  end

  @doc "A process answering `{from, ref, message}` with `{ref, message}`, forever: the VM's floor row."
  def echo do
    receive do
      {from, ref, message} -> send(from, {ref, message})
    end

    echo()
  end

  @doc "The middle value of `values` (the upper one of an even count)."
  defdelegate median(values), to: Bench.Machine
end
