defmodule ErlangPython.WorkerThreadPriorityTest do
  # `config :erlang_python, worker_thread_priority:`: how the main
  # interpreter's worker threads, and the threads Python starts from them,
  # are scheduled against the VM's. The workers start once per VM, so the
  # settings other than the default are tried in peer VMs. Each thread's
  # policy and niceness are read by Python from its own
  # /proc/thread-self/stat (ErlangPython.ThreadScheduling).
  use ExUnit.Case, async: false

  @moduletag timeout: 120_000

  alias ErlangPython.ThreadScheduling
  import ErlangPython.ThreadScheduling, only: [vm_niceness: 0]

  # Linux's scheduling policies, as stat's field 41 gives them.
  @sched_other 0
  @sched_idle 5

  # The scheduling of each worker thread of `node`'s VM: one main-interpreter
  # context per worker (consecutive contexts go to consecutive workers).
  defp workers_scheduling(node) do
    workers = :erpc.call(node, ErlangPython.Runtime, :workers, [])

    for _ <- 1..workers do
      {:ok, ctx} = :erpc.call(node, ErlangPython.ContextServer, :start, [[]])
      :ok = :erpc.call(node, ErlangPython, :exec, [ThreadScheduling.python(), [context: ctx]])

      {:ok, scheduling} =
        :erpc.call(node, ErlangPython, :eval, ["scheduling()", %{}, [context: ctx]])

      scheduling
    end
  end

  defp with_peer(args, fun) do
    {peer, node} = ErlangPython.PeerNode.start!(args)

    try do
      fun.(node)
    after
      ErlangPython.PeerNode.stop(peer)
    end
  end

  test "by default the workers run as the schedulers run, as do the threads Python starts" do
    expected = [@sched_other, vm_niceness()]
    assert [[_tid, ^expected, ^expected]] = workers_scheduling(node())
  end

  test "{:nice, 19} runs every worker, and the threads Python starts, 19 steps nicer" do
    args = [~c"-erlang_python", ~c"workers", ~c"2"]
    args = args ++ [~c"-erlang_python", ~c"worker_thread_priority", ~c"{nice,19}"]

    with_peer(args, fn node ->
      schedulings = workers_scheduling(node)
      # Two distinct threads: both workers were asked.
      assert length(Enum.uniq_by(schedulings, &hd/1)) == 2
      for [_tid, own, started] <- schedulings, do: assert({own, started} == {[0, 19], [0, 19]})
    end)
  end

  test ":idle runs the workers as SCHED_IDLE" do
    with_peer([~c"-erlang_python", ~c"worker_thread_priority", ~c"idle"], fn node ->
      assert [[_tid, [@sched_idle, _], [@sched_idle, _]]] = workers_scheduling(node)
    end)
  end

  test "a bad value refuses to start the interpreter with a message naming the setting" do
    on_exit(fn -> Application.delete_env(:erlang_python, :worker_thread_priority) end)

    for bad <- [{:nice, 0}, {:nice, 20}, :high, 19] do
      Application.put_env(:erlang_python, :worker_thread_priority, bad)
      error = assert_raise ArgumentError, fn -> ErlangPython.Runtime.start() end
      assert error.message =~ ":worker_thread_priority must be :idle, :normal or {:nice, n}"
      assert error.message =~ "got: #{inspect(bad)}"
    end
  end

  test "the own-GIL priority settings are known keys of the configuration" do
    on_exit(fn -> Application.delete_env(:erlang_python, :own_gil_thread_priority) end)
    Application.put_env(:erlang_python, :own_gil_thread_priority, :normal)
    assert ErlangPython.Runtime.config()[:own_gil_thread_priority] == :normal
  end
end
