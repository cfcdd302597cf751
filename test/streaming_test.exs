defmodule ErlangPython.StreamingTest do
  use ExUnit.Case, async: true

  alias ErlangPython.{Batch, Context, Streaming}

  doctest ErlangPython.Streaming
  doctest ErlangPython.Batch

  setup_all do
    :ok =
      ErlangPython.exec("""
      import asyncio
      async def _ep_agen(n, fail_at=None):
          for i in range(n):
              await asyncio.sleep(0)
              if i == fail_at:
                  raise ValueError('agen boom')
              yield i
      async def _ep_slow(n):
          for i in range(n):
              await asyncio.sleep(0.05)
              yield i
      """)
  end

  defp collect(ref, acc \\ []) do
    receive do
      {:py_stream, ^ref, {:data, item}} -> collect(ref, [item | acc])
      {:py_stream, ^ref, :done} -> {:ok, Enum.reverse(acc)}
      {:py_stream, ^ref, {:error, text}} -> {:error, Enum.reverse(acc), text}
    after
      5_000 -> :timeout
    end
  end

  test "iterables, generators and async generators" do
    {:ok, ref} = Streaming.start(:builtins, :enumerate, ["ab"])
    assert {:ok, [{0, "a"}, {1, "b"}]} = collect(ref)
    {:ok, ref} = Streaming.start(:__main__, :_ep_agen, [3])
    assert {:ok, [0, 1, 2]} = collect(ref)
    {:ok, ref} = Streaming.start(:builtins, :iter, [[]])
    assert {:ok, []} = collect(ref)
  end

  test "keyword arguments and a bigger chunk size" do
    {:ok, ref} = Streaming.start(:builtins, :range, [5], chunk_size: 2)
    assert {:ok, [0, 1, 2, 3, 4]} = collect(ref)
    {:ok, ref} = Streaming.start(:builtins, :enumerate, [["x"]], kwargs: [start: 7])
    assert {:ok, [{7, "x"}]} = collect(ref)
  end

  test "an error after some items comes after them" do
    {:ok, ref} = Streaming.start(:__main__, :_ep_agen, [5], kwargs: %{fail_at: 2})
    assert {:error, [0, 1], "ValueError: agen boom"} = collect(ref)
    {:ok, ref} = Streaming.start(:builtins, :no_such_function, [])
    assert {:error, [], "AttributeError: " <> _} = collect(ref)
  end

  test "another owner receives the events" do
    me = self()

    owner =
      spawn(fn ->
        receive do
          {:go, ref} -> send(me, {:collected, collect(ref)})
        end
      end)

    {:ok, ref} = Streaming.start(:builtins, :range, [2], owner: owner)
    send(owner, {:go, ref})
    assert_receive {:collected, {:ok, [0, 1]}}, 5_000
    refute_received {:py_stream, ^ref, _}
  end

  test "cancel stops an async generator, closing it" do
    {:ok, ref} = Streaming.start(:__main__, :_ep_slow, [100])
    assert_receive {:py_stream, ^ref, {:data, 0}}, 5_000
    :ok = Streaming.cancel(ref)
    assert {:error, _, "cancelled"} = collect(ref)
    assert :ok = Streaming.cancel(ref)
  end

  test "the stream stops when its owner exits" do
    :ok =
      ErlangPython.exec("""
      _ep_closed = []
      def _ep_forever():
          try:
              n = 0
              while True:
                  yield n
                  n += 1
          finally:
              _ep_closed.append(True)
      """)

    owner = spawn(fn -> Process.sleep(:infinity) end)
    {:ok, _ref} = Streaming.start(:__main__, :_ep_forever, [], owner: owner)
    Process.exit(owner, :kill)

    assert ErlangPython.TestHelpers.eventually(fn ->
             ErlangPython.eval("len(_ep_closed)") == {:ok, 1}
           end)
  end

  test "a function in the caller's own environment" do
    {:ok, env} = Context.process()
    :ok = ErlangPython.exec("def mine():\n    yield 'own'", context: env)
    {:ok, ref} = Streaming.start(:__main__, :mine, [], context: env)
    assert {:ok, ["own"]} = collect(ref)
  end

  test "bad options" do
    assert {:error, {:badarg, _}} = Streaming.start(:builtins, :range, [1], owner: :nobody)
    assert {:error, {:badarg, _}} = Streaming.start(:builtins, :range, [1], chunk_size: 0)
  end

  test "Batch.parallel spreads calls over a pool's contexts" do
    {:ok, _} = ErlangPython.Pool.start(:batch_pool, 2)
    on_exit(fn -> ErlangPython.Pool.stop(:batch_pool) end)
    calls = for n <- 1..6, do: {:math, :factorial, [n]}
    assert {:ok, [1, 2, 6, 24, 120, 720]} = Batch.parallel(calls, pool: :batch_pool)
    assert {:error, %ErlangPython.Error{}} = Batch.parallel([{:math, :sqrt, [-1]}])
    assert {:error, {:pool_not_started, :nope}} = Batch.parallel([], pool: :nope)
  end
end
