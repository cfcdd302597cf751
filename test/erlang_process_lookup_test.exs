defmodule ErlangPython.ErlangProcessLookupTest do
  # Python's view of Erlang processes and contexts as the original's
  # `erlang` module gives it: erlang.whereis, erlang.SuspensionRequired and
  # a context's `__name__`. Registers names: not async.
  use ExUnit.Case, async: false

  setup do
    name = :"py_whereis_#{System.unique_integer([:positive])}"
    Process.register(self(), name)
    # ErlangPython.eval/exec run in __main__, where `erlang` is imported
    # as in any script (contexts have it bound already).
    :ok = ErlangPython.exec("import erlang")
    {:ok, name: Atom.to_string(name)}
  end

  test "erlang.whereis finds a registered process by str, bytes or atom name", %{name: name} do
    me = self()
    assert {:ok, ^me} = ErlangPython.eval("erlang.whereis(name)", %{name: name})
    assert {:ok, ^me} = ErlangPython.eval("erlang.whereis(name.encode())", %{name: name})
    assert {:ok, ^me} = ErlangPython.eval("erlang.whereis(erlang._atom(name))", %{name: name})
  end

  test "erlang.whereis is None for an unknown name, and makes no atom" do
    name = "never_an_atom_#{System.unique_integer([:positive])}"
    assert {:ok, nil} = ErlangPython.eval("erlang.whereis(n)", %{n: name})
    assert_raise ArgumentError, fn -> String.to_existing_atom(name) end
  end

  test "erlang.whereis refuses a name that is not str or bytes" do
    assert {:error, %ErlangPython.Error{type: "TypeError", message: message}} =
             ErlangPython.eval("erlang.whereis(123)")

    assert message =~ "str or bytes"
  end

  test "a message sent to a pid found by erlang.whereis arrives", %{name: name} do
    :ok =
      ErlangPython.exec("""
      def _notify(name, msg):
          pid = erlang.whereis(name)
          if pid is None:
              return False
          erlang.send(pid, msg)
          return True
      """)

    assert {:ok, true} = ErlangPython.call(:__main__, :_notify, [name, {"hello", 42}])
    assert_receive {"hello", 42}
    assert {:ok, false} = ErlangPython.call(:__main__, :_notify, ["nobody_here", 1])
  end

  test "erlang.SuspensionRequired escapes `except Exception`" do
    assert {:ok, [true, false]} =
             ErlangPython.eval(
               "[issubclass(erlang.SuspensionRequired, BaseException), " <>
                 "issubclass(erlang.SuspensionRequired, Exception)]"
             )
  end

  test "a context's code is __main__, and a thread of its own finds its module" do
    :ok = ErlangPython.register_function(:double_for_thread, fn [x] -> x * 2 end)
    {:ok, ctx} = ErlangPython.ContextServer.start_link()

    code = """
    import sys, threading
    def work():
        setattr(sys.modules[__name__], '_thread_result', erlang.call('double_for_thread', 5))
    t = threading.Thread(target=work)
    t.start()
    t.join()
    result = [__name__, getattr(sys.modules[__name__], '_thread_result')]
    """

    assert :ok = ErlangPython.exec(code, context: ctx)
    assert {:ok, ["__main__", 10]} = ErlangPython.eval("result", %{}, context: ctx)
  after
    ErlangPython.unregister_function(:double_for_thread)
  end
end
