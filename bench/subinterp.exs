# Own-GIL contexts against separate python3 processes, side by side in one run.
#
#   mix run bench/subinterp.exs             # N = 2, 3 rounds
#   N=4 ROUNDS=5 mix run bench/subinterp.exs
#   PYTHON3=/usr/bin/python3.13 mix run bench/subinterp.exs
#                  # the processes' interpreter (default: the one the NIF
#                  # was built against), e.g. Debian's own python3 when the
#                  # NIF embeds a Python built elsewhere
#   PRIORITIES=idle,normal,nice:10 mix run bench/subinterp.exs
#                  # the own-GIL contexts' :thread_priority values to compare
#                  # (default nice:19,normal: the default against the
#                  # schedulers' own priority): each round runs the own-GIL rows
#                  # once per value, in turn (the order alternates from one
#                  # round to the next), beside one set of baselines
#   ELIXIR_ERL_OPTIONS="+sbwt none +sbwtdcpu none +sbwtdio none" mix run bench/subinterp.exs
#                  # schedulers that do not busy-wait (see the BEAM lateness
#                  # below and guides/parallelism.md)
#   bin/pgo-python bench   # the NIF on a PGO-built libpython (Debian 13 root)
#
# Each round runs the same pure-Python integer loop (calibrated to ~1 s on
# this machine) as:
#   * one own-GIL context alone (for each thread priority);
#   * one shared-GIL context alone (the main interpreter);
#   * N own-GIL contexts at once (for each thread priority);
#   * N shared-GIL contexts at once (the main interpreter's one GIL);
#   * N separate `python3` processes at once, started by one shell (the
#     ceiling: what the machine gives N independent interpreters);
#   * N separate processes of a tiny launcher linked to the shared libpython
#     the NIF embeds (built here with `cc` when it can be). Debian's python3
#     binary is linked statically from objects built with profile-guided
#     optimization; its libpython3.x.so, which every embedding loads, is
#     built without (debian/rules: `profile-opt` for the static build only),
#     and runs pure-Python loops ~1.9x slower per CPU second on 3.13. That
#     row is the like-for-like ceiling; guides/parallelism.md has figures;
#   * N own-GIL sub-interpreters inside one `python3` process, on N threads
#     (CPython's own `_interpreters`, nothing of ours: what the interpreter
#     itself gets from PEP 684 here).
# Each run's time is its makespan measured inside Python (first loop start
# to last loop end, `time.time()`), so process start-up is not counted.
# Throughput is loops per second; the figure that matters is own-GIL
# throughput as a share of the processes' in the same round, against both
# baselines: `python3` processes (the issue's target) and processes on the
# same libpython (what the embedding itself costs). Each round also splits
# the difference: CPU seconds per loop in each (the interpreter's speed,
# whatever the load) and time blocked (waiting on something other than a
# CPU). Meanwhile a process measures BEAM scheduler latency (how late a 5 ms
# timer fires), while the contexts run and, for comparison, while the
# processes do. A summary over the rounds ends the run.
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
python3 = System.get_env("PYTHON3", executable)

# "idle", "normal" or "nice:N", as :thread_priority values.
priorities =
  System.get_env("PRIORITIES", "nice:19,normal")
  |> String.split(",", trim: true)
  |> Enum.map(fn
    "nice:" <> n -> {:nice, String.to_integer(n)}
    name when name in ["idle", "normal"] -> String.to_atom(name)
  end)

priority_name = fn
  {:nice, n} -> "nice:#{n}"
  name -> Atom.to_string(name)
end

Bench.Machine.start(
  "Python #{version}; #{ErlangPython.Runtime.workers()} shared-GIL workers; N = #{n}; " <>
    "own-GIL thread priorities #{Enum.map_join(priorities, ", ", priority_name)}; " <>
    "VM flags #{inspect(System.get_env("ELIXIR_ERL_OPTIONS", ""))}"
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

start_contexts = fn opts ->
  for _ <- 1..n do
    {:ok, ctx} = ContextServer.start_link(opts)
    :ok = ErlangPython.exec(loop, context: ctx)
    ctx
  end
end

own = Map.new(priorities, &{&1, start_contexts.(own_gil: true, thread_priority: &1)})
shared = start_contexts.(own_gil: false)

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
IO.puts("python3 processes run: #{python3}")

# The loops' figures as the processes print them: one `[start, stop, ran,
# waited]` list a line (JSON or Python's repr, the same for a list of floats).
parse_spans = fn out ->
  out
  |> String.split("\n", trim: true)
  |> Enum.map(fn line ->
    line
    |> String.split(["[", "]", ","], trim: true)
    |> Enum.map(&(String.trim(&1) |> Float.parse() |> elem(0)))
  end)
end

# N processes started together by one shell, as a user would start them:
# one session. The VM gives every port program a session of its own
# (erl_child_setup calls setsid), and with the kernel's autogroup scheduling
# (/proc/sys/kernel/sched_autogroup_enabled) each session gets an equal CPU
# share on a busy machine: N processes in N sessions would get up to N times
# the share of the VM's N threads, which share the VM's one session.
processes = fn count, binary ->
  script = loop <> "\nimport json; print(json.dumps(spin(#{iterations})))"
  shell = "i=0; while [ $i -lt #{count} ]; do \"$0\" -c \"$1\" & i=$((i+1)); done; wait"
  {out, 0} = System.cmd("/bin/sh", ["-c", shell, binary, script])
  spans = parse_spans.(out)
  ^count = length(spans)
  makespan.(spans)
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
  spans = parse_spans.(out)
  ^count = length(spans)
  makespan.(spans)
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
  {result, %{p99: p99, max: List.last(lates), samples: length(lates)}}
end

throughput = fn count, {seconds, _ran, _blocked} -> count / seconds end

latency_text = fn %{p99: p99, max: max, samples: samples} ->
  "timer lateness p99 #{p99} us, max #{max} us (#{samples} samples)"
end

percent = fn a, b -> round(100 * a / b) end

results =
  for round <- 1..rounds do
    IO.puts("\nround #{round} (load #{Bench.Machine.loadavg()})")
    # The priorities take turns going first.
    order = if rem(round, 2) == 1, do: priorities, else: Enum.reverse(priorities)

    own_runs =
      Map.new(order, fn priority ->
        one = in_contexts.([hd(own[priority])])
        {all, latency} = with_latency.(fn -> in_contexts.(own[priority]) end)
        {priority, {one, all, latency}}
      end)

    one_shared = in_contexts.([hd(shared)])
    n_shared = in_contexts.(shared)
    {n_procs, procs_latency} = with_latency.(fn -> processes.(n, python3) end)
    one_proc = processes.(1, python3)
    n_shared_procs = if launcher, do: processes.(n, launcher)
    n_cpython_subs = in_python_subinterpreters.(n)

    row = fn label, count, {seconds, ran, blocked} = run ->
      IO.puts(
        "  #{String.pad_trailing(label, 40)} #{:io_lib.format("~6.3f", [seconds])} s  " <>
          "#{:io_lib.format("~5.2f", [throughput.(count, run)])} loops/s  " <>
          "on a CPU #{:io_lib.format("~5.3f", [ran])} s per loop, blocked #{round(blocked * 1000)} ms"
      )
    end

    for priority <- priorities do
      {one_own, n_own, _} = own_runs[priority]
      row.("1 own-GIL context, #{priority_name.(priority)}", 1, one_own)
      row.("#{n} own-GIL contexts, #{priority_name.(priority)}", n, n_own)
    end

    row.("1 shared-GIL context", 1, one_shared)
    row.("1 python3 process", 1, one_proc)
    row.("#{n} shared-GIL contexts", n, n_shared)
    row.("#{n} python3 processes", n, n_procs)
    row.("#{n} sub-interpreters in python3", n, n_cpython_subs)
    if n_shared_procs, do: row.("#{n} processes, same libpython", n, n_shared_procs)

    IO.puts(
      "  (python3 processes: #{Float.round(throughput.(n, n_procs) / throughput.(1, one_proc), 2)}x one process; " <>
        "shared GIL: #{Float.round(throughput.(n, n_shared) / throughput.(1, one_shared), 2)}x one context)"
    )

    {_, proc_ran, _} = n_procs

    same_ran =
      case n_shared_procs do
        {_, ran, _} -> ran
        nil -> nil
      end

    IO.puts("  BEAM while #{n} python3 processes ran: #{latency_text.(procs_latency)}")

    for priority <- priorities, into: %{} do
      {one_own, n_own, latency} = own_runs[priority]
      name = priority_name.(priority)
      own_vs_procs = percent.(throughput.(n, n_own), throughput.(n, n_procs))

      own_vs_same =
        n_shared_procs && percent.(throughput.(n, n_own), throughput.(n, n_shared_procs))

      {_, own_ran, _} = n_own

      IO.puts(
        "  => #{n} own-GIL contexts, #{name}: #{Float.round(throughput.(n, n_own) / throughput.(1, one_own), 2)}x one context, " <>
          "#{own_vs_procs}% of #{n} python3 processes' throughput" <>
          if(own_vs_same, do: ", #{own_vs_same}% of #{n} processes on the same libpython", else: "")
      )

      IO.puts(
        "     CPU seconds per loop: own-GIL context #{Float.round(own_ran, 3)}, python3 #{Float.round(proc_ran, 3)}" <>
          if(same_ran, do: ", same libpython #{Float.round(same_ran, 3)}", else: "") <>
          " (own-GIL / python3 = #{Float.round(own_ran / proc_ran, 2)}" <>
          if(same_ran,
            do: ", own-GIL / same libpython = #{Float.round(own_ran / same_ran, 2)})",
            else: ")"
          )
      )

      IO.puts("     BEAM while they ran: #{latency_text.(latency)}")

      {priority,
       %{
         own_vs_procs: own_vs_procs,
         own_vs_same: own_vs_same,
         cpu_ratio: own_ran / proc_ran,
         speedup: throughput.(n, n_own) / throughput.(1, one_own),
         p99: latency.p99,
         max: latency.max,
         procs_speedup: throughput.(n, n_procs) / throughput.(1, one_proc),
         procs_p99: procs_latency.p99
       }}
    end
  end

median = &Bench.Machine.median/1

summary = fn priority, key, fun ->
  values = Enum.map(results, &Map.fetch!(&1[priority], key))

  if Enum.any?(values, &is_nil/1),
    do: "n/a",
    else: "#{Enum.map_join(values, " ", fun)} (median #{fun.(median.(values))})"
end

IO.puts(
  "\nsummary over #{rounds} rounds, N = #{n}, VM flags #{inspect(System.get_env("ELIXIR_ERL_OPTIONS", ""))}:"
)

first = hd(priorities)

IO.puts(
  "  #{n} python3 processes over one:                      #{summary.(first, :procs_speedup, &"#{Float.round(&1, 2)}x")}"
)

IO.puts(
  "  BEAM timer lateness p99 while processes ran (us):  #{summary.(first, :procs_p99, &"#{&1}")}"
)

for priority <- priorities do
  IO.puts("  own-GIL contexts at thread_priority #{priority_name.(priority)}:")

  IO.puts(
    "    % of python3 processes:                         #{summary.(priority, :own_vs_procs, &"#{&1}%")}"
  )

  IO.puts(
    "    % of processes on the same libpython:           #{summary.(priority, :own_vs_same, &"#{&1}%")}"
  )

  IO.puts(
    "    own-GIL / python3 CPU seconds per loop:         #{summary.(priority, :cpu_ratio, &"#{Float.round(&1, 2)}")}"
  )

  IO.puts(
    "    #{n} own-GIL contexts over one:                   #{summary.(priority, :speedup, &"#{Float.round(&1, 2)}x")}"
  )

  IO.puts(
    "    BEAM timer lateness p99 while they ran (us):    #{summary.(priority, :p99, &"#{&1}")}"
  )

  IO.puts(
    "    BEAM timer lateness max while they ran (us):    #{summary.(priority, :max, &"#{&1}")}"
  )
end

IO.puts("\nload average at end #{Bench.Machine.loadavg()}")
