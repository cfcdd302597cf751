# Diagnostic behind own-GIL contexts' default thread priority
# (guides/parallelism.md, "The BEAM while contexts spin"): N contexts spin
# in 2M-iteration chunks while a process measures how late 5 ms timers
# fire, and the contexts' Python throughput is counted. The contexts'
# threads are set, from inside Python, to each of POLICIES in turn
# (comma-separated; "normal" = SCHED_OTHER at nice 0, "idle" =
# SCHED_IDLE, "batch" = SCHED_BATCH, "nice:N"; combine with "+", e.g.
# "batch+nice:5"; "config" leaves them as the library's options set them,
# e.g. POLICIES=config ELIXIR_ERL_OPTIONS="-erlang_python
# worker_thread_priority {nice,19}", alone in its VM), ROUNDS times,
# SECONDS each.
#
# KINDS (comma-separated) says which contexts spin: "own_gil" (N own-GIL
# contexts, N threads running Python at once; Python 3.12+, e.g. in the
# Debian 13 root: bin/test-trixie --exec env POLICIES=... mix run
# bench/own_gil_lateness.exs) and "main" (N contexts of the main
# interpreter, on the runtime's worker threads: `-erlang_python workers W`
# in ELIXIR_ERL_OPTIONS gives them W threads; with the one GIL only one of
# them runs Python at a time); "none" spins nothing, the machine's own
# lateness for reference. Default: both where own-GIL contexts exist,
# "main" alone elsewhere (Python 3.11: MIX_ENV=prod mix run
# bench/own_gil_lateness.exs).
#
#   LATE_MS=30  print every sample later than 30 ms, with its time
#   TRACE_MARKER=/sys/kernel/tracing/instances/NAME/trace_marker
#               also write "ep17 late ..." markers there (mount tracefs in
#               the root first), to find the late windows in a trace of
#               sched:sched_switch, sched:sched_wakeup and
#               syscalls:sys_enter_sched_yield taken in that instance
n = String.to_integer(System.get_env("N", "2"))
seconds = String.to_integer(System.get_env("SECONDS", "6"))
rounds = String.to_integer(System.get_env("ROUNDS", "2"))
late_ms = String.to_integer(System.get_env("LATE_MS", "1000000"))
policies = String.split(System.get_env("POLICIES", "normal,nice:19"), ",")
marker = System.get_env("TRACE_MARKER")

loop = """
import os, threading
def spin(n):
    x = 0
    for i in range(n):
        x = (x * 31 + i) % 1000003
    return x
def set_policy(spec):
    tid = threading.get_native_id()
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    os.setpriority(os.PRIO_PROCESS, tid, 0)
    for part in spec.split('+'):
        if part == 'idle':
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        elif part == 'batch':
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
        elif part.startswith('nice:'):
            os.setpriority(os.PRIO_PROCESS, tid, int(part[5:]))
    return [os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, tid)]
"""

own_gil? = ErlangPython.OwnGil.supported?()
kinds = String.split(System.get_env("KINDS", if(own_gil?, do: "own_gil,main", else: "main")), ",")

# The own-GIL contexts' threads run at the option's priority, overridden
# by set_policy in every round; the main interpreter's workers, at the
# schedulers' own until set_policy changes them.
contexts_of = fn
  "own_gil" -> for _ <- 1..n, do: ErlangPython.ContextServer.start_link(own_gil: true)
  "main" -> for _ <- 1..n, do: ErlangPython.ContextServer.start_link([])
  "none" -> []
end

contexts =
  Map.new(kinds, fn kind ->
    {kind,
     for {:ok, ctx} <- contexts_of.(kind) do
       :ok = ErlangPython.exec(loop, context: ctx)
       ctx
     end}
  end)

chunk = 2_000_000

IO.puts(
  "VM os pid #{System.pid()}, flags #{inspect(System.get_env("ELIXIR_ERL_OPTIONS", ""))}, " <>
    "N #{n}, main-interpreter workers #{ErlangPython.Runtime.workers()}, " <>
    "schedulers #{System.schedulers_online()}, Python #{ErlangPython.eval!("__import__('sys').version.split()[0]")}"
)

mark = fn text -> if marker, do: File.write(marker, text <> "\n") end

run = fn kind, policy ->
  contexts = contexts[kind]

  # "config": the threads as the library set them (`:thread_priority`,
  # `worker_thread_priority`); only in a VM no other policy ran in yet.
  for ctx <- contexts, policy != "config" do
    {:ok, _} = ErlangPython.eval("set_policy(p)", %{p: policy}, context: ctx)
  end

  mark.("ep17 start #{policy}")
  t_start = System.monotonic_time(:microsecond)
  deadline = t_start + seconds * 1_000_000

  workers =
    for ctx <- contexts do
      Task.async(fn ->
        Stream.repeatedly(fn ->
          {:ok, _} = ErlangPython.eval("spin(k)", %{k: chunk}, context: ctx, timeout: :infinity)
          System.monotonic_time(:microsecond)
        end)
        |> Enum.take_while(&(&1 <= deadline))
        |> length()
      end)
    end

  sample = fn sample, acc ->
    t0 = System.monotonic_time(:microsecond)

    if t0 > deadline do
      acc
    else
      receive do
      after
        5 ->
          late = System.monotonic_time(:microsecond) - t0 - 5_000

          if late > late_ms * 1000 do
            mark.("ep17 late #{late} us")
            IO.puts("  late #{div(late, 1000)} ms at +#{div(t0 - t_start, 1000)} ms")
          end

          sample.(sample, [late | acc])
      end
    end
  end

  lates = Enum.sort(sample.(sample, []))
  chunks = workers |> Task.await_many(:infinity) |> Enum.sum()
  elapsed = (System.monotonic_time(:microsecond) - t_start) / 1.0e6
  mark.("ep17 end #{policy}")
  p = fn q -> Enum.at(lates, min(length(lates) - 1, round(length(lates) * q))) end

  IO.puts(
    "#{String.pad_trailing(kind, 8)} #{String.pad_trailing(policy, 10)} lateness p50 #{p.(0.5)} us, p99 #{div(p.(0.99), 1000)} ms, " <>
      "max #{div(List.last(lates), 1000)} ms (#{length(lates)} samples); " <>
      "Python #{Float.round((chunks + length(contexts)) * chunk / elapsed / 1.0e6, 1)} M iterations/s " <>
      "(load #{"/proc/loadavg" |> File.read!() |> String.split() |> hd()})"
  )
end

for _ <- 1..rounds, kind <- kinds, policy <- policies, do: run.(kind, policy)
