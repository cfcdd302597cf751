defmodule ErlangPython.WorkerPoolTest do
  # The worker pool's placement, on a peer VM with `workers: 2` (the pool is
  # fixed at start): unbound requests go to whichever worker is free, so a
  # worker stuck in a long call holds up nobody; a context's requests stay
  # on its worker; `pool_stats/0` shows both.
  use ExUnit.Case, async: false

  @moduletag timeout: 120_000

  setup_all do
    {peer, node} = ErlangPython.PeerNode.start!([~c"-erlang_python", ~c"workers", ~c"2"])
    on_exit(fn -> ErlangPython.PeerNode.stop(peer) end)
    %{node: node}
  end

  defp remote(node, function, args),
    do: :erpc.call(node, ErlangPython.TestRemote, function, args, 90_000)

  test "a worker sleeping past its caller's timeout holds up no unbound call", %{node: node} do
    # The stuck worker sleeps 20 s: every call below answered while it was
    # still asleep, so none of them waited for it.
    {results, stats} = remote(node, :unbound_calls_while_a_worker_is_stuck, [100, 20])

    assert results == for(i <- 1..100, do: {:ok, i + 1})
    assert [stuck] = Enum.filter(stats.workers, & &1.busy)
    assert stuck.queued == 0, "no request waits behind the stuck worker"
    assert stats.shared_queue == 0
    [free] = stats.workers -- [stuck]
    assert free.completed >= 100
  end

  test "a context's request waits for its own worker and is shown queued there", %{node: node} do
    {stats, results} = remote(node, :context_call_queued_behind_a_sleep, [1])

    assert [busy] = Enum.filter(stats.workers, & &1.busy)
    assert busy.queued == 1
    assert Enum.all?(stats.workers -- [busy], &(&1.queued == 0))
    assert [{:ok, {_sent, nil}}, {:ok, 2}] = results
  end

  test "busy time and completed requests add up", %{node: node} do
    before = :erpc.call(node, ErlangPython, :pool_stats, [])
    {:ok, nil} = :erpc.call(node, ErlangPython, :eval, ["__import__('time').sleep(0.2)"])
    later = :erpc.call(node, ErlangPython, :pool_stats, [])

    spent =
      Enum.sum(Enum.map(later.workers, & &1.busy_us)) -
        Enum.sum(Enum.map(before.workers, & &1.busy_us))

    done =
      Enum.sum(Enum.map(later.workers, & &1.completed)) -
        Enum.sum(Enum.map(before.workers, & &1.completed))

    assert spent >= 200_000
    assert done >= 1
    assert Enum.map(later.workers, & &1.index) == [0, 1]
  end

  test "every wait for a request is counted once, with how it ended", %{node: node} do
    keys = [
      :caught_spinning,
      :parked_after_spin,
      :parked_slow_arrivals,
      :caught_brief_spin,
      :parked_no_free_core
    ]

    before = :erpc.call(node, ErlangPython, :pool_stats, [])

    # One caller at a time: each request finds a worker with nothing to do,
    # unless it came before the worker looked again after the last reply.
    for i <- 1..200, do: {:ok, ^i} = :erpc.call(node, ErlangPython, :eval, ["x", %{x: i}])

    later = :erpc.call(node, ErlangPython, :pool_stats, [])
    waits = sum_of(later, keys) - sum_of(before, keys)
    done = sum_of(later, [:completed]) - sum_of(before, [:completed])

    assert done >= 200
    assert waits >= 1, "200 calls one after another never found a worker waiting"
    assert waits <= done, "#{waits} waits counted for #{done} requests"

    # Probes are among the waits that spun.
    spun = sum_of(later, [:caught_spinning, :parked_after_spin])
    probes = sum_of(later, [:probes])
    assert probes <= spun
    assert sum_of(later, [:probes_caught]) <= probes
  end

  # The sum of `keys` over every worker's figures.
  defp sum_of(stats, keys), do: Enum.sum(for w <- stats.workers, k <- keys, do: w[k])

  test "the test VM's pool has its one default worker" do
    assert %{workers: [%{index: 0}], shared_queue: _} = ErlangPython.pool_stats()
  end

  # The benchmarks' CPU per call (bench/machine.exs) reads this: the whole
  # OS process's time, the Python worker's included, in microseconds.
  test "the process's CPU time counts the Python worker's, in microseconds" do
    :ok =
      ErlangPython.exec("""
      import time

      def burn_cpu_ns(ns):
          start = time.thread_time_ns()
          while time.thread_time_ns() - start < ns:
              pass
          return time.thread_time_ns() - start
      """)

    ticks_before = proc_stat_cpu_us()
    before = ErlangPython.Native.process_cpu_us()
    {:ok, burnt_ns} = ErlangPython.eval("burn_cpu_ns(40_000_000)")
    later = ErlangPython.Native.process_cpu_us()
    ticks_later = proc_stat_cpu_us()

    # The worker thread's 40 ms are in it, and the kernel's clock-tick
    # figure agrees within its rounding (two readings of 10 ms ticks) and
    # the moments between the readings.
    assert later - before >= div(burnt_ns, 1_000)
    assert abs(later - before - (ticks_later - ticks_before)) <= 30_000
  end

  # utime + stime of /proc/self/stat, in microseconds (ticks of 10 ms).
  defp proc_stat_cpu_us do
    [_, rest] = String.split(File.read!("/proc/self/stat"), ") ", parts: 2)
    fields = String.split(rest)
    (String.to_integer(Enum.at(fields, 11)) + String.to_integer(Enum.at(fields, 12))) * 10_000
  end
end
