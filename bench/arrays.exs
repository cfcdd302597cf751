# numpy statistics on an 80 MB float64 array sent from Elixir, against the
# same computation on an array that already lives in Python (issue 15's
# figure: within 1.2x). Also the old routes for comparison: the binary as
# `{:bytes, bin}` (copied into a Python bytes, then np.frombuffer).
#
#   ERLANG_PYTHON_TEST_VENV=/path/to/venv-with-numpy mix run --no-start bench/arrays.exs
#
# Each run measures the three routes back to back (paired), and prints the
# load average with it; the summary is the median of the runs. Also times
# returning a 100 MB array to Elixir (arrays: true: no copy) against
# `tobytes()` (copied). BENCH_RUNS (default 7), BENCH_MODE as bench/run.exs.
Code.require_file("machine.exs", __DIR__)
{:ok, _} = Application.ensure_all_started(:erlang_python)
Bench.Machine.start("#{ErlangPython.Runtime.workers()} Python workers")

venv =
  System.get_env("ERLANG_PYTHON_TEST_VENV") ||
    raise "set ERLANG_PYTHON_TEST_VENV to a venv with numpy"

{:ok, _} = ErlangPython.Venv.activate(venv)
runs = String.to_integer(System.get_env("BENCH_RUNS", "7"))

:ok =
  ErlangPython.exec("""
  import time, numpy as np

  def bench_stats(a):
      return (float(a.mean()), float(a.std()), float(a.sum()))

  _in_process = None

  def bench_in_process(n):
      # The same array every run, made once in Python, as the Elixir one is.
      global _in_process
      if _in_process is None:
          _in_process = np.random.default_rng(1).random(n)
      t0 = time.perf_counter()
      bench_stats(_in_process)
      return (time.perf_counter() - t0) * 1e6

  def bench_from_bytes(b):
      return bench_stats(np.frombuffer(b, dtype='float64'))

  def bench_from_array(v):
      return bench_stats(np.asarray(v))
  """)

n = 10_000_000

{:ok, %ErlangPython.Array{data: data}} =
  ErlangPython.eval("np.random.default_rng(1).random(n)", %{n: n}, arrays: true)

data = :binary.copy(data)
array = %ErlangPython.Array{data: data, type: {:f, 64}, shape: {n}}
IO.puts("array: #{byte_size(data)} bytes (#{n} float64), one Elixir binary\n")

time = fn fun ->
  {us, {:ok, result}} = :timer.tc(fun)
  {us, result}
end

median = &Bench.Machine.median/1

IO.puts(
  "run | in-process ms | from Elixir (Array, no copy) ms | ratio | {:bytes, bin} ms | load average"
)

rows =
  for run <- 1..runs do
    {:ok, in_process_us} = ErlangPython.call(:__main__, :bench_in_process, [n])
    {array_us, stats} = time.(fn -> ErlangPython.call(:__main__, :bench_from_array, [array]) end)

    {bytes_us, ^stats} =
      time.(fn -> ErlangPython.call(:__main__, :bench_from_bytes, [{:bytes, data}]) end)

    ratio = array_us / in_process_us

    IO.puts(
      "#{run} | #{Float.round(in_process_us / 1000, 1)} | #{Float.round(array_us / 1000, 1)} | " <>
        "#{Float.round(ratio, 3)} | #{Float.round(bytes_us / 1000, 1)} | #{Bench.Machine.loadavg()}"
    )

    {in_process_us, array_us, ratio, bytes_us}
  end

med = fn index -> median.(Enum.map(rows, &elem(&1, index))) end

IO.puts(
  "\nmedian: in-process #{Float.round(med.(0) / 1000, 1)} ms, from Elixir #{Float.round(med.(1) / 1000, 1)} ms " <>
    "(ratio #{Float.round(med.(2), 3)}), {:bytes, bin} #{Float.round(med.(3) / 1000, 1)} ms"
)

:ok = ErlangPython.exec("_ret = np.ones(12_500_000)")

IO.puts("\nreturning a 100 MB array | arrays: true ms | tobytes() ms | load average")

for run <- 1..3 do
  {zero_us, %ErlangPython.Array{}} = time.(fn -> ErlangPython.eval("_ret", %{}, arrays: true) end)
  :erlang.garbage_collect()
  {copy_us, bytes} = time.(fn -> ErlangPython.eval("_ret.tobytes()") end)
  100_000_000 = byte_size(bytes)
  :erlang.garbage_collect()

  IO.puts(
    "#{run} | #{Float.round(zero_us / 1000, 2)} | #{Float.round(copy_us / 1000, 1)} | #{Bench.Machine.loadavg()}"
  )
end

IO.puts("\nload average at end #{Bench.Machine.loadavg()}")
