defmodule ErlangPython.IsolatedTransportTest do
  # How frames travel to an isolated worker: through shared memory by
  # default, over the port's pipes on request; large payloads stream through
  # rings smaller than they are; and a worker that scribbles over the shared
  # memory is killed, never believed.
  use ExUnit.Case, async: true

  import ErlangPython.TestHelpers

  alias ErlangPython.{ContextServer, Isolated}

  @moduletag :capture_log

  defp start!(opts) do
    {:ok, ctx} = ContextServer.start_link([isolated: true] ++ opts)
    on_exit(fn -> ContextServer.stop(ctx) end)
    ctx
  end

  # The worker's view of its channel: the mapping of the (unlinked) file.
  @channel_mapping """
  def channel_mapping():
      for line in open('/proc/self/maps'):
          if '/dev/shm/erlang_python-' in line:
              return int(line.split('-')[0], 16)
      return None
  """

  for transport <- [:shared_memory, :pipes] do
    test "#{transport}: 20 MB each way, larger than a ring, byte for byte" do
      ctx = start!(transport: unquote(transport))
      data = :crypto.strong_rand_bytes(20_000_000)

      assert {:ok, ^data} =
               ErlangPython.call(:builtins, :bytes, [{:bytes, data}],
                 context: ctx,
                 timeout: 60_000
               )

      list = Enum.to_list(1..200_000)
      assert {:ok, ^list} = ErlangPython.call(:builtins, :list, [list], context: ctx)
    end
  end

  test "a plain binary of many megabytes that is not UTF-8 arrives as bytes, byte for byte" do
    ctx = start!([])
    # Plain (not {:bytes, _}): the worker's reader tells str from bytes.
    data = not_utf8(11_111_117)

    assert received(data, context: ctx, timeout: 60_000) ==
             {:ok, ["bytes", 11_111_117, sha256_hex(data)]}
  end

  test "the default transport is shared memory, and the file is unlinked once mapped" do
    ctx = start!([])
    :ok = ErlangPython.exec(@channel_mapping, context: ctx)
    assert {:ok, address} = ErlangPython.eval("channel_mapping()", %{}, context: ctx)
    assert is_integer(address)

    {:ok, os_pid} = Isolated.os_pid(ctx)

    [line] =
      File.read!("/proc/#{os_pid}/maps")
      |> String.split("\n")
      |> Enum.filter(&(&1 =~ "/dev/shm/erlang_python-"))

    assert line =~ "(deleted)"
    [path] = Regex.run(~r{/dev/shm/erlang_python-\S+}, line)
    refute File.exists?(path)
  end

  test ":pipes uses no shared memory" do
    ctx = start!(transport: :pipes)
    :ok = ErlangPython.exec(@channel_mapping, context: ctx)
    assert {:ok, nil} = ErlangPython.eval("channel_mapping()", %{}, context: ctx)
  end

  test "a worker killed while it streams a 50 MB frame wedges nothing" do
    # Another thread of the worker sends 50 MB (several rings' worth) while
    # the worker kills itself: the VM's reader is left mid-frame.
    ctx = start!(allow_subprocess: true)

    code = """
    import erlang, os, signal, threading, time
    big = b'x' * 50_000_000
    threading.Thread(target=erlang.send, args=(erlang.self(), big)).start()
    time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGKILL)
    """

    assert {:error, {:python_exited, {:signal, :SIGKILL}}} =
             ErlangPython.exec(code, context: ctx, timeout: 20_000)

    assert {:ok, 2} = ErlangPython.eval("1 + 1", %{}, context: ctx)
    small = Enum.to_list(1..1000)
    assert {:ok, ^small} = ErlangPython.call(:builtins, :list, [small], context: ctx)
  end

  test "a worker that corrupts the ring's counters is killed; the context answers again" do
    ctx = start!([])
    {:ok, before} = Isolated.os_pid(ctx)
    :ok = ErlangPython.exec(@channel_mapping, context: ctx)

    # The write counter of the worker-to-VM ring (header layout in
    # native/erlang_python_nif/src/shm_ring.rs) set far beyond the ring; the
    # worker then sleeps instead of answering, so only the VM's check can end
    # the call.
    code = """
    import ctypes, time
    ctypes.c_uint64.from_address(channel_mapping() + 64 + 256).value = 1 << 40
    time.sleep(30)
    """

    assert {:error, {:python_exited, {:signal, :SIGKILL}}} =
             ErlangPython.exec(code, context: ctx, timeout: 20_000)

    assert {:ok, 2} = ErlangPython.eval("1 + 1", %{}, context: ctx)
    assert {:ok, now} = Isolated.os_pid(ctx)
    assert now != before
  end

  test "a call to an idle worker skips the server: it answers while the server is suspended" do
    ctx = start!([])
    assert {:ok, 3} = ErlangPython.call(:operator, :add, [1, 2], context: ctx)
    :ok = :sys.suspend(ctx)

    try do
      assert {:ok, 7} = ErlangPython.call(:operator, :add, [3, 4], context: ctx, timeout: 5_000)
    after
      :sys.resume(ctx)
    end

    # Over pipes every frame passes through the server.
    piped = start!(transport: :pipes)
    :ok = :sys.suspend(piped)

    try do
      assert {:error, :timeout} =
               ErlangPython.call(:operator, :add, [1, 2], context: piped, timeout: 300)
    after
      :sys.resume(piped)
    end
  end

  test "concurrent callers each get their own answers, direct or queued at the server" do
    ctx = start!([])

    answers =
      1..16
      |> Enum.map(fn caller ->
        Task.async(fn ->
          for n <- 1..40, do: ErlangPython.call(:operator, :mul, [caller, n], context: ctx)
        end)
      end)
      |> Task.await_many(60_000)

    for {results, caller} <- Enum.with_index(answers, 1) do
      assert results == for(n <- 1..40, do: {:ok, caller * n})
    end
  end

  test "a direct caller whose worker dies gets python_exited, and the next call goes direct again" do
    ctx = start!(allow_subprocess: true)
    {:ok, before} = Isolated.os_pid(ctx)

    assert {:error, {:python_exited, {:exit_status, 3}}} =
             ErlangPython.call(:os, :_exit, [3], context: ctx)

    {:ok, later} = Isolated.os_pid(ctx)
    assert later != before
    :ok = :sys.suspend(ctx)

    try do
      assert {:ok, 5} = ErlangPython.call(:operator, :add, [2, 3], context: ctx, timeout: 5_000)
    after
      :sys.resume(ctx)
    end
  end

  describe "a direct caller polling for its own reply" do
    # `:always` makes every direct caller poll (the default polls only when
    # replies come quickly and a core is free, so a busy machine would
    # leave this path untried); the channel's counters show it ran.
    defp polling!(opts \\ []) do
      ctx = start!(opts)
      assert {:ok, 3} = ErlangPython.call(:operator, :add, [1, 2], context: ctx)
      :ok = Isolated.set_reply_polling(ctx, :always)
      ctx
    end

    defp taken(ctx), do: Isolated.channel_stats(ctx).direct_taken

    test "sequential calls take their replies from the ring, each its own" do
      ctx = polling!()
      before = taken(ctx)

      # A poll lasts microseconds: on a loaded machine a batch may catch no
      # reply, so batches run until one did (each checked whole).
      took =
        eventually(
          fn ->
            results = for n <- 1..100, do: ErlangPython.call(:operator, :mul, [n, 3], context: ctx)
            assert results == for(n <- 1..100, do: {:ok, n * 3})
            taken(ctx) > before
          end,
          attempts: 20,
          interval: 0
        )

      assert took, "no caller took its own reply: #{inspect(Isolated.channel_stats(ctx))}"
      # Nothing else arrived: no reply was also sent as a message.
      refute_received {_ref, _}
    end

    test "the channel's counters say which way each direct call went" do
      ctx = polling!()
      delta = fn before, later, key -> Map.fetch!(later, key) - Map.fetch!(before, key) end

      run = fn mode ->
        :ok = Isolated.set_reply_polling(ctx, mode)
        before = Isolated.channel_stats(ctx)
        results = for n <- 1..50, do: ErlangPython.call(:operator, :add, [n, 1], context: ctx)
        assert results == for(n <- 1..50, do: {:ok, n + 1})
        later = Isolated.channel_stats(ctx)

        Map.new(
          [
            :direct_calls,
            :direct_polled,
            :direct_taken,
            :unpolled_caller_busy,
            :unpolled_worker_busy,
            :unpolled_slow
          ],
          &{&1, delta.(before, later, &1)}
        )
      end

      # Forced on: every direct call polled (taking its reply or not).
      always = run.(:always)
      assert always.direct_calls == 50
      assert always.direct_polled == 50
      assert always.direct_taken <= 50
      # Forced off: none polled, and none was counted as lacking a core.
      never = run.(:never)
      assert never.direct_calls == 50
      assert never.direct_polled == 0 and never.direct_taken == 0
      assert never.unpolled_caller_busy == 0 and never.unpolled_worker_busy == 0
      assert never.unpolled_slow == 0
      # The default: each call polled, or did not for one counted reason
      # (a core lacking on either side, slow replies); it never takes a
      # reply it did not poll for.
      adaptive = run.(:adaptive)
      assert adaptive.direct_calls == 50
      assert adaptive.direct_taken <= adaptive.direct_polled

      unpolled = adaptive.unpolled_caller_busy + adaptive.unpolled_worker_busy
      assert adaptive.direct_polled + unpolled + adaptive.unpolled_slow == 50

      stats = Isolated.channel_stats(ctx)
      assert stats.core_samples >= stats.core_samples_busy
      refute_received {_ref, _}
    end

    test "many concurrent callers on one context each get their own answers" do
      ctx = polling!()

      answers =
        1..16
        |> Enum.map(fn caller ->
          Task.async(fn ->
            results =
              for n <- 1..50, do: ErlangPython.call(:operator, :mul, [caller, n], context: ctx)

            {results, Process.info(self(), :message_queue_len)}
          end)
        end)
        |> Task.await_many(60_000)

      for {{results, queue}, caller} <- Enum.with_index(answers, 1) do
        assert results == for(n <- 1..50, do: {:ok, caller * n})
        # No duplicate or stray reply was left in any caller's mailbox.
        assert queue == {:message_queue_len, 0}
      end
    end

    test "frames that are not the caller's reply (erlang.send from a thread) reach their process" do
      ctx = polling!()

      :ok =
        ErlangPython.exec(
          """
          import threading, erlang
          def spam(pid, n):
              threading.Thread(target=lambda: [erlang.send(pid, ('spam', i)) for i in range(n)]).start()
          """,
          context: ctx
        )

      {:ok, nil} = ErlangPython.call(:__main__, :spam, [self(), 300], context: ctx)
      results = for n <- 1..200, do: ErlangPython.call(:operator, :add, [n, 1], context: ctx)
      assert results == for(n <- 1..200, do: {:ok, n + 1})
      for i <- 0..299, do: assert_receive({"spam", ^i}, 10_000)
    end

    test "a worker killed during a call still gives the caller python_exited" do
      ctx = polling!()
      {:ok, os_pid} = Isolated.os_pid(ctx)
      read = Isolated.channel_stats(ctx).to_worker.frames
      caller = Task.async(fn -> ErlangPython.call(:time, :sleep, [30], context: ctx) end)
      # The call is in the worker once the worker has read it.
      assert eventually(fn -> Isolated.channel_stats(ctx).to_worker.frames > read end)
      {_, 0} = System.cmd("kill", ["-9", to_string(os_pid)])
      assert {:error, {:python_exited, _reason}} = Task.await(caller, 30_000)
      assert {:ok, 9} = ErlangPython.call(:operator, :add, [4, 5], context: ctx)
    end

    test "a worker that exits while the caller polls gives python_exited" do
      ctx = polling!(allow_subprocess: true)

      assert {:error, {:python_exited, {:exit_status, 3}}} =
               ErlangPython.call(:os, :_exit, [3], context: ctx)

      assert {:ok, 9} = ErlangPython.call(:operator, :add, [4, 5], context: ctx)
    end

    test "a timed-out call is cancelled and its late reply reaches nobody" do
      ctx = polling!()

      assert {:error, :timeout} = ErlangPython.call(:time, :sleep, [0.5], context: ctx, timeout: 50)

      results = for n <- 1..50, do: ErlangPython.call(:operator, :add, [n, n], context: ctx)
      assert results == for(n <- 1..50, do: {:ok, 2 * n})
      Process.sleep(600)
      refute_received {_ref, _}
    end
  end

  test "a ring counts how far into each wait the writer published what ended it" do
    ctx = start!([])
    assert {:ok, 1} = ErlangPython.call(:operator, :add, [0, 1], context: ctx)
    before = Isolated.channel_stats(ctx).to_worker

    # The worker waits through each pause for the next request.
    for n <- 1..3 do
      Process.sleep(20)
      assert {:ok, n + 1} == ErlangPython.call(:operator, :add, [n, 1], context: ctx)
    end

    later = Isolated.channel_stats(ctx).to_worker
    waited = later.wait_ns - before.wait_ns
    arrival = later.arrival_ns - before.arrival_ns
    # Part of each wait, by the VM's stamp: the rest was the worker's wake-up.
    assert arrival > 0
    assert arrival <= waited
  end
end
