# Shared by the benchmarks: the machine state a run is measured in, and the
# process's own CPU time.
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
  CPU time this OS process (every thread: schedulers, Python workers) has
  used, in microseconds, from /proc/self/stat (user + system, in clock
  ticks of 10 ms: measure over a second or more).
  """
  def cpu_us do
    stat = File.read!("/proc/self/stat")
    # Fields after the command name (which may hold spaces) start at 3.
    [_, rest] = String.split(stat, ") ", parts: 2)
    fields = String.split(rest)
    utime = String.to_integer(Enum.at(fields, 11))
    stime = String.to_integer(Enum.at(fields, 12))
    (utime + stime) * div(1_000_000, clock_ticks())
  end

  defp clock_ticks do
    case :persistent_term.get({__MODULE__, :ticks}, nil) do
      nil ->
        {text, 0} = System.cmd("getconf", ["CLK_TCK"])
        ticks = text |> String.trim() |> String.to_integer()
        :persistent_term.put({__MODULE__, :ticks}, ticks)
        ticks

      ticks ->
        ticks
    end
  end
end
