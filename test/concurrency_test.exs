defmodule ErlangPython.ConcurrencyTest do
  use ExUnit.Case, async: true

  test "1000 concurrent callers each get their own answer" do
    results =
      1..1000
      |> Enum.map(fn i ->
        Task.async(fn ->
          {i, ErlangPython.call(:operator, :mul, [i, i]), ErlangPython.eval("n + 1", %{n: i})}
        end)
      end)
      |> Task.await_many(60_000)

    for {i, call_result, eval_result} <- results do
      assert call_result == {:ok, i * i}
      assert eval_result == {:ok, i + 1}
    end

    assert length(results) == 1000
  end

  test "a slow call does not block the caller's scheduler" do
    # While Python sleeps, other BEAM processes keep running on every scheduler.
    task = Task.async(fn -> ErlangPython.eval("__import__('time').sleep(0.3) or 'slept'") end)
    counter = Task.async(fn -> Enum.reduce(1..200_000, 0, &(&1 + &2)) end)
    assert Task.await(counter) == 20_000_100_000
    assert {:ok, "slept"} = Task.await(task)
  end

  # A CPU-bound Python thread at the schedulers' priority shares the VM's
  # CPU share with them (autogroup, cgroups): a scheduler waking for a timer
  # then waits behind it (5 ms sleeps fired ~140 ms late at p99 on a loaded
  # machine). Linux names threads in /proc; the thread names are ours.
  test "threads that run Python run nicer than the schedulers" do
    # A Python thread made by Python code inherits its creator's priority.
    :ok =
      ErlangPython.exec("""
      import threading
      def _thread_nice():
          out = []
          t = threading.Thread(target=lambda: out.append(open('/proc/thread-self/stat').read()))
          t.start()
          t.join()
          return out[0]
      """)

    {:ok, started_by_python} = ErlangPython.call(:__main__, :_thread_nice, [])

    threads =
      for tid <- File.ls!("/proc/self/task"),
          {:ok, stat} <- [File.read("/proc/self/task/#{tid}/stat")],
          do: {File.read!("/proc/self/task/#{tid}/comm") |> String.trim(), nice(stat)}

    schedulers = for {name, nice} <- threads, name =~ ~r/^\d+_scheduler$/, do: nice
    python = for {name, nice} <- threads, name =~ ~r/^erlang_python(_\d+)?$/, do: nice

    assert schedulers != [] and python != []
    assert Enum.min(python) > Enum.max(schedulers)
    assert nice(started_by_python) > Enum.max(schedulers)
  end

  # Field 19 of /proc/<pid>/task/<tid>/stat, counted after the command name.
  defp nice(stat) do
    [_, after_name] = String.split(stat, ") ", parts: 2)
    after_name |> String.split(" ") |> Enum.at(16) |> String.to_integer()
  end

  test "replies never reach another process" do
    parent = self()

    pids =
      for i <- 1..200 do
        spawn(fn ->
          result = ErlangPython.eval("i", %{i: i})
          # Nothing else may be in this process's mailbox.
          extra =
            receive do
              msg -> msg
            after
              50 -> :none
            end

          send(parent, {:result, i, result, extra})
        end)
      end

    for i <- 1..200 do
      assert_receive {:result, ^i, {:ok, ^i}, :none}, 10_000
    end

    assert length(pids) == 200
  end
end
