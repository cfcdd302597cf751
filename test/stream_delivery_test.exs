defmodule ErlangPython.StreamDeliveryTest do
  # When a stream's items reach Elixir: max_delay, errors after items, and
  # timeouts read the same as a call's.
  use ExUnit.Case, async: true

  import ErlangPython.TestHelpers

  alias ErlangPython.Streaming

  setup do
    {:ok, env} = ErlangPython.Context.new()

    :ok =
      ErlangPython.exec(
        """
        import asyncio, time

        closed = []

        def slow_then_gated(gate):
            time.sleep(0.05)          # slower than the 20 ms max_delay
            yield 1
            erlang.call(gate)         # returns when the test opens the gate
            yield 2

        async def async_then_slow():
            yield 1
            await asyncio.sleep(2)   # far beyond the 20 ms max_delay
            yield 2

        def fails_after(n):
            yield from range(n)
            raise ValueError("broken after %d" % n)

        def sleepy(seconds):
            time.sleep(seconds)
            yield 1
        """,
        context: env
      )

    test = self()
    gate = unique("gate")

    ErlangPython.register_function(gate, fn [] ->
      send(test, {:gate, self()})
      receive do: (:open -> :ok)
    end)

    on_exit(fn -> ErlangPython.unregister_function(gate) end)
    %{env: env, gate: gate}
  end

  defp open_gate do
    assert_receive {:gate, pid}, 10_000
    send(pid, :open)
  end

  describe "max_delay" do
    test "without it, a slow generator's first item waits for its chunk to fill", %{
      env: env,
      gate: gate
    } do
      {:ok, ref} =
        Streaming.start(:__main__, :slow_then_gated, [gate], context: env, chunk_size: 32)

      assert_receive {:gate, pid}, 10_000
      # The generator is blocked at the gate with item 1 produced: it is
      # still held in the unfinished chunk.
      refute_received {:py_stream, ^ref, {:data, 1}}
      send(pid, :open)
      assert_receive {:py_stream, ^ref, {:data, 1}}, 10_000
      assert_receive {:py_stream, ^ref, {:data, 2}}, 10_000
      assert_receive {:py_stream, ^ref, :done}, 10_000
    end

    test "with it, a slow generator's item goes out before the next one is made", %{
      env: env,
      gate: gate
    } do
      {:ok, ref} =
        Streaming.start(:__main__, :slow_then_gated, [gate],
          context: env,
          chunk_size: 32,
          max_delay: 20
        )

      # Item 1 arrives while the generator is still blocked at the gate.
      assert_receive {:py_stream, ^ref, {:data, 1}}, 10_000
      open_gate()
      assert_receive {:py_stream, ^ref, {:data, 2}}, 10_000
      assert_receive {:py_stream, ^ref, :done}, 10_000
    end

    test "an async generator's item goes out after max_delay, before the next is made", %{env: env} do
      opts = [context: env, chunk_size: 32, max_delay: 20]
      {:ok, ref} = Streaming.start(:__main__, :async_then_slow, [], opts)

      assert_receive {:py_stream, ^ref, {:data, 1}}, 10_000
      # Item 2 comes two seconds after item 1: it was not waited for.
      refute_received {:py_stream, ^ref, {:data, 2}}
      assert_receive {:py_stream, ^ref, {:data, 2}}, 10_000
      assert_receive {:py_stream, ^ref, :done}, 10_000
    end

    test "an async generator closed while an item is pending is closed cleanly", %{env: env} do
      stream =
        ErlangPython.stream(:__main__, :async_then_slow, [],
          context: env,
          chunk_size: 32,
          max_delay: 20
        )

      # take(1) halts after the first chunk, leaving __anext__ pending.
      assert Enum.take(stream, 1) == [1]
      assert {:ok, 2} = ErlangPython.eval("1 + 1", %{}, context: env)
    end

    test "the Enumerable form takes it too, and a chunk still fills when items come fast", %{
      env: env
    } do
      assert ErlangPython.stream(:builtins, :range, [100], chunk_size: 7, max_delay: 1_000)
             |> Enum.to_list() == Enum.to_list(0..99)

      assert ErlangPython.stream_eval("iter(range(5))", %{}, context: env, max_delay: 0)
             |> Enum.to_list() == [0, 1, 2, 3, 4]
    end

    test "a bad max_delay is refused" do
      assert_raise ArgumentError, ~r/max_delay must be a non-negative integer/, fn ->
        ErlangPython.stream(:builtins, :range, [3], max_delay: -1)
      end
    end
  end

  describe "an exception after some items" do
    test "the items produced before it are delivered, then the error", %{env: env} do
      {:ok, ref} = Streaming.start(:__main__, :fails_after, [3], context: env, chunk_size: 32)

      for i <- 0..2, do: assert_receive({:py_stream, ^ref, {:data, ^i}}, 10_000)
      assert_receive {:py_stream, ^ref, {:error, "ValueError: broken after 3"}}, 10_000

      test = self()

      error =
        catch_error(
          ErlangPython.stream(:__main__, :fails_after, [2], context: env, chunk_size: 32)
          |> Enum.each(&send(test, {:item, &1}))
        )

      assert %ErlangPython.Error{type: "ValueError", message: "broken after 2"} = error
      assert_received {:item, 0}
      assert_received {:item, 1}
    end
  end

  describe "timeouts read {:error, :timeout} everywhere" do
    test "call, await, Streaming and the Enumerable stream", %{env: env} do
      assert {:error, :timeout} = ErlangPython.call(:time, :sleep, [0.5], timeout: 20)

      call = ErlangPython.async_call(:time, :sleep, [0.5])
      assert {:error, :timeout} = ErlangPython.await(call, 20)

      {:ok, ref} = Streaming.start(:__main__, :sleepy, [0.5], context: env, timeout: 20)
      assert_receive {:py_stream, ^ref, {:error, :timeout}}, 10_000

      # An Enumerable cannot return a tuple: it raises the CallError that
      # call!/4 raises for {:error, :timeout}.
      assert %ErlangPython.CallError{reason: :timeout} =
               catch_error(
                 ErlangPython.stream(:__main__, :sleepy, [0.5], context: env, timeout: 20)
                 |> Enum.to_list()
               )
    end
  end
end
