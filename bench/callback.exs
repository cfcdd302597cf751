# Callback round trip: Python -> registered Elixir function -> Python.
#
#   mix run bench/callback.exs
#
# Timed inside Python with time.perf_counter, so the figure is the cost one
# Python call of erlang.<name>(...) sees. Prints the median of 5 runs.
Code.require_file("machine.exs", __DIR__)
Code.require_file("callback_setup.exs", __DIR__)

median = &Bench.Machine.median/1
n = 20_000
# Warm up.
ErlangPython.call!(:__main__, :bench_callbacks, [2_000])

for {label, function} <- [
      {"on the interpreter thread", :bench_callbacks},
      {"from a Python thread", :bench_callbacks_in_thread}
    ] do
  runs = for _ <- 1..5, do: ErlangPython.call!(:__main__, function, [n], timeout: :infinity)

  IO.puts(
    "callback round trip #{String.pad_trailing(label, 26)} median #{Float.round(median.(runs), 2)} us " <>
      "(runs: #{Enum.map_join(runs, ", ", &Float.round(&1, 2))})"
  )
end
