defmodule ErlangPython.KeptReplyTest do
  # An async call's reply stays out of the caller's mailbox until awaited,
  # so awaiting it does not scan the messages piled up meanwhile
  # (bench/await_mailbox.exs prints what that costs).
  use ExUnit.Case, async: true

  import ErlangPython.TestHelpers

  test "the reply waits outside the mailbox until awaited; other messages keep their order" do
    for i <- 1..10_000, do: send(self(), {:unrelated, i})
    calls = for i <- 1..20, do: ErlangPython.async_call(:operator, :add, [i, 1])
    # Every call has finished: a synchronous call on the same worker pool
    # can still come before them, so wait on a final one of each.
    assert Enum.map(calls, &ErlangPython.await(&1, 10_000)) == for(i <- 1..20, do: {:ok, i + 1})

    late = ErlangPython.async_call(:operator, :add, [41, 1])
    Process.sleep(200)
    {:messages, messages} = Process.info(self(), :messages)
    assert length(messages) == 10_000
    assert messages == for(i <- 1..10_000, do: {:unrelated, i})
    assert {:ok, 42} = ErlangPython.await(late)
    assert {:message_queue_len, 10_000} = Process.info(self(), :message_queue_len)
  end

  test "a call awaited twice answers the second time at once" do
    call = ErlangPython.async_call(:operator, :add, [1, 2])
    assert {:ok, 3} = ErlangPython.await(call)
    assert {:error, :already_awaited} = ErlangPython.await(call, 60_000)
  end

  @tag :tmp_dir
  test "an await that times out gives up, and a later result is dropped", %{tmp_dir: dir} do
    # The call starts before the await and cannot finish before the test
    # says so (a file appears), so the await must time out however loaded
    # the machine is; a fixed sleep in Python let the result win on a
    # loaded machine.
    started = Path.join(dir, "started")
    go = Path.join(dir, "go")
    done = Path.join(dir, "done")

    :ok =
      ErlangPython.exec("""
      import os, time
      def _kept_reply_wait(started, go, done):
          open(started, "w").close()
          # An await that times out may interrupt the call: done either way.
          try:
              deadline = time.monotonic() + 30
              while not os.path.exists(go) and time.monotonic() < deadline:
                  time.sleep(0.005)
              return "finished"
          finally:
              open(done, "w").close()
      """)

    call = ErlangPython.async_call(:__main__, :_kept_reply_wait, [started, go, done])
    assert eventually(fn -> File.exists?(started) end, attempts: 1500)
    assert {:error, :timeout} = ErlangPython.await(call, 50)
    File.write!(go, "")
    # The call ends, by returning or by the await's interrupt; its result
    # is sent after `done` is written, so give it time to arrive.
    eventually(fn -> File.exists?(done) end, attempts: 250)
    Process.sleep(100)
    assert {:messages, []} = Process.info(self(), :messages)
    assert {:error, :timeout} = ErlangPython.await(call, 50)
  end
end
