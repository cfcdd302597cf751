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
#     gives N independent interpreters);
#   * N separate processes of a tiny launcher linked to the shared libpython
#     the NIF embeds (built here with `cc` when it can be: Debian's python3
#     binary is linked statically, with PGO, and runs pure-Python loops
#     ~1.75x faster than its libpython3.x.so does, measured on 3.13: that
#     row is the like-for-like ceiling);
#   * N own-GIL sub-interpreters inside one `python3` process, on N threads
#     (CPython's own `_interpreters`, nothing of ours: what the interpreter
#     itself gets from PEP 684 here).
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

# Each loop also reports, from /proc/thread-self/schedstat, how long its
# thread ran on a CPU and how long it waited for one: on a loaded machine
# the wall time is mostly waiting, and what is left (wall - ran - waited) is
# time the thread slept, blocked on something (another interpreter's GIL,
# were they not independent).
loop = """
import time
def _schedstat():
    try:
        with open('/proc/thread-self/schedstat') as f:
            ran, waited = f.read().split()[:2]
        return int(ran) / 1e9, int(waited) / 1e9
    except OSError:
        return 0.0, 0.0
def spin(n):
    ran0, waited0 = _schedstat()
    start = time.time()
    x = 0
    for i in range(n):
        x = (x * 31 + i) % 1000003
    stop = time.time()
    ran1, waited1 = _schedstat()
    return [start, stop, ran1 - ran0, waited1 - waited0]
"""

# Calibrate in the main interpreter: ~1 s per loop.
:ok = ErlangPython.exec(loop)
{:ok, [s, e | _]} = ErlangPython.call(:__main__, :spin, [2_000_000], timeout: :infinity)
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

# {makespan, mean seconds on a CPU per loop, total seconds blocked}
makespan = fn spans ->
  starts = Enum.map(spans, &Enum.at(&1, 0))
  ends = Enum.map(spans, &Enum.at(&1, 1))
  ran = spans |> Enum.map(&Enum.at(&1, 2)) |> Enum.sum()

  blocked =
    spans
    |> Enum.map(fn [start, stop, r, w | _] -> max(stop - start - r - w, 0.0) end)
    |> Enum.sum()

  {Enum.max(ends) - Enum.min(starts), ran / length(spans), blocked}
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

# A launcher linked to the same shared libpython as the NIF, if cc builds one.
launcher =
  with cc when is_binary(cc) <- System.find_executable("cc"),
       {paths, 0} <-
         System.cmd(executable, [
           "-c",
           "import sysconfig as s; print(s.get_paths()['include']); print(s.get_config_var('LIBDIR')); " <>
             "print(s.get_config_var('LDVERSION'))"
         ]),
       [include, libdir, ldversion] <- String.split(paths, "\n", trim: true),
       dir = Path.join(System.tmp_dir!(), "erlang_python_bench_launcher"),
       :ok <- File.mkdir_p(dir),
       :ok <-
         File.write(Path.join(dir, "main.c"), """
         #include <Python.h>
         int main(int argc, char **argv) { return Py_BytesMain(argc, argv); }
         """),
       target = Path.join(dir, "python-shared"),
       {_, 0} <-
         System.cmd(
           cc,
           ["-O2", "-I#{include}", Path.join(dir, "main.c"), "-o", target, "-L#{libdir}"] ++
             ["-lpython#{ldversion}", "-Wl,-rpath,#{libdir}"],
           stderr_to_stdout: true
         ) do
    target
  else
    _ -> nil
  end

IO.puts("launcher linked to the shared libpython: #{launcher || "not built (no cc or headers)"}")

processes = fn count, binary ->
  script = loop <> "\nimport json; print(json.dumps(spin(#{iterations})))"

  1..count
  |> Enum.map(fn _ ->
    Task.async(fn ->
      {out, 0} = System.cmd(binary, ["-c", script])

      out
      |> String.trim()
      |> String.split(["[", "]", ","], trim: true)
      |> Enum.map(&(String.trim(&1) |> Float.parse() |> elem(0)))
    end)
  end)
  |> Task.await_many(:infinity)
  |> makespan.()
end

# N isolated sub-interpreters in one python3 process, one thread each.
in_python_subinterpreters = fn count ->
  # Each interpreter writes its loop's figures to fd 1 as one line.
  run = "import os\nos.write(1, (repr(spin(#{iterations})) + chr(10)).encode())"

  script = """
  import _interpreters, threading
  code = #{inspect(loop)} + "\\n" + #{inspect(run)}
  ids = [_interpreters.create('isolated') for _ in range(#{count})]
  threads = [threading.Thread(target=_interpreters.exec, args=(i, code)) for i in ids]
  for t in threads: t.start()
  for t in threads: t.join()
  """

  {out, 0} = System.cmd(executable, ["-c", script])

  out
  |> String.split("\n", trim: true)
  |> Enum.map(fn line ->
    line
    |> String.split(["[", "]", ","], trim: true)
    |> Enum.map(&(String.trim(&1) |> Float.parse() |> elem(0)))
  end)
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

throughput = fn count, {seconds, _ran, _blocked} -> count / seconds end

for round <- 1..rounds do
  IO.puts("\nround #{round} (load #{Bench.Machine.loadavg()})")
  one_own = in_contexts.([hd(own)])
  one_shared = in_contexts.([hd(shared)])
  {n_own, latency} = with_latency.(fn -> in_contexts.(own) end)
  n_shared = in_contexts.(shared)
  n_procs = processes.(n, executable)
  one_proc = processes.(1, executable)
  n_shared_procs = if launcher, do: processes.(n, launcher)
  n_cpython_subs = in_python_subinterpreters.(n)

  row = fn label, count, {seconds, ran, blocked} = run ->
    IO.puts(
      "  #{String.pad_trailing(label, 30)} #{:io_lib.format("~6.3f", [seconds])} s  " <>
        "#{:io_lib.format("~5.2f", [throughput.(count, run)])} loops/s  " <>
        "on a CPU #{:io_lib.format("~5.3f", [ran])} s per loop, blocked #{round(blocked * 1000)} ms"
    )
  end

  row.("1 own-GIL context", 1, one_own)
  row.("1 shared-GIL context", 1, one_shared)
  row.("1 python3 process", 1, one_proc)
  row.("#{n} own-GIL contexts", n, n_own)
  row.("#{n} shared-GIL contexts", n, n_shared)
  row.("#{n} python3 processes", n, n_procs)
  row.("#{n} sub-interpreters in python3", n, n_cpython_subs)
  if n_shared_procs, do: row.("#{n} processes, shared libpython", n, n_shared_procs)

  IO.puts(
    "  => #{n} own-GIL contexts: #{Float.round(throughput.(n, n_own) / throughput.(1, one_own), 2)}x one context, " <>
      "#{round(100 * throughput.(n, n_own) / throughput.(n, n_procs))}% of #{n} processes' throughput " <>
      "(processes: #{Float.round(throughput.(n, n_procs) / throughput.(1, one_proc), 2)}x one process; " <>
      "shared GIL: #{Float.round(throughput.(n, n_shared) / throughput.(1, one_shared), 2)}x)"
  )

  {_, own_ran, _} = n_own
  {_, proc_ran, _} = n_procs

  IO.puts(
    "  => CPU time per loop, own-GIL contexts / processes: #{Float.round(own_ran / proc_ran, 2)} " <>
      "(the interpreter's speed in the VM, whatever the load)"
  )

  if n_shared_procs do
    IO.puts(
      "  => #{n} own-GIL contexts: #{round(100 * throughput.(n, n_own) / throughput.(n, n_shared_procs))}% " <>
        "of #{n} processes running the same shared libpython"
    )
  end

  IO.puts("  BEAM while #{n} own-GIL contexts ran: #{latency}")
end

IO.puts("\nload average at end #{Bench.Machine.loadavg()}")
