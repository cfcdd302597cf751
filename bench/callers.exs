# Shared by the benchmarks: many processes calling at once.
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
end
