defmodule ErlangPython.PolledReplyTest do
  # A caller that polls for its reply (Native.submit_polled/2) takes a small
  # reply from the job instead of its mailbox. Whatever the timing, the
  # reply arrives exactly once, in one form: from the job or as a message,
  # never both and never neither; only the submitter can take it; a
  # cancelled call gets none; a caller that dies leaves the workers serving.
  use ExUnit.Case, async: false

  alias ErlangPython.Native

  # Polls until the reply is taken or said to come as a message.
  defp poll_until_settled(handle) do
    case Native.poll_reply(handle) do
      :waiting -> poll_until_settled(handle)
      settled -> settled
    end
  end

  # The reply, whichever way it came; then no other copy of it exists.
  defp reply_once(ref, handle) do
    reply =
      case poll_until_settled(handle) do
        {:reply, reply} -> reply
        :sent -> receive(do: ({^ref, reply} -> reply))
      end

    assert Native.stop_polling(handle) == :sent
    refute_received {^ref, _}
    decoded(reply)
  end

  # A large plain result comes in the external format (as for any call).
  defp decoded({:etf, external}), do: :erlang.binary_to_term(external)
  defp decoded(reply), do: reply

  test "a polled ping and call are answered once, from the job or by message" do
    for _ <- 1..200 do
      ref = make_ref()
      assert reply_once(ref, Native.submit_polled(ref, :ping)) == :pong
    end

    request = {:call, :operator, :add, [1, 2], %{}}

    for _ <- 1..200 do
      ref = make_ref()
      assert reply_once(ref, Native.submit_polled(ref, request)) == {:ok, 3}
    end

    Process.sleep(20)
    refute_received {_, _}
  end

  test "a Python exception comes back through the job like any reply" do
    ref = make_ref()
    handle = Native.submit_polled(ref, {:call, :operator, :truediv, [1, 0], %{}})
    assert {:error, %ErlangPython.Error{type: "ZeroDivisionError"}} = reply_once(ref, handle)
  end

  test "stopping before the reply is ready makes it come as a message, once" do
    ref = make_ref()
    handle = Native.submit_polled(ref, {:call, :time, :sleep, [0.05], %{}})
    assert Native.stop_polling(handle) == :sent
    assert_receive {^ref, {:ok, nil}}, 5_000
    assert Native.poll_reply(handle) == :sent
    Process.sleep(20)
    refute_received {^ref, _}
  end

  test "stopping while the worker leaves the reply: each reply arrives once, one way" do
    # The race between a caller giving up polling and the worker leaving
    # the reply in the job (native/.../src/polled_reply.rs): whichever wins,
    # the reply comes from the job or as a message, never both, never lost.
    request = {:call, :operator, :add, [1, 2], %{}}

    for _ <- 1..3_000 do
      ref = make_ref()
      handle = Native.submit_polled(ref, request)

      case Native.stop_polling(handle) do
        {:reply, reply} -> assert reply == {:ok, 3}
        :sent -> assert_receive {^ref, {:ok, 3}}, 5_000
      end

      # Used after the wait, so a garbage collection meanwhile cannot drop
      # the handle (which cancels the job); settled either way.
      assert Native.poll_reply(handle) == :sent
    end

    Process.sleep(20)
    refute_received {_, _}
  end

  test "a reply too large to copy on a scheduler comes as a message" do
    # References keep the reply off the external-format route: 2,000 term cells.
    refs = List.duplicate(make_ref(), 2_000)
    ref = make_ref()
    handle = Native.submit_polled(ref, {:call, :builtins, :list, [refs], %{}})
    assert poll_until_settled(handle) == :sent
    assert_receive {^ref, {:ok, ^refs}}, 5_000
    # Used after the wait, so the handle outlives it (dropping it cancels
    # the job).
    assert Native.poll_reply(handle) == :sent
  end

  test "replies of every size around the deposit limit arrive intact" do
    # References keep the replies off the external-format route.
    for length <- [0, 1, 100, 250, 254, 255, 256, 257, 300, 1_000] do
      ref = make_ref()
      values = List.duplicate(make_ref(), length)
      handle = Native.submit_polled(ref, {:call, :builtins, :list, [values], %{}})
      assert reply_once(ref, handle) == {:ok, values}
    end
  end

  # A small request's reply is built in the request's own environment and
  # that environment is left in the job; a larger request's in a spare one.
  test "compound replies arrive intact from small and large requests, polled or stopped" do
    expected = %{"a" => [1.5, "x", 2 ** 70, {1, -2}], "b" => nil}
    code = "(__import__('time').sleep(delay), {'a': [1.5, b'x', 2**70, (1, -2)], 'b': None})[1]"

    for delay <- [0, 0.02], padding <- [[], List.duplicate(make_ref(), 100)] do
      request = {:eval, code, %{"delay" => delay, "padding" => padding}}

      ref = make_ref()
      assert reply_once(ref, Native.submit_polled(ref, request)) == {:ok, expected}

      # Stopped at once: the reply is sent as a message from the environment
      # it was built in (which also holds the caller's reference), once.
      ref = make_ref()
      handle = Native.submit_polled(ref, request)

      case Native.stop_polling(handle) do
        {:reply, reply} -> assert reply == {:ok, expected}
        :sent -> assert_receive {^ref, {:ok, ^expected}}, 5_000
      end

      # Used after the wait, so the handle outlives it (dropping it cancels
      # the job); settled either way.
      assert Native.poll_reply(handle) == :sent

      Process.sleep(round(delay * 1000) + 20)
      refute_received {^ref, _}
    end
  end

  test "only the submitting process may poll or stop polling" do
    ref = make_ref()
    handle = Native.submit_polled(ref, {:call, :time, :sleep, [0.05], %{}})
    parent = self()

    spawn(fn ->
      poll = catch_error(Native.poll_reply(handle))
      stop = catch_error(Native.stop_polling(handle))
      send(parent, {:other, poll, stop})
    end)

    assert_receive {:other, :badarg, :badarg}, 5_000
    assert reply_once(ref, handle) == {:ok, nil}
  end

  test "a polled call that is cancelled sends nothing, and is not left in the job" do
    ref = make_ref()
    handle = Native.submit_polled(ref, {:call, :time, :sleep, [0.3], %{}})
    assert Native.stop_polling(handle) == :sent
    assert Native.cancel(handle) == :cancelled
    Process.sleep(500)
    refute_received {^ref, _}
    assert Native.poll_reply(handle) == :sent
  end

  test "a caller that dies while polling leaves the workers serving others" do
    for _ <- 1..20 do
      {pid, monitor} =
        spawn_monitor(fn ->
          ref = make_ref()
          handle = Native.submit_polled(ref, {:call, :time, :sleep, [0.01], %{}})
          Native.poll_reply(handle)
        end)

      assert_receive {:DOWN, ^monitor, :process, ^pid, _reason}, 5_000
    end

    for _ <- 1..20 do
      {pid, monitor} =
        spawn_monitor(fn ->
          ref = make_ref()
          handle = Native.submit_polled(ref, :ping)
          poll_until_settled(handle)
          exit(:gone_before_taking_it)
        end)

      assert_receive {:DOWN, ^monitor, :process, ^pid, :gone_before_taking_it}, 5_000
    end

    :erlang.garbage_collect()
    assert ErlangPython.ping() == :pong
    assert ErlangPython.call(:operator, :add, [2, 3]) == {:ok, 5}
  end

  test "many processes polling at once each get their own answer" do
    tasks =
      for caller <- 1..50 do
        Task.async(fn ->
          for n <- 1..50 do
            ref = make_ref()
            handle = Native.submit_polled(ref, {:call, :operator, :mul, [caller, n], %{}})
            {reply_once(ref, handle), caller * n}
          end
        end)
      end

    for {reply, expected} <- tasks |> Task.await_many(30_000) |> List.flatten() do
      assert reply == {:ok, expected}
    end
  end

  # Every call is submitted ready to be polled; a caller that does not poll
  # (no spinning worker, or others waiting on its scheduler) stops polling
  # at once. Either way each call returns its own reply and leaves nothing
  # behind in the caller's mailbox, timed-out calls included.
  test "calls through the public API get their own reply once, polled or not" do
    tasks =
      for caller <- 1..20 do
        Task.async(fn ->
          call = fn n -> ErlangPython.call(:operator, :mul, [caller, n]) end
          replies = for n <- 1..100, do: {call.(n), caller * n}

          timeout = ErlangPython.call(:time, :sleep, [0.05], timeout: 5)
          Process.sleep(100)
          {:messages, left} = Process.info(self(), :messages)
          {replies, timeout, left}
        end)
      end

    for {replies, timeout, left} <- Task.await_many(tasks, 30_000) do
      for {reply, expected} <- replies, do: assert(reply == {:ok, expected})
      assert timeout == {:error, :timeout}
      assert left == []
    end
  end

  test "submit_call gives a handle to poll while the workers spin, a plain one otherwise" do
    for _ <- 1..200 do
      ref = make_ref()

      reply =
        case Native.submit_call(ref, :ping) do
          {:poll, handle} ->
            reply_once(ref, handle)

          # Held until the reply came: a dropped handle cancels its job.
          handle ->
            reply = receive(do: ({^ref, reply} -> reply))
            assert is_reference(handle)
            reply
        end

      assert reply == :pong
    end

    Process.sleep(20)
    refute_received {_, _}
  end

  test "a bad handle gets a clear error" do
    assert_raise ArgumentError, fn -> Native.poll_reply(:not_a_handle) end
    assert_raise ArgumentError, fn -> Native.stop_polling(make_ref()) end
  end
end
