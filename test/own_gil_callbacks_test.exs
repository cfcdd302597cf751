defmodule ErlangPython.OwnGilCallbacksTest do
  # Callbacks made from Python threads of an own-GIL context, calling back
  # into that same context while the request that started the threads
  # waits for them in join(). The context's one thread is blocked there, so
  # the thread waiting for the callback runs those nested requests itself
  # (native/.../own_gil/helping.rs). Before, each such callback waited out
  # the 30 s callback timeout. Own-GIL contexts need Python 3.12+: tagged
  # :own_gil, excluded on older Pythons (test_helper.exs).
  use ExUnit.Case, async: true

  alias ErlangPython.{ContextServer, Error}

  @moduletag :own_gil

  # Far below the 30 s a deadlocked callback would wait: a regression fails
  # with {:error, :timeout} instead of hanging the suite.
  @timeout 20_000

  setup do
    {:ok, ctx} = ContextServer.start_link(own_gil: true)
    on_exit(fn -> ContextServer.stop(ctx) end)

    :ok =
      ErlangPython.exec(
        """
        import threading
        def joined(work, n):
            results = [None] * n
            def run(i):
                try:
                    results[i] = work(i)
                except Exception as e:
                    results[i] = [type(e).__name__, str(e)]
            threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
            for t in threads: t.start()
            for t in threads: t.join()
            return results
        """,
        context: ctx
      )

    %{ctx: ctx}
  end

  defp register(fun) do
    name = "own_gil_cb_#{System.unique_integer([:positive])}"
    :ok = ErlangPython.register_function(name, fun)
    on_exit(fn -> ErlangPython.unregister_function(name) end)
    name
  end

  defp call_joined(ctx, code, n) do
    :ok = ErlangPython.exec(code, context: ctx)
    ErlangPython.eval("joined(work, n)", %{n: n}, context: ctx, timeout: @timeout)
  end

  test "a thread's callback reenters the context joining it", %{ctx: ctx} do
    name = register(fn [x] -> ErlangPython.eval!("x * 2 + offset", %{x: x}, context: ctx) end)
    :ok = ErlangPython.exec("offset = 0", context: ctx)

    code = """
    def work(i):
        return [erlang.call(#{inspect(name)}, i * 100 + r) for r in range(5)]
    """

    expected = for i <- 0..2, do: for(r <- 0..4, do: (i * 100 + r) * 2)
    assert {:ok, ^expected} = call_joined(ctx, code, 3)

    # The nested requests ran in the context's own interpreter: its globals.
    :ok = ErlangPython.exec("offset = 1000", context: ctx)
    code = "def work(i): return [erlang.call(#{inspect(name)}, 1)]"
    assert {:ok, [[1002]]} = call_joined(ctx, code, 1)

    # A thread left running after its request answered still calls in.
    code = "threading.Thread(target=lambda: erlang.send(me, erlang.call(n, 21))).start()"
    assert {:ok, nil} = ErlangPython.eval(code, %{me: self(), n: name}, context: ctx)
    assert_receive 1042, 10_000
  end

  test "nested two deep: the nested request makes a callback that calls in again", %{ctx: ctx} do
    inner = register(fn [x] -> ErlangPython.eval!("x + 1", %{x: x}, context: ctx) end)

    nested = "[erlang.call(inner, x), erlang.call(inner, x * 10)]"
    outer = register(fn [x] -> ErlangPython.eval!(nested, %{x: x, inner: inner}, context: ctx) end)

    code = "def work(i): return erlang.call(#{inspect(outer)}, i + 1)"
    assert {:ok, [[2, 11], [3, 21]]} = call_joined(ctx, code, 2)
  end

  test "a callback that raises, and a nested request that raises", %{ctx: ctx} do
    raises =
      register(fn [x] ->
        {:ok, 5} = ErlangPython.eval("x + 4", %{x: x}, context: ctx)
        raise "boom #{x}"
      end)

    nested_error =
      register(fn [] ->
        {:error, %Error{type: type}} = ErlangPython.eval("1 / 0", %{}, context: ctx)
        type
      end)

    code = """
    def work(i):
        if i == 0:
            return erlang.call(#{inspect(raises)}, 1)
        return erlang.call(#{inspect(nested_error)})
    """

    assert {:ok, [["CallbackError", message], "ZeroDivisionError"]} = call_joined(ctx, code, 2)
    assert message =~ "boom 1"
    # The context still answers afterwards.
    assert {:ok, 3} = ErlangPython.eval("1 + 2", %{}, context: ctx)
  end
end
