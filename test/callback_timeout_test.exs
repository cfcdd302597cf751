defmodule ErlangPython.CallbackTimeoutTest do
  # Changes the global callback timeout, so it runs alone.
  use ExUnit.Case, async: false

  alias ErlangPython.{Error, Native, Runtime}

  setup do
    :ok = Runtime.set_callback_timeout(200)
    on_exit(fn -> Runtime.set_callback_timeout(30_000) end)
  end

  test "a callback that does not answer in time raises TimeoutError in Python" do
    test = self()

    :ok =
      ErlangPython.register_function(:cb_never_answers, fn [] ->
        send(test, {:callback_pid, self()})
        Process.sleep(:infinity)
      end)

    assert {:error, %Error{type: "TimeoutError", message: message}} =
             ErlangPython.eval("__import__('erlang').cb_never_answers()")

    assert message =~ "cb_never_answers"
    assert message =~ "200 ms"
    assert_receive {:callback_pid, callback_pid}, 5_000
    Process.exit(callback_pid, :kill)
  end

  test "Python can catch the TimeoutError and go on" do
    :ok = ErlangPython.register_function(:cb_slow, fn [] -> Process.sleep(1_000) end)

    :ok =
      ErlangPython.exec("""
      import erlang
      try:
          erlang.cb_slow()
          _cbt_outcome = 'answered'
      except TimeoutError:
          _cbt_outcome = 'timed out'
      """)

    assert {:ok, "timed out"} = ErlangPython.eval("_cbt_outcome")
  end

  test "nothing is left behind: no pending entry, a late answer is dropped" do
    test = self()

    :ok =
      ErlangPython.register_function(:cb_late, fn [] ->
        send(test, {:late_callback, self()})

        receive do
          :answer_now -> :too_late
        end
      end)

    assert {:error, %Error{type: "TimeoutError"}} =
             ErlangPython.eval("__import__('erlang').cb_late()")

    assert Native.pending_callbacks() == 0
    assert_receive {:late_callback, callback_pid}, 5_000

    # The callback answers after the timeout: the answer goes nowhere, the
    # runtime is unaffected, and no message reaches this process.
    ref = Process.monitor(callback_pid)
    send(callback_pid, :answer_now)
    assert_receive {:DOWN, ^ref, :process, ^callback_pid, :normal}, 5_000
    assert Native.pending_callbacks() == 0
    assert {:ok, 3} = ErlangPython.eval("1 + 2")
    refute_received _
  end
end
