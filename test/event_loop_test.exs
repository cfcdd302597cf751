defmodule ErlangPython.EventLoopTest do
  # Loops, registered functions and __main__ are shared: one test at a time.
  use ExUnit.Case, async: false

  alias ErlangPython.{EventLoopPool, EventQueue}
  alias ErlangPython.EventQueue.TestFd

  doctest ErlangPython.EventLoopPool
  doctest ErlangPython.EventQueue
  doctest ErlangPython.EventQueue.TestFd

  setup_all do
    :ok =
      ErlangPython.exec("""
      import asyncio, erlang, threading, time
      from _erlang_impl._pool import current_loop

      async def _el_where(tag):
          await asyncio.sleep(0)
          return (tag, current_loop())

      _el_started = []

      async def _el_record(n):
          _el_started.append(n)
          await asyncio.sleep(0.01)
          return n

      async def _el_guarded(pid):
          try:
              await asyncio.sleep(30)
          finally:
              erlang.send(pid, 'finally ran')

      async def _el_tell(pid, what):
          await asyncio.sleep(0)
          erlang.send(pid, what)

      async def _el_sleeper(seconds):
          start = time.monotonic()
          await erlang.sleep(seconds)
          return time.monotonic() - start

      async def _el_sleep_stamped(seconds):
          await erlang.sleep(seconds)
          return time.monotonic()

      async def _el_stamp():
          return time.monotonic()
      """)

    :ok
  end

  describe "event-loop pool (Elixir)" do
    test "a coroutine's result comes back; a plain function's value too" do
      assert {:ok, {"a", index}} = EventLoopPool.run(:__main__, :_el_where, ["a"])
      assert index in 0..(EventLoopPool.size() - 1)
      assert {:ok, 5.0} = EventLoopPool.run(:math, :sqrt, [25.0])
    end

    test "the pool has at least two loops, each a loop of its own" do
      loops = EventLoopPool.loops_list()
      assert length(loops) == EventLoopPool.size() and length(loops) >= 2

      indexes =
        for loop <- loops do
          task = EventLoopPool.create_task(:__main__, :_el_where, ["x"], loop: loop)
          {:ok, {"x", index}} = ErlangPython.await(task)
          index
        end

      assert indexes == Enum.to_list(0..(length(loops) - 1))
    end

    test "a process keeps its loop, and processes spread over the loops" do
      {:ok, mine} = EventLoopPool.loop()
      assert {:ok, ^mine} = EventLoopPool.loop()

      # Processes until every loop has one; each one's tasks run on its loop.
      loops = EventLoopPool.loops_list()

      runners =
        Stream.repeatedly(fn -> spawn(&run_when_asked/0) end)
        |> Enum.reduce_while(%{}, fn pid, by_loop ->
          {:ok, loop} = EventLoopPool.loop(pid)
          by_loop = Map.put_new(by_loop, loop, pid)
          if map_size(by_loop) == length(loops), do: {:halt, by_loop}, else: {:cont, by_loop}
        end)

      for {loop, pid} <- runners do
        send(pid, {:run, self()})
        assert_receive {^pid, {:ok, {"p", index}}}, 5_000
        assert Enum.at(loops, index) == loop
      end
    end

    defp run_when_asked do
      receive do
        {:run, from} -> send(from, {self(), EventLoopPool.run(:__main__, :_el_where, ["p"])})
      end
    end

    test "one process's tasks start in the order it submitted them" do
      :ok = ErlangPython.exec("_el_started.clear()")
      tasks = for n <- 1..20, do: EventLoopPool.create_task(:__main__, :_el_record, [n])
      assert Enum.map(tasks, &ErlangPython.await/1) == Enum.map(1..20, &{:ok, &1})
      assert {:ok, Enum.to_list(1..20)} == ErlangPython.eval("_el_started")
    end

    test "a task cancelled from Erlang (its caller's timeout) runs its finally block" do
      task = EventLoopPool.create_task(:__main__, :_el_guarded, [self()])
      assert {:error, :timeout} = ErlangPython.await(task, 200)
      assert_receive "finally ran", 5_000
    end

    test "spawn_task runs without anyone waiting" do
      assert :ok = EventLoopPool.spawn_task(:__main__, :_el_tell, [self(), "told"])
      assert_receive "told", 5_000
    end

    test "functions are looked up in the caller's environment; errors come back" do
      :ok = :py.exec("async def _el_env_only(x):\n    return x * 3")
      assert {:ok, 21} = EventLoopPool.run(:__main__, :_el_env_only, [7])

      assert {:error, %ErlangPython.Error{type: "ModuleNotFoundError"}} =
               EventLoopPool.run(:no_such_module_el, :f, [])
    end

    test "bad options and loops are refused with clear errors" do
      assert_raise ArgumentError, ~r/unknown keys/, fn ->
        EventLoopPool.create_task(:math, :sqrt, [1.0], lop: 1)
      end

      assert_raise ArgumentError, ~r/not a loop of the event-loop pool/, fn ->
        EventLoopPool.create_task(:math, :sqrt, [1.0], loop: make_ref())
      end

      assert_raise ArgumentError, ~r/list of arguments/, fn ->
        EventLoopPool.create_task(:math, :sqrt, 1.0)
      end
    end
  end

  describe "event-loop pool (Erlang: py_event_loop_pool)" do
    test "shapes of erlang_python" do
      {:ok, loop} = :py_event_loop_pool.get_loop()
      assert {:ok, ^loop} = :py_event_loop_pool.get_loop()
      assert %{num_loops: n, supported: true} = :py_event_loop_pool.get_stats()
      assert n == EventLoopPool.size()
      ref = :py_event_loop_pool.create_task(:math, :sqrt, [25.0])
      assert is_reference(ref)
      assert {:ok, 5.0} = :py_event_loop_pool.await(ref, 5000)
      assert {:ok, 3} = :py_event_loop_pool.run(:math, :floor, [3.7])
      assert :ok = :py_event_loop_pool.exec("def _el_mul(a, b):\n    return a * b")

      assert {:ok, 42} =
               :py_event_loop_pool.await(
                 :py_event_loop_pool.create_task(:__main__, :_el_mul, [7, 6])
               )

      assert {:ok, 6} = :py_event_loop_pool.eval("2 + 4")

      assert {:error, {:ModuleNotFoundError, _}} =
               :py_event_loop_pool.run(:no_such_module_el, :f, [])

      assert {:ok, hd(EventLoopPool.loops_list())} == :py_event_loop.get_loop()
    end

    test "a task the caller stops waiting for is cancelled: its finally runs" do
      ref = :py_event_loop_pool.create_task(:__main__, :_el_guarded, [self()])
      assert {:error, :timeout} = :py_event_loop_pool.await(ref, 200)
      assert_receive "finally ran", 5_000
    end
  end

  describe "erlang.sleep" do
    test "awaited in a coroutine, it lets the loop's other tasks run" do
      {:ok, loop} = EventLoopPool.loop()
      sleeper = EventLoopPool.create_task(:__main__, :_el_sleep_stamped, [0.5], loop: loop)
      quick = EventLoopPool.create_task(:__main__, :_el_stamp, [], loop: loop)
      # Both on one loop: the quick task finishes while the other sleeps.
      assert {:ok, quick_done} = ErlangPython.await(quick, 5_000)
      assert {:ok, sleeper_done} = ErlangPython.await(sleeper, 5_000)
      assert quick_done < sleeper_done
    end

    test "called from plain code, it releases the GIL: other Python threads progress" do
      assert {:ok, count} =
               ErlangPython.eval("""
               (lambda: (
                   counter := [0],
                   stop := threading.Event(),
                   t := threading.Thread(target=lambda: [counter.__setitem__(0, counter[0] + 1) or time.sleep(0.001) for _ in iter(stop.is_set, True)]),
                   t.start(),
                   erlang.sleep(0.2),
                   stop.set(),
                   t.join(),
                   counter[0],
               )[-1])()
               """)

      assert count >= 5
    end

    test "erlang.sleep(0) returns at once, in plain code and in a coroutine" do
      assert {:ok, nil} = ErlangPython.eval("erlang.sleep(0)")
      assert {:ok, elapsed} = EventLoopPool.run(:__main__, :_el_sleeper, [0])
      assert elapsed < 0.1
    end
  end

  describe "erlang.schedule*" do
    setup do
      ErlangPython.register_function(:_el_add, fn [a, b] -> a + b end)
      on_exit(fn -> ErlangPython.unregister_function(:_el_add) end)
    end

    test "a returned schedule() marker makes the Erlang function's result the call's" do
      :ok =
        ErlangPython.exec("def _el_via_erlang(a, b):\n    return erlang.schedule('_el_add', a, b)")

      assert {:ok, 12} = ErlangPython.call(:__main__, :_el_via_erlang, [5, 7])

      assert {:ok, true} =
               ErlangPython.eval(
                 "isinstance(erlang.schedule('_el_add', 1, 2), erlang.ScheduleMarker)"
               )
    end

    test "schedule_py continues with a Python function, with keyword arguments" do
      :ok =
        ErlangPython.exec("""
        def _el_greet(name, prefix='Hello'):
            return f'{prefix}, {name}!'

        def _el_then_greet(name):
            return erlang.schedule_py('__main__', '_el_greet', [name], {'prefix': 'Hi'})
        """)

      assert {:ok, "Hi, World!"} = ErlangPython.call(:__main__, :_el_then_greet, ["World"])
    end

    test "schedule_inline chains, looked up in the function's own globals" do
      :ok =
        :py.exec("""
        def _el_sum_to(n, acc=0):
            if n == 0:
                return acc
            return erlang.schedule_inline('__main__', '_el_sum_to', args=[n - 1, acc + n])
        """)

      # Defined in this process's environment only, not in __main__ itself.
      assert {:ok, 55} = :py.eval("_el_sum_to(10)")
      assert {:ok, 5050} = :py.eval("_el_sum_to(100)")
    end

    test "a marker that is not returned does nothing; an unknown target is a NameError" do
      :ok =
        ErlangPython.exec(
          "def _el_ignored():\n    erlang.schedule('_el_add', 1, 2)\n    return 'plain'"
        )

      assert {:ok, "plain"} = ErlangPython.call(:__main__, :_el_ignored, [])

      :ok =
        ErlangPython.exec(
          "def _el_missing():\n    return erlang.schedule_inline('__main__', '_el_nowhere')"
        )

      assert {:error, %ErlangPython.Error{type: "NameError"}} =
               ErlangPython.call(:__main__, :_el_missing, [])
    end

    test "the caller's timeout interrupts an endless chain" do
      :ok =
        ErlangPython.exec("""
        def _el_forever(n):
            time.sleep(0.01)
            return erlang.schedule_inline('__main__', '_el_forever', args=[n + 1])
        """)

      assert {:error, :timeout} = ErlangPython.call(:__main__, :_el_forever, [0], timeout: 300)
      assert {:ok, 2} = ErlangPython.eval("1 + 1")
    end

    test "consume_time_slice says when a slice is used up" do
      assert {:ok, [false, false, false, true, false]} =
               ErlangPython.eval(
                 "[erlang.consume_time_slice(p) for p in (100, 30, 30, 30, 30)][1:] + [erlang.consume_time_slice(30)]"
               )

      assert {:error, %ErlangPython.Error{type: "ValueError"}} =
               ErlangPython.eval("erlang.consume_time_slice(0)")
    end
  end

  describe "event queue (ErlangPython.EventQueue, py_nif)" do
    test "timers fire in order; a cancelled one does not" do
      {:ok, queue} = EventQueue.new()
      {:ok, _} = EventQueue.call_later(queue, 30, 2)
      {:ok, _} = EventQueue.call_later(queue, 10, 1)
      {:ok, cancelled} = EventQueue.call_later(queue, 20, 3)
      :ok = EventQueue.cancel_timer(queue, cancelled)
      Process.sleep(100)
      assert EventQueue.pending(queue) == [{1, :timer}, {2, :timer}]
      assert EventQueue.pending(queue) == []
      :ok = EventQueue.destroy(queue)
    end

    test "a readable pipe is reported once per round while it stays readable; paused, never" do
      {:ok, queue} = EventQueue.new()
      {:ok, {r, w}} = TestFd.pipe()
      {:ok, watch} = EventQueue.add_reader(queue, r, 42)
      assert {:ok, 0} = EventQueue.poll(queue, 30)
      :ok = TestFd.write(w, "hello")
      assert {:ok, 1} = EventQueue.poll(queue, 2_000)
      assert EventQueue.pending(queue) == [{42, :read}]
      # Still unread: reported again after the round.
      assert {:ok, 1} = EventQueue.poll(queue, 2_000)
      assert EventQueue.pending(queue) == [{42, :read}]
      :ok = EventQueue.pause(watch)
      assert {:ok, 0} = EventQueue.poll(queue, 100)
      assert {:ok, "hello"} = TestFd.read(r, 100)
      :ok = EventQueue.resume(watch)
      :ok = TestFd.write(w, "again")
      assert {:ok, 1} = EventQueue.poll(queue, 2_000)
      :ok = EventQueue.close(watch)
      :ok = EventQueue.close(watch)
      # close/1 closed the read end: the pipe has no reader left.
      assert {:error, :epipe} = TestFd.write(w, "x")
      :ok = TestFd.close(w)
      :ok = EventQueue.destroy(queue)
    end

    test "wakeup ends a poll at once; a poll with nothing to do times out" do
      {:ok, queue} = EventQueue.new()
      parent = self()
      spawn(fn -> send(parent, {:polled, :timer.tc(fn -> EventQueue.poll(queue, 10_000) end)}) end)
      Process.sleep(50)
      :ok = EventQueue.wakeup(queue)
      assert_receive {:polled, {micros, {:ok, 0}}}, 2_000
      assert micros < 5_000_000
      {micros, {:ok, 0}} = :timer.tc(fn -> EventQueue.poll(queue, 50) end)
      assert micros >= 45_000
    end

    test "a loopback TCP connection: the server side is reported readable" do
      {:ok, queue} = EventQueue.new()
      {:ok, {listener, port}} = TestFd.tcp_listener(0)
      {:ok, client} = TestFd.tcp_connect("127.0.0.1", port)
      {:ok, listening} = EventQueue.add_reader(queue, listener, 1)
      assert {:ok, 1} = EventQueue.poll(queue, 2_000)
      assert [{1, :read}] = EventQueue.pending(queue)
      :ok = EventQueue.remove(queue, listening)
      {:ok, server} = TestFd.tcp_accept(listener)
      {:ok, _} = EventQueue.add_reader(queue, server, 2)
      :ok = TestFd.write(client, "ping")
      assert {:ok, 1} = EventQueue.poll(queue, 2_000)
      assert [{2, :read}] = EventQueue.pending(queue)
      assert {:ok, "ping"} = TestFd.read(server, 10)
      for fd <- [server, client, listener], do: :ok = TestFd.close(fd)
      :ok = EventQueue.destroy(queue)
    end

    test "a channel reports its data to the queue; sync and queue waiters exclude each other" do
      {:ok, queue} = EventQueue.new()
      {:ok, ch} = :py_channel.new()
      :ok = :py_nif.channel_wait(ch, 7, queue)
      assert {:error, :waiter_exists} = :py_nif.channel_register_sync_waiter(ch)
      :ok = :py_channel.send(ch, "data")
      assert {:ok, 1} = EventQueue.poll(queue, 2_000)
      assert EventQueue.pending(queue) == [{7, :read}]
      assert {:ok, "data"} = :py_nif.channel_try_receive(ch)
      :ok = :py_nif.channel_wait(ch, 8, queue)
      :ok = :py_nif.channel_cancel_wait(ch, 8)
      :ok = :py_channel.send(ch, "more")
      assert {:ok, 0} = EventQueue.poll(queue, 100)
      :ok = :py_channel.close(ch)
      :ok = EventQueue.destroy(queue)
    end

    test "Erlang shapes (py_nif), and a worker told when events are pending" do
      {:ok, loop} = :py_nif.event_loop_new()
      test = self()
      {:ok, worker} = :py_event_worker.start_link("t", loop, &send(test, {:handled, &1}))
      :ok = :py_nif.event_loop_set_worker(loop, worker)
      {:ok, _} = :py_nif.call_later(loop, 10, 99)
      assert_receive {:handled, [{99, :timer}]}, 2_000
      :ok = :py_event_worker.stop(worker)
      :ok = :py_nif.event_loop_destroy(loop)
      :ok = :py_nif.event_loop_destroy(loop)
    end

    test "a queue stops with its owner; test descriptors refuse descriptors they did not make" do
      parent = self()

      owner =
        spawn(fn ->
          send(parent, EventQueue.new())
          receive do: (:stop -> :ok)
        end)

      assert_receive {:ok, queue}
      assert EventQueue.pending(queue) == []
      send(owner, :stop)
      Process.sleep(100)
      assert_raise ArgumentError, ~r/no such event queue/, fn -> EventQueue.pending(queue) end
      assert {:error, :vm_descriptor} = TestFd.close(0)
      assert {:error, :vm_descriptor} = TestFd.write(1, "x")
      assert {:error, :vm_descriptor} = TestFd.read(2, 10)
    end
  end

  describe "Python side" do
    test "a channel reference is a PyCapsule in Python and comes back as itself" do
      {:ok, ch} = :py_channel.new()
      assert {:ok, "PyCapsule"} = ErlangPython.eval("type(ch).__name__", %{"ch" => ch})
      assert {:ok, ^ch} = ErlangPython.eval("[ch][0]", %{"ch" => ch})
      :ok = :py_channel.send(ch, "via capsule")

      assert {:ok, "via capsule"} =
               ErlangPython.eval("erlang.Channel(ch).try_receive()", %{"ch" => ch})

      :ok = :py_channel.close(ch)
    end

    test "erlang.install() makes ErlangEventLoop asyncio's loop (below 3.14)" do
      {:ok, [major, minor]} = ErlangPython.eval("list(__import__('sys').version_info[:2])")

      if {major, minor} < {3, 14} do
        assert {:ok, "ErlangEventLoop"} =
                 ErlangPython.eval("(erlang.install(), type(asyncio.new_event_loop()).__name__)[1]")
      else
        assert {:error, %ErlangPython.Error{type: "RuntimeError"}} =
                 ErlangPython.eval("erlang.install()")
      end
    end
  end

  describe "UDP descriptors (TestFd, py_nif's *_test_udp*)" do
    test "datagrams keep their boundaries and say where they came from" do
      alias ErlangPython.EventQueue.TestFd
      {:ok, {server, port}} = :py_nif.create_test_udp_socket(0)
      {:ok, {client, client_port}} = :py_nif.create_test_udp_socket(0)
      assert {:error, :would_block} = :py_nif.recvfrom_test_udp(server, 1024)

      :ok = :py_nif.sendto_test_udp(client, "one", "127.0.0.1", port)
      :ok = :py_nif.sendto_test_udp(client, ["tw", "o"], ~c"127.0.0.1", port)
      assert {:ok, {"one", {"127.0.0.1", ^client_port}}} = TestFd.udp_recvfrom(server, 1024)
      # A short buffer truncates the datagram; the next one is whole.
      assert {:ok, {"t", _}} = TestFd.udp_recvfrom(server, 1)
      assert {:error, :eagain} = TestFd.udp_recvfrom(server, 1024)

      # Echo back to where it came from.
      :ok = :py_nif.sendto_test_udp(client, "echo", "127.0.0.1", port)
      {:ok, {data, {host, from}}} = :py_nif.recvfrom_test_udp(server, 1024)
      :ok = :py_nif.sendto_test_udp(server, data, host, from)
      assert {:ok, {"echo", {"127.0.0.1", ^port}}} = TestFd.udp_recvfrom(client, 1024)

      for flag <- [true, false, 1, 0], do: assert(:ok = :py_nif.set_udp_broadcast(server, flag))
      Enum.each([server, client], &TestFd.close/1)
      assert {:error, :ebadf} = TestFd.udp_recvfrom(server, 16)
    end

    test "the VM's own descriptors are refused" do
      alias ErlangPython.EventQueue.TestFd
      assert {:error, :vm_descriptor} = TestFd.udp_recvfrom(0, 16)
      assert {:error, :vm_descriptor} = TestFd.udp_sendto(1, "x", "127.0.0.1", 9)
      assert {:error, :vm_descriptor} = TestFd.udp_broadcast(2, true)
    end
  end
end
