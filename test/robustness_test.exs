defmodule ErlangPython.RobustnessTest do
  use ExUnit.Case, async: true

  alias ErlangPython.Error

  test "a Rust panic on the Python thread is an error reply; the runtime keeps serving" do
    assert {:error, {:internal_error, "panic: diagnostic panic requested"}} =
             ErlangPython.Runtime.request(ErlangPython.Request.diagnostic_panic(), 5_000)

    assert :pong = ErlangPython.ping()
    assert {:ok, 2} = ErlangPython.eval("1 + 1")
  end

  test "sys.exit() is an error, not the end of the VM" do
    os_pid = System.pid()

    assert {:error, %Error{type: "SystemExit", message: "3"}} =
             ErlangPython.exec("import sys; sys.exit(3)")

    assert {:error, %Error{type: "SystemExit"}} = ErlangPython.eval("exit()")
    assert System.pid() == os_pid
    assert :pong = ErlangPython.ping()
  end

  test "KeyboardInterrupt and other BaseExceptions are errors" do
    assert {:error, %Error{type: "KeyboardInterrupt"}} =
             ErlangPython.exec("raise KeyboardInterrupt")

    assert {:error, %Error{type: "GeneratorExit"}} = ErlangPython.exec("raise GeneratorExit")
  end

  test "an exception whose __str__ fails still produces an error" do
    :ok =
      ErlangPython.exec("""
      class _RobustBadStr(Exception):
          def __str__(self):
              raise ValueError('no str')
      """)

    assert {:error, %Error{type: "_RobustBadStr", message: message}} =
             ErlangPython.exec("raise _RobustBadStr()")

    assert message =~ "_RobustBadStr"
  end

  test "malformed requests sent straight to the NIF are refused, not crashes" do
    for op <- [:nope, {:call}, {:call, 1, 2, 3, 4}, {:eval, 1, 2}, {:exec, [1]}, "string", %{}] do
      assert {:error, {:badarg, _}} = ErlangPython.Runtime.request(op, 5_000), inspect(op)
    end

    assert :pong = ErlangPython.ping()
  end

  test "a large request is never copied on a normal scheduler" do
    big = Enum.to_list(1..100_000)
    ref = make_ref()
    # The normal-scheduler NIF refuses it; the API then copies it on a dirty one.
    assert :too_large = ErlangPython.Native.submit(ref, {:call, :builtins, :len, [big], %{}})
    assert {:ok, 100_000} = ErlangPython.call(:builtins, :len, [big])
    assert {:ok, 10_000} = ErlangPython.call(:builtins, :len, [Map.new(1..10_000, &{&1, &1})])
    # Small requests stay on the fast path.
    small_ref = make_ref()
    handle = ErlangPython.Native.submit(small_ref, {:call, :builtins, :len, [[1, 2]], %{}})
    assert is_reference(handle)
    assert_receive {^small_ref, {:ok, 2}}, 5_000
    # The handle must outlive the reply: dropping it cancels the request.
    assert ErlangPython.Native.cancel(handle) == :done
  end

  test "Python recursion errors are errors" do
    :ok = ErlangPython.exec("def _robust_recurse(n):\n    return _robust_recurse(n + 1)\n")

    assert {:error, %Error{type: "RecursionError"}} =
             ErlangPython.call(:__main__, :_robust_recurse, [0])
  end
end
