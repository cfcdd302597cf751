defmodule ErlangPython.ChannelsTest do
  use ExUnit.Case, async: false

  alias ErlangPython.{Buffer, Channel}

  setup_all do
    :ok =
      ErlangPython.exec("""
      import asyncio, erlang, hashlib

      def _ch_drain_sum(ref):
          count = total = 0
          seen = set()
          for item in erlang.Channel(ref):
              producer, n = item
              seen.add((producer, n))
              count += 1
              total += n
          return [count, len(seen), total]

      def _ch_receive_one(ref):
          try:
              return ['item', erlang.Channel(ref).receive()]
          except erlang.ChannelClosed:
              return 'closed'

      async def _ch_async_drain(ref):
          return [item async for item in erlang.Channel(ref)]

      def _buf_digest(buf):
          view = memoryview(buf)
          digest = hashlib.sha256(view).hexdigest()
          size = len(view)
          view.release()
          return [digest, size]
      """)

    :ok
  end

  describe "channels from Elixir" do
    test "items come out in order, each once, then closed" do
      {:ok, ch} = Channel.new()
      for i <- 1..3, do: :ok = Channel.send(ch, {:n, i})
      :ok = Channel.close(ch)
      assert {:error, :closed} = Channel.send(ch, :late)
      assert {:ok, {:n, 1}} = Channel.try_receive(ch)
      assert {:ok, {:n, 2}} = Channel.recv(ch, 100)
      assert {:ok, {:n, 3}} = Channel.try_receive(ch)
      assert {:error, :closed} = Channel.try_receive(ch)
      assert {:error, :closed} = Channel.recv(ch, 100)
    end

    test "max_size turns into :busy, and put/3 waits for a reader" do
      {:ok, ch} = Channel.new(max_size: 100, type: :bytes)
      assert :ok = Channel.send(ch, :binary.copy("a", 60))
      assert :busy = Channel.send(ch, :binary.copy("b", 60))
      assert %{size: 60, length: 1, max_size: 100} = Channel.info(ch)

      writer = Task.async(fn -> Channel.put(ch, :binary.copy("b", 60), 5_000) end)
      Process.sleep(50)
      assert Task.yield(writer, 0) == nil
      assert {:ok, _} = Channel.try_receive(ch)
      assert :ok = Task.await(writer)
      assert {:error, :timeout} = Channel.put(ch, :binary.copy("c", 60), 50)
    end

    test "recv/2 wakes when an item arrives or the channel closes, and times out" do
      {:ok, ch} = Channel.new()
      reader = Task.async(fn -> Channel.recv(ch) end)
      Process.sleep(30)
      :ok = Channel.send(ch, "late")
      assert {:ok, "late"} = Task.await(reader)

      reader = Task.async(fn -> Channel.recv(ch) end)
      Process.sleep(30)
      :ok = Channel.close(ch)
      assert {:error, :closed} = Task.await(reader)

      {:ok, ch} = Channel.new()
      assert {:error, :timeout} = Channel.recv(ch, 20)
    end

    test "bad options and bad items are clear errors" do
      assert_raise ArgumentError, fn -> Channel.new(max_size: -1) end
      assert_raise ArgumentError, fn -> Channel.new(type: :json) end
      assert_raise ArgumentError, fn -> Channel.new(bogus: 1) end
      {:ok, ch} = Channel.new(type: :bytes)
      assert_raise ArgumentError, fn -> Channel.send(ch, {:not, :bytes}) end
      assert_raise ArgumentError, fn -> Channel.send(make_ref(), 1) end
    end
  end

  describe "channels read by Python" do
    test "a closed channel wakes a blocked Python reader" do
      {:ok, ch} = Channel.new()
      reader = Task.async(fn -> ErlangPython.call(:__main__, :_ch_receive_one, [ch]) end)
      Process.sleep(200)
      assert Task.yield(reader, 0) == nil
      :ok = Channel.close(ch)
      assert {:ok, "closed"} = Task.await(reader, 2_000)
    end

    test "async for reads items sent after the coroutine started, until close" do
      {:ok, ch} = Channel.new()
      reader = Task.async(fn -> ErlangPython.call(:__main__, :_ch_async_drain, [ch]) end)
      Process.sleep(100)
      for i <- 1..100, do: :ok = Channel.put(ch, i)
      :ok = Channel.close(ch)
      assert {:ok, items} = Task.await(reader)
      assert items == Enum.to_list(1..100)
    end

    test "Python writes, Elixir reads" do
      {:ok, ch} = Channel.new(type: :bytes)

      assert {:ok, "ok"} =
               ErlangPython.eval(
                 "__import__('erlang').ByteChannel(ch).send_bytes(b'from python')",
                 %{
                   "ch" => ch
                 }
               )

      assert {:ok, "from python"} = Channel.recv(ch, 1_000)
    end

    test "a Python reader of something that is not a channel gets a TypeError" do
      assert {:error, %ErlangPython.Error{type: "TypeError"}} =
               ErlangPython.eval("__import__('erlang').Channel(x)", %{"x" => 42})
    end

    @tag timeout: 300_000
    test "1,000,000 items from 100 concurrent producers: none lost, none duplicated" do
      producers = 100
      per_producer = 10_000
      {:ok, ch} = Channel.new(max_size: 64 * 1024)

      reader =
        Task.async(fn -> ErlangPython.call(:__main__, :_ch_drain_sum, [ch], timeout: :infinity) end)

      1..producers
      |> Enum.map(fn p ->
        Task.async(fn -> for n <- 1..per_producer, do: :ok = Channel.put(ch, {p, n}) end)
      end)
      |> Task.await_many(:infinity)

      :ok = Channel.close(ch)
      total = producers * per_producer
      sum = producers * div(per_producer * (per_producer + 1), 2)
      assert {:ok, [^total, ^total, ^sum]} = Task.await(reader, :infinity)
      assert %{size: 0, length: 0} = Channel.info(ch)
    end
  end

  describe "buffers" do
    test "Python reads as a file while Elixir writes, then EOF" do
      {:ok, buf} = Buffer.new()

      reader =
        Task.async(fn ->
          ErlangPython.eval("[buf.readline(), buf.read(3), buf.read()]", %{"buf" => buf})
        end)

      Process.sleep(50)
      :ok = Buffer.write(buf, "first\n")
      Process.sleep(20)
      :ok = Buffer.write(buf, ["ab", "c", "rest"])
      :ok = Buffer.close(buf)
      assert {:ok, ["first\n", "abc", "rest"]} = Task.await(reader)
      assert {:error, :closed} = Buffer.write(buf, "x")
    end

    test "a write that would move bytes under a live memoryview is refused" do
      {:ok, buf} = Buffer.new(size: 8)
      :ok = Buffer.write(buf, "ab")

      {:ok, _} =
        ErlangPython.eval("globals().__setitem__('_buf_view', memoryview(buf))", %{"buf" => buf})

      assert %{views: 1} = Buffer.info(buf)
      assert :ok = Buffer.write(buf, "cdef")
      assert {:error, :pinned} = Buffer.write(buf, :binary.copy("x", 1000))
      {:ok, _} = ErlangPython.eval("_buf_view.release()")
      assert :ok = Buffer.write(buf, :binary.copy("x", 1000))
    end

    @tag timeout: 300_000
    test "100 MB read by Python through memoryview without a copy" do
      chunk = :binary.copy(<<7, 1, 2, 3>>, 256 * 1024)
      size = 100 * 1024 * 1024
      {:ok, buf} = Buffer.new(size: size)
      for _ <- 1..div(size, byte_size(chunk)), do: :ok = Buffer.write(buf, chunk)
      :ok = Buffer.close(buf)

      {:ok, rss_before} = ErlangPython.eval("__import__('resource').getrusage(0).ru_maxrss")
      assert {:ok, [digest, ^size]} = ErlangPython.call(:__main__, :_buf_digest, [buf])
      {:ok, rss_after} = ErlangPython.eval("__import__('resource').getrusage(0).ru_maxrss")

      expected = :crypto.hash(:sha256, :binary.copy(chunk, div(size, byte_size(chunk))))
      assert digest == Base.encode16(expected, case: :lower)
      # Peak RSS (KiB) grew by far less than the 100 MB a copy would take.
      assert rss_after - rss_before < 20 * 1024
    end
  end

  describe "event-loop tasks from Erlang" do
    test "a task cancelled by its timeout runs its finally block" do
      {:ok, ch} = Channel.new()

      :ok =
        :py.exec("""
        import asyncio
        async def _ch_guarded(ref):
            try:
                await asyncio.sleep(30)
            finally:
                erlang.Channel(ref).send('finally ran')
        """)

      ref = :py_event_loop.create_task(:__main__, :_ch_guarded, [ch])
      assert {:error, :timeout} = :py_event_loop.await(ref, 200)
      assert {:ok, "finally ran"} = Channel.recv(ch, 5_000)
    end

    test "erlang.sleep waits without a loop and yields inside one" do
      :ok =
        ErlangPython.exec("""
        import asyncio, erlang, time

        async def _sleep_pair():
            order = []
            async def sleeper():
                await erlang.sleep(0.05)
                order.append('sleeper')
            async def other():
                order.append('other')
            await asyncio.gather(sleeper(), other())
            return order

        def _sleep_plain():
            start = time.monotonic()
            assert erlang.sleep(0.05) is None
            return time.monotonic() - start
        """)

      # While one coroutine sleeps, the loop runs the other.
      assert {:ok, ["other", "sleeper"]} = ErlangPython.eval("erlang.run(_sleep_pair())")
      {:ok, plain} = ErlangPython.eval("_sleep_plain()")
      assert plain >= 0.05

      assert {:ok, true} =
               ErlangPython.eval(
                 "__import__('_erlang_impl').ErlangEventLoop is __import__('erlang').ErlangEventLoop"
               )
    end
  end
end
