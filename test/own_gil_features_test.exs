defmodule ErlangPython.OwnGilFeaturesTest do
  # What own-GIL contexts offer beyond calls (see own_gil_test.exs for
  # those): ErlangPython.interrupt/0 reaching their threads, their bounded
  # queues, and the event-loop pool on own-GIL interpreters. The tests
  # tagged :own_gil need Python 3.12+ (bin/test-trixie runs them on 3.13);
  # test_helper.exs excludes them, saying why, on an older Python, where the
  # refusals below run instead.
  use ExUnit.Case, async: false

  import ErlangPython.TestHelpers, only: [eventually: 2]

  alias ErlangPython.{ContextServer, EventLoopPool, OwnGil}
  alias ErlangPython.EventLoopPool.OwnGil, as: OwnGilLoops

  # A function that tells `p` it runs, then spins in bytecode until
  # interrupted.
  @spin "def spin(p):\n    erlang.send(p, 'spinning')\n    while True:\n        pass\n"

  if not OwnGil.supported?() do
    describe "on a Python without own-GIL interpreters" do
      setup :own_gil_event_loop_pool

      test "the own-GIL event-loop pool is refused with an error naming the Python needed" do
        assert {:error, {:own_gil_unsupported, message}} =
                 EventLoopPool.create_task(:math, :sqrt, [4.0])

        assert message =~ "Python 3.12 or later"
        assert {:error, {:own_gil_unsupported, _}} = EventLoopPool.run(:math, :sqrt, [4.0])
        assert {:error, {:own_gil_unsupported, _}} = EventLoopPool.spawn_task(:math, :sqrt, [4.0])
      end
    end
  end

  test "the original's event_loop_pool_owngil keeps the main-interpreter loops where the original would" do
    Application.put_env(:erlang_python, :event_loop_pool_owngil, true)
    on_exit(fn -> Application.delete_env(:erlang_python, :event_loop_pool_owngil) end)

    # The original honours it from Python 3.14 (py_nif:owngil_supported/0).
    if :py_nif.owngil_supported() do
      assert %{owngil_enabled: true} = EventLoopPool.stats()
    else
      assert %{owngil_enabled: false} = EventLoopPool.stats()
      assert {:ok, 2.0} = EventLoopPool.run(:math, :sqrt, [4.0])
    end
  end

  describe "ErlangPython.interrupt/0" do
    @describetag :own_gil

    test "reaches code running in own-GIL contexts, which live on" do
      contexts =
        for _ <- 1..2 do
          {:ok, ctx} = ContextServer.start_link(own_gil: true)
          on_exit(fn -> ContextServer.stop(ctx) end)
          :ok = ErlangPython.exec(@spin, context: ctx)
          ctx
        end

      calls =
        for ctx <- contexts do
          call = ErlangPython.async_call(:__main__, :spin, [self()], context: ctx)
          assert_receive "spinning", 5_000
          call
        end

      assert :ok = ErlangPython.interrupt()

      for call <- calls do
        assert {:error, %ErlangPython.Error{type: "Interrupted"}} = ErlangPython.await(call, 5_000)
      end

      for ctx <- contexts, do: assert({:ok, 3} = ErlangPython.eval("1 + 2", %{}, context: ctx))
    end
  end

  describe "streams over async generators in an own-GIL context" do
    @describetag :own_gil

    test "are driven by the interpreter's own asyncio loop; halting early closes them" do
      {:ok, ctx} = ContextServer.start_link(own_gil: true)
      on_exit(fn -> ContextServer.stop(ctx) end)

      :ok =
        ErlangPython.exec(
          """
          import asyncio
          closed = []
          async def ticks(n):
              try:
                  for i in range(n):
                      await asyncio.sleep(0.001)
                      yield i * i
              finally:
                  closed.append(n)
          """,
          context: ctx
        )

      assert [0, 1, 4, 9] =
               ErlangPython.stream(:__main__, :ticks, [4], context: ctx, chunk_size: 3)
               |> Enum.to_list()

      assert [0, 1] = ErlangPython.stream(:__main__, :ticks, [1_000], context: ctx) |> Enum.take(2)

      assert {:ok, [4, 1000]} = ErlangPython.eval("closed", %{}, context: ctx)
    end
  end

  describe "the queue of an own-GIL context" do
    @describetag :own_gil

    setup do
      on_exit(fn -> ErlangPython.Runtime.set_max_queue(ErlangPython.Runtime.config(:max_queue)) end)
    end

    test "is bounded by max_queue: a full one answers :overloaded at once, the others go on" do
      {:ok, ctx} = ContextServer.start_link(own_gil: true)
      {:ok, other} = ContextServer.start_link(own_gil: true)
      on_exit(fn -> Enum.each([ctx, other], &ContextServer.stop/1) end)
      :ok = ErlangPython.exec(@spin, context: ctx)
      :ok = ErlangPython.Runtime.set_max_queue(2)

      busy = ErlangPython.async_call(:__main__, :spin, [self()], context: ctx)
      assert_receive "spinning", 5_000

      queued = for x <- [4, 9], do: ErlangPython.async_call(:math, :sqrt, [x], context: ctx)
      assert Enum.all?(queued, &match?(%ErlangPython.AsyncCall{}, &1))

      assert {:error, :overloaded} = ErlangPython.async_call(:math, :sqrt, [16], context: ctx)
      assert {:error, :overloaded} = ErlangPython.call(:math, :sqrt, [16], context: ctx)

      # Each own-GIL context has a queue of its own.
      assert {:ok, 5.0} = ErlangPython.call(:math, :sqrt, [25], context: other)

      assert :ok = ContextServer.interrupt(ctx)
      assert {:error, %ErlangPython.Error{type: "Interrupted"}} = ErlangPython.await(busy, 5_000)
      assert [{:ok, 2.0}, {:ok, 3.0}] = Enum.map(queued, &ErlangPython.await(&1, 5_000))
      assert {:ok, 4.0} = ErlangPython.call(:math, :sqrt, [16], context: ctx)
    end
  end

  describe "the event-loop pool on own-GIL contexts" do
    @describetag :own_gil
    setup :own_gil_event_loop_pool

    test "runs functions and coroutines in own-GIL interpreters, one per loop" do
      assert {:ok, 4.0} = EventLoopPool.run(:math, :sqrt, [16.0])
      assert %{owngil_enabled: true, active_sessions: sessions} = EventLoopPool.stats()
      assert sessions >= 1

      ids =
        for {loop, index} <- Enum.with_index(EventLoopPool.loops_list()) do
          :ok =
            OwnGilLoops.exec(index, """
            import asyncio
            async def slow_double(x):
                await asyncio.sleep(0.01)
                return 2 * x
            def interpreter():
                import _interpreters
                return int(_interpreters.get_current()[0])
            """)

          assert {:ok, 42} = EventLoopPool.run(:__main__, :slow_double, [21], loop: loop)
          assert {:ok, id} = EventLoopPool.run(:__main__, :interpreter, [], loop: loop)
          id
        end

      # Every loop its own sub-interpreter (the main one's id is 0).
      assert length(Enum.uniq(ids)) == EventLoopPool.size()
      assert Enum.all?(ids, &(&1 > 0))
    end

    test "one process's tasks run in the order it submitted them" do
      calls = for x <- [1, 4, 9, 16, 25], do: EventLoopPool.create_task(:math, :sqrt, [x * 1.0])

      assert [{:ok, 1.0}, {:ok, 2.0}, {:ok, 3.0}, {:ok, 4.0}, {:ok, 5.0}] =
               Enum.map(calls, &ErlangPython.await(&1, 5_000))
    end

    test "a caller's session holds its definitions and ends with it" do
      parent = self()
      {:ok, loop} = EventLoopPool.loop()
      index = Enum.find_index(EventLoopPool.loops_list(), &(&1 == loop))

      owner =
        spawn(fn ->
          :ok = OwnGilLoops.exec(index, "def secret():\n    return 'mine'")
          send(parent, {:own, EventLoopPool.run(:__main__, :secret, [], loop: loop)})
          receive do: (:stop -> :ok)
        end)

      assert_receive {:own, {:ok, "mine"}}, 5_000

      # Another process on the same loop has a session of its own.
      assert {:error, %ErlangPython.Error{type: "NameError"}} =
               EventLoopPool.run(:__main__, :secret, [], loop: loop)

      before = EventLoopPool.stats().active_sessions
      send(owner, :stop)
      assert eventually(fn -> EventLoopPool.stats().active_sessions == before - 1 end, interval: 50)
    end

    test "a task interrupted by its caller's timeout leaves its loop usable" do
      {:ok, loop} = EventLoopPool.loop()
      index = Enum.find_index(EventLoopPool.loops_list(), &(&1 == loop))

      :ok =
        OwnGilLoops.exec(index, """
        import asyncio
        cleaned = []
        async def forever():
            try:
                while True:
                    await asyncio.sleep(0.001)
            finally:
                cleaned.append(True)
        def was_cleaned():
            return cleaned
        """)

      assert {:error, :timeout} = EventLoopPool.run(:__main__, :forever, [], timeout: 200)
      cleaned? = fn -> EventLoopPool.run(:__main__, :was_cleaned, []) == {:ok, [true]} end
      assert eventually(cleaned?, interval: 50)
      assert {:ok, 3.0} = EventLoopPool.run(:math, :sqrt, [9.0])
    end
  end

  defp own_gil_event_loop_pool(_context) do
    Application.put_env(:erlang_python, :event_loop_pool_own_gil, true)
    on_exit(fn -> Application.delete_env(:erlang_python, :event_loop_pool_own_gil) end)
  end
end
