# Isolated contexts against embedded ones and the port bridge:
#   MIX_ENV=prod mix run bench/isolated.exs      (BENCH_QUICK=1 for a smoke run)
#
# Three rows, each measured in this one run, interleaved (so they compare on
# a noisy machine), the median of several: a call's latency, a 1,000,000-integer
# list summed, a 100 MB binary passed as bytes. "isolated" moves frames
# through shared memory (the default transport), "pipes" is the same worker
# with `transport: :pipes`. A call to an idle shared-memory worker goes
# direct (caller -> ring -> caller, no server hop); pipes pass the server. The port bridge is
# bench/port_bridge.py, Python on a port with a codec in Python (as
# erlport-style bridges run it); the isolated worker is also Python on a port,
# with the codec in Rust. The load average is printed with every row.
Code.require_file("machine.exs", __DIR__)
Code.require_file("port_bridge.exs", __DIR__)

defmodule IsolatedBench do
  @quick System.get_env("BENCH_QUICK") in ["1", "true"]
  @runs if @quick, do: 3, else: 7

  def scale(n), do: if(@quick, do: max(div(n, 20), 1), else: n)

  defdelegate median(values), to: Bench.Machine

  # Median microseconds per call of each fun, calls of the three interleaved
  # run by run.
  def per_call_us(n, funs) do
    n = scale(n)
    Enum.each(funs, fn {_, fun} -> fun.() end)

    runs =
      for _ <- 1..@runs do
        for {name, fun} <- funs do
          {us, _} = :timer.tc(fn -> for _ <- 1..n, do: fun.() end)
          {name, us / n}
        end
      end

    for {name, _} <- funs, do: {name, median(for run <- runs, do: :proplists.get_value(name, run))}
  end
end

Bench.Machine.start(
  "#{System.schedulers_online()} schedulers; embedded: a context process; isolated: a worker process"
)

{:ok, _} = Application.ensure_all_started(:erlang_python)
{:ok, embedded} = ErlangPython.ContextServer.start_link()
{:ok, isolated} = ErlangPython.ContextServer.start_link(isolated: true)
{:ok, piped} = ErlangPython.ContextServer.start_link(isolated: true, transport: :pipes)
port = PortBridge.start()

list_1m = Enum.to_list(1..1_000_000)
bin_100mb = :binary.copy(<<7>>, 100_000_000)

rows = [
  {"call operator.add(1, 2)", 5_000, "us/call",
   fn ctx -> {:ok, 3} = ErlangPython.call(:operator, :add, [1, 2], context: ctx) end,
   fn -> 3 = PortBridge.call(port, "operator", "add", [1, 2]) end, 1},
  {"sum of a 1,000,000-integer list", 3, "ms",
   fn ctx ->
     {:ok, _} = ErlangPython.call(:builtins, :sum, [list_1m], context: ctx, timeout: 60_000)
   end, fn -> PortBridge.call(port, "builtins", "sum", [list_1m]) end, 1},
  {"len of a 100 MB binary as bytes", 3, "GB/s",
   fn ctx ->
     {:ok, 100_000_000} =
       ErlangPython.call(:builtins, :len, [{:bytes, bin_100mb}], context: ctx, timeout: 60_000)
   end, fn -> 100_000_000 = PortBridge.call(port, "builtins", "len", [bin_100mb]) end, 100_000_000}
]

IO.puts(
  String.pad_trailing("workload", 34) <>
    "embedded     isolated     pipes        port bridge  port/isolated  load average"
)

# BENCH_HOPS_ONLY=1 skips the table: only the per-call counters below.
rows = if System.get_env("BENCH_HOPS_ONLY") in ["1", "true"], do: [], else: rows

for {name, n, unit, in_context, bridged, bytes} <- rows do
  results =
    IsolatedBench.per_call_us(n,
      embedded: fn -> in_context.(embedded) end,
      isolated: fn -> in_context.(isolated) end,
      pipes: fn -> in_context.(piped) end,
      port: bridged
    )

  show = fn us ->
    value =
      case unit do
        "us/call" -> us
        "ms" -> us / 1000
        "GB/s" -> bytes / us / 1000
      end

    String.pad_trailing("#{Float.round(value * 1.0, 2)} #{unit}", 13)
  end

  us = Map.new(results)
  ratio = Float.round(us.port / us.isolated, 1)

  IO.puts(
    String.pad_trailing(name, 34) <>
      show.(us.embedded) <>
      show.(us.isolated) <>
      show.(us.pipes) <>
      show.(us.port) <> String.pad_trailing("#{ratio}x", 15) <> Bench.Machine.loadavg()
  )
end

# Where an isolated call's time goes: the channel's counters over a run of
# calls, per call. to_worker is the request ring (the worker waits on it),
# to_vm the reply ring (the VM's reader thread waits on it, unless the
# caller takes its reply itself). "caught" waits ended while spinning,
# "parked" ones slept on the futex (no spin at all: "slow" recent arrivals,
# "busy" other work kept the waiting thread off a core: see
# native/erlang_python_nif/src/runtime/core_signal.rs); "wakes" are futex
# wake system calls by the writer (data) and the reader (space); "arrival"
# is how long into a wait the writer published (its own stamp), the rest
# of the wait is the parked reader's wake-up. CPU is each
# OS process's own, per call. The direct calls' line says whether callers
# polled for their replies, and if not for whose lack of a core.
defmodule IsolatedBench.Hops do
  # The kernel's view of one thread: {ns run, ns runnable but waiting for
  # a core, times it got a core, involuntary context switches}
  # (/proc/PID/task/TID/schedstat and status).
  def thread_sched(os_pid, tid) do
    dir = "/proc/#{os_pid}/task/#{tid}"

    with {:ok, stat} <- File.read(dir <> "/schedstat"),
         {:ok, status} <- File.read(dir <> "/status") do
      [ran, waited, runs] = stat |> String.split() |> Enum.map(&String.to_integer/1)
      [_, nivcsw] = Regex.run(~r/nonvoluntary_ctxt_switches:\s+(\d+)/, status)
      {ran, waited, runs, String.to_integer(nivcsw)}
    else
      _ -> {0, 0, 0, 0}
    end
  end

  # The busiest threads of an OS process, {tid, name}: the VM's schedulers
  # and the reader thread, or the worker's main thread.
  def threads(os_pid, names) do
    for tid <- File.ls!("/proc/#{os_pid}/task"),
        name = String.trim(File.read!("/proc/#{os_pid}/task/#{tid}/comm")),
        Enum.any?(names, &String.starts_with?(name, &1)),
        do: {tid, name}
  end

  def sched_line(os_pid, threads, before, later, n) do
    for {tid, name} <- threads do
      {r0, w0, s0, i0} = before[tid]
      {r1, w1, s1, i1} = later[tid]
      runs = max(s1 - s0, 1)

      "#{name} ran #{Float.round((r1 - r0) / n / 1000, 2)} us/call, waited for a core " <>
        "#{Float.round((w1 - w0) / runs / 1000, 2)} us/run over #{Float.round(runs / n, 2)} runs/call, " <>
        "preempted #{Float.round((i1 - i0) / n, 3)}/call"
    end
    |> Enum.join("\n    ")
    |> then(&("  kernel (#{os_pid}): " <> &1))
  end

  def snapshot(os_pid, threads),
    do: Map.new(threads, fn {tid, _} -> {tid, thread_sched(os_pid, tid)} end)

  def run(ctx, n, mode) do
    :ok = ErlangPython.Isolated.set_reply_polling(ctx, mode)
    {:ok, os_pid} = ErlangPython.Isolated.os_pid(ctx)
    before = ErlangPython.Isolated.channel_stats(ctx)
    vm_threads = threads(System.pid(), ["1_scheduler", "2_scheduler", "ep-isolated-rx"])
    worker_threads = threads(os_pid, ["erlang_python_w"])
    {vs0, ws0} = {snapshot(System.pid(), vm_threads), snapshot(os_pid, worker_threads)}
    {vm0, w0} = {Bench.Machine.cpu_us(), Bench.Machine.cpu_us(os_pid)}

    {us, _} =
      :timer.tc(fn ->
        for _ <- 1..n, do: {:ok, 3} = ErlangPython.call(:operator, :add, [1, 2], context: ctx)
      end)

    {vm1, w1} = {Bench.Machine.cpu_us(), Bench.Machine.cpu_us(os_pid)}
    {vs1, ws1} = {snapshot(System.pid(), vm_threads), snapshot(os_pid, worker_threads)}
    later = ErlangPython.Isolated.channel_stats(ctx)
    per = fn a, b -> Float.round((b - a) / n, 2) end

    ring = fn key ->
      {a, b} = {before[key], later[key]}
      waits = b.caught_spinning - a.caught_spinning + (b.parked - a.parked)

      "caught #{per.(a.caught_spinning, b.caught_spinning)} parked #{per.(a.parked, b.parked)}" <>
        " (slow #{per.(a.no_spin_slow, b.no_spin_slow)} busy #{per.(a.no_spin_busy, b.no_spin_busy)})" <>
        " wait #{Float.round((b.wait_ns - a.wait_ns) / max(waits, 1) / 1000, 2)} us" <>
        " (arrival #{Float.round((b.arrival_ns - a.arrival_ns) / max(waits, 1) / 1000, 2)} us)" <>
        " data wakes #{per.(a.data_wakes, b.data_wakes)} space wakes #{per.(a.space_wakes, b.space_wakes)}"
    end

    direct = later.direct_calls - before.direct_calls
    reply_ns = later.direct_reply_ns - before.direct_reply_ns

    IO.puts("""
    isolated call, caller polling #{mode}, per call over #{n} calls (#{Bench.Machine.loadavg()}):
      wall #{Float.round(us / n, 2)} us; CPU: VM #{per.(vm0, vm1)} us, worker #{per.(w0, w1)} us
      direct calls #{per.(before.direct_calls, later.direct_calls)}: the caller polled #{per.(before.direct_polled, later.direct_polled)} and took the reply itself #{per.(before.direct_taken, later.direct_taken)}; did not poll for lack of a core: the caller's #{per.(before.unpolled_caller_busy, later.unpolled_caller_busy)}, the worker's #{per.(before.unpolled_worker_busy, later.unpolled_worker_busy)}; for slow replies #{per.(Map.get(before, :unpolled_slow, 0), Map.get(later, :unpolled_slow, 0))}
      the VM's free-core samples: #{later.core_samples - before.core_samples}, #{later.core_samples_busy - before.core_samples_busy} of them showing other work
      others: request in ring -> reply sent by the VM's reader thread #{Float.round(reply_ns / max(direct - (later.direct_taken - before.direct_taken), 1) / 1000, 2)} us
      request ring (worker waits): #{ring.(:to_worker)}
      reply ring (VM waits):       #{ring.(:to_vm)}
    #{sched_line(System.pid(), vm_threads, vs0, vs1, n)}
    #{sched_line(os_pid, worker_threads, ws0, ws1, n)}
    """)
  end
end

# The caller's polling for its reply: adaptive (the default, the table's
# "isolated"), never (every reply through the VM's reader thread, as before
# polling existed) and always (polls whatever the machine's load), in turn.
for _ <- 1..2, mode <- [:adaptive, :never, :always] do
  IsolatedBench.Hops.run(isolated, IsolatedBench.scale(20_000), mode)
end

:ok = ErlangPython.Isolated.set_reply_polling(isolated, :adaptive)
