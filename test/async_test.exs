defmodule ErlangPython.AsyncTest do
  use ExUnit.Case, async: true

  import ErlangPython.TestHelpers

  alias ErlangPython.Error

  setup_all do
    :ok =
      ErlangPython.exec("""
      import asyncio, erlang

      async def _async_sleepy(x):
          await asyncio.sleep(0.2)
          return x

      async def _async_boom():
          await asyncio.sleep(0)
          raise ValueError('async boom')

      def _async_plain(x):
          return x + 1
      """)
  end

  describe "async calls from Elixir" do
    test "1,000 concurrent coroutine calls, each with its own answer, overlapping in time" do
      {microseconds, results} =
        :timer.tc(fn ->
          1..1_000
          |> Enum.map(&ErlangPython.async_call(:__main__, :_async_sleepy, [&1]))
          |> Enum.map(&ErlangPython.await(&1, 10_000))
        end)

      assert results == Enum.map(1..1_000, &{:ok, &1})
      # Run one after another they would take 200 s; concurrently about 0.2 s.
      # The bound proves they overlapped (at least 10x) with room for a
      # loaded machine: not a benchmark (see bench/run.exs for figures).
      assert microseconds < 20_000_000
    end

    test "a coroutine that stops the shared loop or raises KeyboardInterrupt or SystemExit fails alone" do
      :ok =
        ErlangPython.exec("""
        async def _async_stops_loop():
            asyncio.get_running_loop().stop()
            await asyncio.sleep(0)
            return 'still here'

        async def _async_raises(name):
            await asyncio.sleep(0)
            raise {'KeyboardInterrupt': KeyboardInterrupt, 'SystemExit': SystemExit}[name]('from a task')

        async def _async_schedules_exit():
            asyncio.get_running_loop().call_soon(sys.exit, 3)
            await asyncio.sleep(0.05)
            return 'after exit'
        import sys
        """)

      # asyncio lets a task's KeyboardInterrupt and SystemExit, and those of
      # plain callbacks, escape the loop's run_forever; loop.stop() ends it.
      # The loop serves every caller, so it must run on after each.
      for _ <- 1..2 do
        assert {:ok, "still here"} =
                 ErlangPython.await(ErlangPython.async_call(:__main__, :_async_stops_loop), 5_000)

        for name <- ["KeyboardInterrupt", "SystemExit"] do
          assert {:error, %Error{type: ^name}} =
                   ErlangPython.await(
                     ErlangPython.async_call(:__main__, :_async_raises, [name]),
                     5_000
                   )
        end

        assert {:ok, "after exit"} =
                 ErlangPython.await(
                   ErlangPython.async_call(:__main__, :_async_schedules_exit),
                   5_000
                 )

        assert {:ok, 8} =
                 ErlangPython.await(ErlangPython.async_call(:__main__, :_async_sleepy, [8]), 5_000)

        assert {:ok, 9} = ErlangPython.eval("_async_sleepy(9)", %{}, timeout: 5_000)
      end

      # The event-loop pool's loops too.
      for _ <- 1..(2 * ErlangPython.EventLoopPool.size()) do
        assert {:error, %Error{type: "KeyboardInterrupt"}} =
                 ErlangPython.EventLoopPool.run(:__main__, :_async_raises, ["KeyboardInterrupt"])

        assert {:ok, "still here"} =
                 ErlangPython.EventLoopPool.run(:__main__, :_async_stops_loop, [])
      end

      for _ <- 1..(2 * ErlangPython.EventLoopPool.size()) do
        assert {:ok, 10} = ErlangPython.EventLoopPool.run(:__main__, :_async_sleepy, [10])
      end
    end

    test "plain functions work through the same API" do
      call = ErlangPython.async_call(:__main__, :_async_plain, [41])
      assert {:ok, 42} = ErlangPython.await(call)
    end

    test "a synchronous call of a coroutine function is awaited too" do
      assert {:ok, 7} = ErlangPython.call(:__main__, :_async_sleepy, [7])
    end

    test "exceptions in coroutines are errors" do
      assert {:error, %Error{type: "ValueError", message: "async boom"}} =
               ErlangPython.await(ErlangPython.async_call(:__main__, :_async_boom))
    end

    test "a timeout cancels the coroutine's task and leaves no reply" do
      :ok = ErlangPython.exec("_async_cancelled = []")

      :ok =
        ErlangPython.exec("""
        async def _async_forever(caller):
            erlang.send(caller, 'started')
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                _async_cancelled.append(True)
                raise
        """)

      # A timeout that lands before the task's first step cancels a
      # coroutine that never ran (nothing to record), which a loaded machine
      # can make happen at 100 ms: retry with a longer timeout until a
      # coroutine has started before it was cancelled. Every one that started
      # must record its cancellation.
      started =
        Enum.reduce_while([100, 400, 1600, 6400], 0, fn timeout, started ->
          result = ErlangPython.call(:__main__, :_async_forever, [self()], timeout: timeout)
          assert {:error, :timeout} = result
          started = take_started(started)
          if started > 0, do: {:halt, started}, else: {:cont, started}
        end)

      assert started > 0
      Process.put(:started, started)

      assert eventually(fn ->
               Process.put(:started, take_started(Process.get(:started)))
               {:ok, cancelled} = ErlangPython.eval("_async_cancelled")
               cancelled == List.duplicate(true, Process.get(:started))
             end)

      refute_received _
    end

    test "only the starting process can await; cast discards the result" do
      call = ErlangPython.async_call(:__main__, :_async_plain, [1])

      assert %ArgumentError{message: "only the process that started a call can await it"} =
               Task.async(fn -> catch_error(ErlangPython.await(call)) end) |> Task.await()

      assert {:ok, 2} = ErlangPython.await(call)

      :ok =
        ErlangPython.exec(
          "_async_cast_log = []\ndef _async_log(text):\n    _async_cast_log.append(text)"
        )

      assert :ok = ErlangPython.cast(:__main__, :_async_log, ["cast ran"])
      assert eventually(fn -> ErlangPython.eval("_async_cast_log") == {:ok, ["cast ran"]} end)
      refute_received _
    end
  end

  describe "ErlangEventLoop" do
    test "asyncio.run and new_event_loop use it inside the VM" do
      assert {:ok, "ErlangEventLoop"} = ErlangPython.eval("type(asyncio.new_event_loop()).__name__")

      :ok =
        ErlangPython.exec("""
        async def _async_loop_name():
            return type(asyncio.get_running_loop()).__name__
        """)

      assert {:ok, "ErlangEventLoop"} = ErlangPython.eval("asyncio.run(_async_loop_name())")

      assert {:ok, true} =
               ErlangPython.eval("erlang.ErlangEventLoop is type(asyncio.new_event_loop())")
    end

    test "erlang.run takes asyncio.run's debug flag" do
      :ok =
        ErlangPython.exec("""
        async def _async_debug_flag():
            return asyncio.get_running_loop().get_debug()
        """)

      assert {:ok, true} = ErlangPython.eval("erlang.run(_async_debug_flag(), debug=True)")
      assert {:ok, false} = ErlangPython.eval("erlang.run(_async_debug_flag(), debug=False)")
    end

    test "timers, futures, tasks, sockets and run_in_executor work" do
      :ok =
        ErlangPython.exec("""
        import socket
        async def _async_features():
            loop = asyncio.get_running_loop()
            fired = loop.create_future()
            loop.call_later(0.01, fired.set_result, 'timer')
            task = asyncio.create_task(asyncio.sleep(0.01, 'task'))
            in_thread = await loop.run_in_executor(None, sum, [1, 2, 3])
            server = await asyncio.start_server(
                lambda r, w: (w.write(b'pong'), w.close()), '127.0.0.1', 0)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection('127.0.0.1', port)
            data = await reader.read(4)
            writer.close()
            server.close()
            return [await fired, await task, in_thread, data]
        """)

      assert {:ok, ["timer", "task", 6, "pong"]} =
               ErlangPython.eval("asyncio.run(_async_features())")
    end

    test "add_signal_handler and remove_signal_handler raise NotImplementedError" do
      for method <- ["add_signal_handler(2, print)", "remove_signal_handler(2)"] do
        assert {:error, %Error{type: "NotImplementedError", message: message}} =
                 ErlangPython.exec("asyncio.new_event_loop().#{method}")

        assert message =~ "signals belong to the Erlang VM"
      end
    end

    test "subprocesses fail early, pointing to Erlang ports" do
      :ok =
        ErlangPython.exec("""
        async def _async_subprocess():
            await asyncio.create_subprocess_exec('/bin/true')
        """)

      assert {:error, %Error{type: "NotImplementedError", message: message}} =
               ErlangPython.eval("asyncio.run(_async_subprocess())")

      assert message =~ "Use Erlang ports"
    end

    test "asyncio.gather of 50 erlang.async_calls" do
      parent = self()

      :ok =
        ErlangPython.register_function(:async_square, fn [x] ->
          send(parent, {:square_called, x})
          x * x
        end)

      :ok =
        ErlangPython.exec("""
        async def _async_gather(n):
            return await asyncio.gather(*(erlang.async_call('async_square', i) for i in range(n)))
        """)

      assert {:ok, squares} = ErlangPython.eval("asyncio.run(_async_gather(50))")
      assert squares == Enum.map(0..49, &(&1 * &1))
      for i <- 0..49, do: assert_received({:square_called, ^i})
    end

    test "erlang.async_call does not block the loop" do
      :ok = ErlangPython.register_function(:async_slow, fn [] -> Process.sleep(200) && :done end)

      :ok =
        ErlangPython.exec("""
        async def _async_ticks_while_waiting():
            ticks = 0
            waiting = asyncio.ensure_future(erlang.async_call('async_slow'))
            while not waiting.done():
                ticks += 1
                await asyncio.sleep(0.01)
            return (await waiting, ticks)
        """)

      assert {:ok, {"done", ticks}} = ErlangPython.eval("asyncio.run(_async_ticks_while_waiting())")
      assert ticks >= 5
    end
  end

  # Takes every "started" message in the mailbox; returns how many.
  defp take_started(count) do
    receive do
      "started" -> take_started(count + 1)
    after
      0 -> count
    end
  end
end
