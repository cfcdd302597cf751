defmodule ErlangPython.ReliabilityTest do
  # Interrupts and the queue limit act on the one runtime: run alone.
  use ExUnit.Case, async: false

  import ErlangPython.TestHelpers

  alias ErlangPython.{CallError, Error, Runtime}

  # Start each test with an idle runtime, so a job is never cancelled
  # before it starts because of a previous test's work.
  setup do
    wait_until(fn -> ErlangPython.ping(1_000) == :pong end)
  end

  describe "timeouts interrupt Python" do
    test "a busy loop with a 200 ms timeout is stopped; the next call works" do
      :ok = ErlangPython.exec("_rel_started = False")

      assert {:error, :timeout} =
               ErlangPython.exec("_rel_started = True\nwhile True: pass", timeout: 200)

      # If the loop were still running, this would time out after 5 s.
      assert :pong = ErlangPython.ping(5_000)
      assert {:ok, 2} = ErlangPython.eval("1 + 1", %{}, timeout: 5_000)
      # It did run: it was interrupted, not skipped.
      assert {:ok, true} = ErlangPython.eval("_rel_started")
    end

    test "except Exception: does not swallow the interrupt" do
      code = """
      while True:
          try:
              sum(range(1000))
          except Exception:
              pass
      """

      assert {:error, :timeout} = ErlangPython.exec(code, timeout: 100)
      assert :pong = ErlangPython.ping(5_000)
    end

    test "finally blocks run when the code is interrupted" do
      :ok = ErlangPython.exec("_rel_cleanup = []")

      :ok =
        ErlangPython.exec("""
        def _rel_cleanup_loop(p):
            try:
                _rel_cleanup.append('started')
                __import__('erlang').send(p, 'busy')
                while True:
                    pass
            finally:
                _rel_cleanup.append('done')
        """)

      test = self()

      task =
        Task.async(fn ->
          ErlangPython.call(:__main__, :_rel_cleanup_loop, [test], timeout: :infinity)
        end)

      assert_receive "busy", 5_000
      :ok = ErlangPython.interrupt()
      assert {:error, %Error{type: "Interrupted"}} = Task.await(task, 5_000)
      assert {:ok, ["started", "done"]} = ErlangPython.eval("_rel_cleanup", %{}, timeout: 5_000)
    end

    test "a call waiting on an Elixir callback is interrupted too" do
      :ok = ErlangPython.register_function(:rel_hang, fn [] -> Process.sleep(:infinity) end)

      assert {:error, :timeout} =
               ErlangPython.eval("__import__('erlang').rel_hang()", %{}, timeout: 100)

      assert :pong = ErlangPython.ping(5_000)
    end

    test "ErlangPython.interrupt/0 stops the running code; its caller gets Interrupted" do
      test = self()

      task =
        Task.async(fn ->
          ErlangPython.eval(announce_then("while True: pass"), %{p: test}, timeout: :infinity)
        end)

      assert_receive "busy", 5_000
      assert :ok = ErlangPython.interrupt()
      assert {:error, %Error{type: "Interrupted"}} = Task.await(task, 5_000)
      assert :pong = ErlangPython.ping(5_000)
    end

    test "Python can tell an interrupt apart and re-raise it" do
      assert {:ok, true} =
               ErlangPython.eval("issubclass(__import__('erlang').Interrupted, BaseException)")

      assert {:ok, false} =
               ErlangPython.eval("issubclass(__import__('erlang').Interrupted, Exception)")
    end
  end

  describe "callers that die" do
    test "a request whose caller died before it started is skipped" do
      :ok = ErlangPython.exec("_rel_log = []")
      blocker = start_blocker(0.5)

      doomed = spawn(fn -> ErlangPython.exec("_rel_log.append('ran')") end)
      wait_until(fn -> Runtime.queue_length() >= 1 end)
      Process.exit(doomed, :kill)

      assert {:ok, nil} = Task.await(blocker)
      assert {:ok, []} = ErlangPython.eval("_rel_log")
    end

    test "a running request whose caller is killed is interrupted" do
      test = self()

      caller =
        spawn(fn ->
          ErlangPython.eval(announce_then("while True: pass"), %{p: test}, timeout: :infinity)
        end)

      assert_receive "busy", 5_000
      Process.exit(caller, :kill)
      # The handle is garbage with its process; the loop is interrupted.
      assert :pong = ErlangPython.ping(5_000)
    end

    test "1,000 racing timeouts and kills: no misrouted or stale reply" do
      parent = self()

      pids =
        for i <- 1..1_000 do
          spawn(fn ->
            timeout = rem(i, 4)
            result = ErlangPython.eval("n", %{n: i}, timeout: timeout)
            # Anything else in this mailbox would be a misrouted or stale reply.
            stray =
              receive do
                message -> message
              after
                20 -> :none
              end

            send(parent, {:done, i, result, stray})
          end)
        end

      # Kill a third of them at random moments.
      for {pid, i} <- Enum.with_index(pids), rem(i, 3) == 0 do
        if rem(i, 2) == 0, do: Process.sleep(0)
        Process.exit(pid, :kill)
      end

      results = collect_done(map_size(Map.new(pids, &{&1, true})), %{})

      for {i, {result, stray}} <- results do
        assert result in [{:ok, i}, {:error, :timeout}], "caller #{i} got #{inspect(result)}"
        assert stray == :none, "caller #{i} found #{inspect(stray)}"
      end

      # This process makes calls afterwards and sees only its own replies.
      for i <- 1..50, do: assert({:ok, ^i} = ErlangPython.eval("n", %{n: i}))
      Process.sleep(50)
      refute_received _
    end
  end

  describe "backpressure" do
    setup do
      on_exit(fn -> Runtime.set_max_queue(100_000) end)
    end

    test "beyond the queue limit calls return :overloaded at once" do
      blocker = start_blocker(0.5)
      :ok = Runtime.set_max_queue(5)

      results =
        1..50
        |> Enum.map(fn i -> Task.async(fn -> ErlangPython.eval("i", %{i: i}) end) end)
        |> Task.await_many(10_000)

      overloaded = Enum.count(results, &(&1 == {:error, :overloaded}))
      served = Enum.count(results, &match?({:ok, _}, &1))
      assert overloaded >= 40
      assert served >= 1
      assert overloaded + served == 50
      assert {:ok, nil} = Task.await(blocker)
    end

    test "bang functions raise on overload" do
      blocker = start_blocker(0.5)
      :ok = Runtime.set_max_queue(1)
      filler = Task.async(fn -> ErlangPython.eval("1") end)
      wait_until(fn -> Runtime.queue_length() >= 1 end)
      assert %CallError{reason: :overloaded} = catch_error(ErlangPython.eval!("2"))
      Task.await(blocker)
      Task.await(filler)
    end
  end

  # A job that tells this process it is running, then runs `code`.
  defp announce_then(code), do: "(__import__('erlang').send(p, 'busy'), exec(#{inspect(code)}))"

  # Occupies the runtime thread for `seconds`; returns once it is running.
  # (Probing with short calls instead would leave cancelled requests queued.)
  defp start_blocker(seconds) do
    test = self()

    task =
      Task.async(fn ->
        ErlangPython.eval(
          "(__import__('erlang').send(p, 'busy'), __import__('time').sleep(s))[1]",
          %{p: test, s: seconds}
        )
      end)

    assert_receive "busy", 5_000
    task
  end

  defp wait_until(check) do
    assert eventually(check, attempts: 200, interval: 5), "condition never became true"
    :ok
  end

  defp collect_done(0, acc), do: acc

  defp collect_done(remaining, acc) do
    receive do
      {:done, i, result, stray} -> collect_done(remaining - 1, Map.put(acc, i, {result, stray}))
    after
      # Killed callers never report; stop when nothing more comes.
      2_000 -> acc
    end
  end
end
