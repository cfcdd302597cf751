defmodule ErlangPython.BadInputTest do
  use ExUnit.Case, async: true

  alias ErlangPython.{Error, Request, Runtime}

  # Whatever comes in, the answer is a clear error or a correct value, and
  # the runtime keeps serving.
  setup do
    on_exit(fn -> assert :pong = ErlangPython.ping(10_000) end)
  end

  test "invalid Python source is a SyntaxError with its line" do
    assert {:error, %Error{type: "SyntaxError", message: message}} =
             ErlangPython.exec("x = 1\ny = (\nz = 3\n")

    assert message =~ ~r/line \d/

    assert {:error, %Error{type: "IndentationError", message: message}} =
             ErlangPython.exec("def f():\nreturn 1")

    assert message =~ "line 2"
  end

  test "NUL bytes in code, module and function names raise ArgumentError" do
    assert_raise ArgumentError, "code contains a NUL byte", fn -> ErlangPython.exec("x = 1\0") end

    assert_raise ArgumentError, "module name contains a NUL byte", fn ->
      ErlangPython.call("os\0", :getpid)
    end

    assert_raise ArgumentError, "function name contains a NUL byte", fn ->
      ErlangPython.call(:os, "getpid\0")
    end
  end

  test "the NIF refuses what the API would have, in requests that bypass it" do
    for {request, text} <- [
          {Request.exec("x = 1\0"), "code contains a NUL byte"},
          {Request.call(:"os\0", :getpid, [], %{}), "module name contains a NUL byte"},
          {Request.call(:os, "getpid\0", [], %{}), "function name contains a NUL byte"},
          {Request.eval(<<"1 + ", 0xFF>>, %{}), "code is not valid UTF-8"},
          {Request.call(<<0xC3>>, :f, [], %{}), "module name is not valid UTF-8"},
          {Request.call(:math, :sqrt, 16, %{}), "args must be a list"},
          {Request.eval("1", x: 1), "locals must be a map"}
        ] do
      assert {:error, {:badarg, ^text}} = Runtime.request(request, 5_000), inspect(request)
    end
  end

  test "unknown modules and functions" do
    assert {:error, %Error{type: "ModuleNotFoundError"}} = ErlangPython.call(:"no.such.module", :f)
    assert {:error, %Error{type: "AttributeError"}} = ErlangPython.call(:os, "path.no_such")
    assert {:error, %Error{type: "NameError"}} = ErlangPython.eval("no_such_name_anywhere")
  end

  test "invalid UTF-8 where Python needs a str" do
    assert_raise ArgumentError, "code is not valid UTF-8", fn ->
      ErlangPython.eval(<<"1 + ", 0xFF>>)
    end

    assert_raise ArgumentError, "module name is not valid UTF-8", fn ->
      ErlangPython.call(<<0xC3>>, :f)
    end

    # A kwargs key that is not valid UTF-8 arrives as bytes: Python refuses it.
    assert {:error, %Error{type: "TypeError", message: message}} =
             ErlangPython.call(:builtins, :dict, [], kwargs: %{<<0xFF>> => 1})

    assert message =~ "keywords must be strings"
  end

  describe "a list nested 1,000,000 deep" do
    test "from Elixir" do
      deep = Enum.reduce(1..1_000_000, [], fn _, acc -> [acc] end)
      assert {:error, {:too_deep, 10_000}} = ErlangPython.call(:builtins, :len, [deep])
    end

    test "from Python" do
      assert {:error, {:too_deep, 10_000}} =
               ErlangPython.eval(
                 "__import__('functools').reduce(lambda a, _: [a], range(1_000_000), [])"
               )
    end
  end

  test "an integer of 100,001 digits, both ways, exactly" do
    big = Integer.pow(10, 100_000)
    assert {:ok, true} = ErlangPython.eval("x == 10 ** 100000", %{x: big})
    assert {:ok, ^big} = ErlangPython.eval("10 ** 100000")
    assert {:ok, negative} = ErlangPython.eval("-(10 ** 100000) - 7")
    assert negative == -big - 7
  end

  test "an integer too large for an Erlang bignum is an error, not a crash" do
    assert {:error, {:integer_too_large, bits}} = ErlangPython.eval("1 << 80_000_000")
    assert bits > 64_000_000
  end

  test "a 100 MB binary, both ways" do
    big = :binary.copy(<<7>>, 100_000_000)
    assert {:ok, 100_000_000} = ErlangPython.call(:builtins, :len, [{:bytes, big}])
    assert {:ok, back} = ErlangPython.eval("b'\\x07' * 100_000_000")
    assert byte_size(back) == 100_000_000
    assert back == big
  end

  test "sys.exit() is an error tuple; the VM keeps running" do
    assert {:error, %Error{type: "SystemExit", message: "bye"}} =
             ErlangPython.exec("import sys; sys.exit('bye')")

    assert {:error, %Error{type: "SystemExit"}} = ErlangPython.exec("raise SystemExit(0)")
  end

  test "RecursionError" do
    assert {:error, %Error{type: "RecursionError"}} =
             ErlangPython.exec("def _bad_r(n): return _bad_r(n + 1)\n_bad_r(0)")
  end

  test "MemoryError, raised by a real allocation failure" do
    assert {:error, %Error{type: "MemoryError"}} = ErlangPython.eval("bytearray(1 << 62)")
  end
end
