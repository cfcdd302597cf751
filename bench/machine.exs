# Shared by the benchmarks: the machine state a run is measured in, the
# process's own CPU time, and how the worker threads' waits ended.
#
#   BENCH_MODE=idle    (default) the machine as it is
#   BENCH_MODE=busy    one busy-looping OS process per core, for the whole run
#   BENCH_MODE=pinned  this VM pinned to core 0 with `taskset` (every thread)
#
# Every run prints the load average as it starts and ends: a figure means
# little without it on a shared machine.
defmodule Bench.Machine do
  @modes ["idle", "busy", "pinned"]

  def mode do
    mode = System.get_env("BENCH_MODE", "idle")

    unless mode in @modes do
      raise ArgumentError, "BENCH_MODE must be one of #{Enum.join(@modes, ", ")}, got: #{mode}"
    end

    mode
  end

  @doc "Sets the machine up for `mode`; returns what `teardown/1` undoes."
  def setup("idle"), do: []

  def setup("busy") do
    cores = :erlang.system_info(:logical_processors_available)
    cores = if is_integer(cores), do: cores, else: System.schedulers_online()

    # Busy arithmetic; every so often it checks that its parent (the VM's
    # port helper) lives, so a VM that dies leaves no hog behind.
    hog =
      "while kill -0 $PPID 2>/dev/null; do i=0; " <>
        "while [ $i -lt 200000 ]; do i=$((i+1)); done; done"

    hogs =
      for _ <- 1..cores do
        port = Port.open({:spawn_executable, "/bin/sh"}, [:binary, args: ["-c", hog]])

        {:os_pid, pid} = Port.info(port, :os_pid)
        pid
      end

    # Let the scheduler see them running before anything is measured.
    Process.sleep(500)
    hogs
  end

  def setup("pinned") do
    taskset = System.find_executable("taskset") || raise "BENCH_MODE=pinned needs taskset"
    {_, 0} = System.cmd(taskset, ["-a", "-p", "-c", "0", System.pid()], stderr_to_stdout: true)
    []
  end

  def teardown(hogs), do: Enum.each(hogs, &System.cmd("kill", [to_string(&1)]))

  @doc """
  Puts the machine in the mode BENCH_MODE asks for (undone when the VM
  exits) and prints the header every benchmark starts with; `workers` says
  how the Python side is set up. Returns `{mode, load average at start}`.
  """
  def start(workers) do
    mode = mode()
    load_at_start = loadavg()
    hogs = setup(mode)
    System.at_exit(fn _ -> teardown(hogs) end)
    IO.puts("mode #{mode}; load average at start #{load_at_start}; #{affinity()}; #{workers}")
    {mode, load_at_start}
  end

  @doc "The load average line of /proc/loadavg (1, 5, 15 min; running/threads)."
  def loadavg do
    case File.read("/proc/loadavg") do
      {:ok, text} -> text |> String.split() |> Enum.take(4) |> Enum.join(" ")
      _ -> "unknown"
    end
  end

  @doc "This VM's affinity, as taskset prints it."
  def affinity do
    case System.find_executable("taskset") do
      nil -> "unknown"
      taskset -> taskset |> System.cmd(["-p", System.pid()]) |> elem(0) |> String.trim()
    end
  end

  @doc """
  Runs `fun` for `seconds`, in blocks of `block` calls (the clock is read
  between blocks only): `%{block_us:, calls:, wall:, cpu:, spun:, parked:}`,
  each block's microseconds, the calls made, the run's wall and CPU
  microseconds (`cpu_us/1`), and how the workers' waits for a request ended
  meanwhile (`worker_waits/0`).
  """
  def timed_run(fun, seconds, block) do
    stop_at = System.monotonic_time(:microsecond) + round(seconds * 1_000_000)
    waits_before = worker_waits()
    cpu_before = cpu_us()
    started = System.monotonic_time(:microsecond)
    block_us = timed_blocks(fun, block, stop_at, [])
    wall = System.monotonic_time(:microsecond) - started
    cpu = cpu_us() - cpu_before
    waits_after = worker_waits()

    %{
      block_us: block_us,
      calls: length(block_us) * block,
      wall: wall,
      cpu: cpu,
      spun: waits_after.spun - waits_before.spun,
      parked: waits_after.parked - waits_before.parked
    }
  end

  defp timed_blocks(fun, block, stop_at, done) do
    {us, _} = :timer.tc(fn -> Enum.each(1..block, fn _ -> fun.() end) end)
    done = [us | done]

    if System.monotonic_time(:microsecond) < stop_at,
      do: timed_blocks(fun, block, stop_at, done),
      else: done
  end

  @doc """
  How the worker threads' waits for a request have ended so far, summed
  over the pool (`ErlangPython.pool_stats/0`): `%{spun:, parked:}`, whether
  a request came while a worker spun (fully or briefly) or it parked. The
  difference over a run says whether the workers spun on the machine as it
  was.
  """
  def worker_waits do
    counts =
      worker_counts([
        :caught_spinning,
        :caught_brief_spin,
        :parked_after_spin,
        :parked_slow_arrivals,
        :parked_no_free_core
      ])

    %{
      spun: counts.caught_spinning + counts.caught_brief_spin,
      parked: counts.parked_after_spin + counts.parked_slow_arrivals + counts.parked_no_free_core
    }
  end

  @doc """
  The workers' counters `keys` of `ErlangPython.pool_stats/0`, each summed
  over the pool: `%{key => count}` (0 for a counter the build measured does
  not keep).
  """
  def worker_counts(keys) do
    workers = ErlangPython.pool_stats().workers
    Map.new(keys, fn key -> {key, Enum.sum(for w <- workers, do: Map.get(w, key, 0))} end)
  end

  @doc """
  The machine's CPU time so far, from the `cpu` line of `/proc/stat`:
  `{steal, all}` in clock ticks, every core summed. `steal` is the time
  the hypervisor ran something else while this virtual machine's cores
  wanted to run (0 on bare metal); `all` counts every state, steal
  included. nil where there is no `/proc/stat`.

  `steal_share/2` of two readings is the share of the machine's time the
  host took between them. On the development VM the slowest sequential
  runs came with it: 20,000-call runs of `operator.add` at 9-13 us a call
  saw 12-22% of the time stolen, those at 3-5 us about none.
  """
  def cpu_ticks do
    with {:ok, text} <- File.read("/proc/stat"),
         ["cpu" | fields] <- text |> String.split("\n", parts: 2) |> hd() |> String.split() do
      ticks = Enum.map(fields, &String.to_integer/1)
      # user nice system idle iowait irq softirq steal [guest guest_nice]:
      # guest time is already counted in user and nice.
      counted = Enum.take(ticks, 8)
      {Enum.at(counted, 7, 0), Enum.sum(counted)}
    else
      _ -> nil
    end
  end

  @doc "The share (0..1) of the machine's time stolen between two `cpu_ticks/0` readings."
  def steal_share({steal_before, all_before}, {steal_after, all_after})
      when all_after > all_before,
      do: (steal_after - steal_before) / (all_after - all_before)

  def steal_share(_before, _after), do: nil

  @doc "The median of `values` (of an even count, the upper of the middle two)."
  def median(values), do: values |> Enum.sort() |> Enum.at(div(length(values), 2))

  @doc """
  CPU time an OS process (by default this VM: every thread, schedulers and
  Python workers) has used, in microseconds.

  This VM's is the kernel's exact figure (`ErlangPython.Native.process_cpu_us/0`,
  one system call). Another process's, or this VM's with a build that lacks
  that function (this file run against an older checkout), is summed over
  its living threads' `/proc/PID/task/TID/schedstat` (run time in
  nanoseconds; each file read costs a hop to a dirty I/O scheduler, so
  about 1.5 ms in all for the VM's threads). Where the kernel keeps no
  schedstat, the clock ticks of `/proc/PID/task/TID/stat`. Ticks are
  10 ms: they made a 30 ms window's CPU/wall a matter of 3 or 4 ticks.
  """
  def cpu_us(os_pid \\ "self") do
    if os_pid == "self" and function_exported?(ErlangPython.Native, :process_cpu_us, 0) do
      ErlangPython.Native.process_cpu_us() || threads_cpu_us(os_pid)
    else
      threads_cpu_us(os_pid)
    end
  end

  defp threads_cpu_us(os_pid),
    do: os_pid |> thread_cpu_us() |> Enum.map(&elem(&1, 1)) |> Enum.sum()

  @doc """
  `{name, CPU microseconds}` of each living thread of an OS process (see
  `cpu_us/1`; names as the kernel has them, `1_scheduler`, `erlang_python0`).
  """
  def thread_cpu_us(os_pid \\ "self") do
    dir = "/proc/#{os_pid}/task"

    case File.ls(dir) do
      {:ok, tasks} -> Enum.flat_map(tasks, &thread_cpu(Path.join(dir, &1)))
      {:error, _} -> []
    end
  end

  defp thread_cpu(task_dir) do
    with {:ok, stat} <- File.read(Path.join(task_dir, "stat")) do
      # The name (in parentheses) may hold spaces; fields follow it.
      [head, rest] = String.split(stat, ") ", parts: 2)
      name = head |> String.split("(", parts: 2) |> List.last()

      us =
        case File.read(Path.join(task_dir, "schedstat")) do
          {:ok, text} ->
            text |> String.split() |> hd() |> String.to_integer() |> div(1_000)

          {:error, _} ->
            fields = String.split(rest)
            ticks = String.to_integer(Enum.at(fields, 11)) + String.to_integer(Enum.at(fields, 12))
            ticks * div(1_000_000, clock_ticks())
        end

      [{name, us}]
    else
      # A thread that ended meanwhile.
      {:error, _} -> []
    end
  end

  # Asked once: a command run between two readings would blur them.
  defp clock_ticks do
    with nil <- :persistent_term.get({__MODULE__, :ticks}, nil) do
      ticks =
        case System.cmd("getconf", ["CLK_TCK"]) do
          {ticks, 0} -> ticks |> String.trim() |> String.to_integer()
          _ -> 100
        end

      :persistent_term.put({__MODULE__, :ticks}, ticks)
      ticks
    end
  end
end
