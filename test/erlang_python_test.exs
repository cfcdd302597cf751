defmodule ErlangPythonTest do
  use ExUnit.Case, async: true

  import ErlangPython.TestHelpers

  alias ErlangPython.{CallError, Error, Runtime}

  doctest ErlangPython
  doctest ErlangPython.Error

  describe "the examples users start with" do
    test "call a module function" do
      assert {:ok, 4.0} = ErlangPython.call(:math, :sqrt, [16])
    end

    test "keyword arguments as a map" do
      {:ok, json} = ErlangPython.call(:json, :dumps, [%{name: "Elixir"}], kwargs: %{indent: 2})
      assert json == "{\n  \"name\": \"Elixir\"\n}"
    end

    test "keyword arguments as a keyword list" do
      assert {:ok, [3, 2, 1]} =
               ErlangPython.call(:builtins, :sorted, [[1, 3, 2]], kwargs: [reverse: true])
    end

    test "eval, with and without locals" do
      assert {:ok, 45} = ErlangPython.eval("sum(range(10))")
      assert {:ok, 25} = ErlangPython.eval("x * y", %{x: 5, y: 5})
      assert {:ok, 7} = ErlangPython.eval("a + b", %{"a" => 3, "b" => 4})
    end

    test "locals are visible in nested scopes of the expression" do
      assert {:ok, [5, 6]} = ErlangPython.eval("[x + i for i in range(2)]", %{x: 5})
      assert {:ok, 10} = ErlangPython.eval("(lambda: x * 2)()", %{x: 5})
    end

    test "locals shadow __main__ names; keys that are not identifiers still arrive" do
      name = unique("shadowed")
      :ok = ErlangPython.exec("#{name} = 'global'")
      assert {:ok, "local"} = ErlangPython.eval(name, %{String.to_atom(name) => "local"})
      assert {:ok, "global"} = ErlangPython.eval(name)
      # "class" is a keyword and "my-key" no identifier: both are still visible.
      assert {:ok, [1, 2, 3]} =
               ErlangPython.eval("[globals()['class'], globals()['my-key'], x]", %{
                 "class" => 1,
                 "my-key" => 2,
                 x: 3
               })
    end

    test "the same expression with different locals" do
      for {a, b} <- [{1, 2}, {10, 20}] do
        assert {:ok, a + b} == ErlangPython.eval("a + b", %{a: a, b: b})
      end

      assert {:ok, 7} = ErlangPython.eval("a + b", %{b: 5, a: 2})
      assert {:error, %Error{type: "NameError"}} = ErlangPython.eval("a + b", %{a: 1})
    end

    test "locals do not leak into __main__" do
      name = unique("leak")
      assert {:ok, 1} = ErlangPython.eval(name, %{String.to_atom(name) => 1})
      assert {:error, %Error{type: "NameError"}} = ErlangPython.eval(name)
    end

    test "exec defines names in __main__ that call and eval find" do
      name = unique("double")
      assert :ok = ErlangPython.exec("def #{name}(x):\n    return x * 2")
      assert {:ok, 42} = ErlangPython.call(:__main__, name, [21])
      assert {:ok, 42} = ErlangPython.call("__main__", String.to_atom(name), [21])
      assert {:ok, 8} = ErlangPython.eval("#{name}(4)")
      assert {:ok, true} = ErlangPython.eval("'#{name}' in vars(__import__('__main__'))")
    end

    test "a function whose name is beyond Latin-1 is found by its atom" do
      # Python identifiers may be any Unicode letters; the atom's name was
      # read as Latin-1 before, and such a call was refused as a bad name.
      name = "двойной_" <> unique("x")
      assert :ok = ErlangPython.exec("def #{name}(x):\n    return x * 2")
      assert {:ok, 42} = ErlangPython.call(:__main__, String.to_atom(name), [21])
    end

    test "a Python exception is an error struct" do
      assert {:error, %Error{type: "ZeroDivisionError", message: "division by zero"} = error} =
               ErlangPython.eval("1/0")

      assert error.traceback =~ "Traceback (most recent call last)"
      assert error.traceback =~ "ZeroDivisionError: division by zero"
    end

    test "exceptions raised inside functions carry their frames" do
      name = unique("boom")
      :ok = ErlangPython.exec("def #{name}():\n    raise ValueError('bad value')\n")

      {:error, %Error{type: "ValueError", message: "bad value", traceback: tb}} =
        ErlangPython.call(:__main__, name)

      assert tb =~ "in #{name}"
    end

    test "a blocked operation is tagged" do
      assert {:error, {:sandbox_blocked, "os.fork", message}} =
               ErlangPython.exec("import os; os.fork()")

      assert message =~ "os.fork is blocked in Erlang VM context."
    end
  end

  describe "names" do
    test "dotted modules and dotted functions" do
      assert {:ok, "a/b"} = ErlangPython.call("os.path", :join, ["a", "b"])
      assert {:ok, "a/b"} = ErlangPython.call(:os, "path.join", ["a", "b"])
    end

    test "unknown module and function are Python errors" do
      assert {:error, %Error{type: "ModuleNotFoundError", message: msg}} =
               ErlangPython.call(:no_such_module_xyz, :f)

      assert msg =~ "no_such_module_xyz"

      assert {:error, %Error{type: "AttributeError", message: msg}} =
               ErlangPython.call(:math, :no_such_function)

      assert msg =~ "no_such_function"
    end
  end

  describe "bang variants" do
    test "return bare values" do
      assert 4.0 == ErlangPython.call!(:math, :sqrt, [16])
      assert 3 == ErlangPython.eval!("1 + 2")
      assert :ok == ErlangPython.exec!("pass")
    end

    test "raise ErlangPython.Error with type, message and traceback" do
      error =
        assert_raise Error, "ZeroDivisionError: division by zero", fn ->
          ErlangPython.eval!("1/0")
        end

      assert error.type == "ZeroDivisionError"
      assert error.traceback =~ "ZeroDivisionError"
    end

    test "raise for sandbox blocks and timeouts too" do
      assert_raise Error, ~r/RuntimeError: os.system is blocked/, fn ->
        ErlangPython.exec!("import os; os.system('true')")
      end

      assert %CallError{reason: :timeout} =
               catch_error(ErlangPython.eval!("__import__('time').sleep(0.3)", %{}, timeout: 10))

      assert Exception.message(%CallError{reason: :timeout}) == "the Python call timed out"
    end

    test "raise ArgumentError for malformed arguments" do
      assert_raise ArgumentError, ~r/args must be a list/, fn ->
        ErlangPython.call!(:math, :sqrt, 16)
      end
    end
  end

  describe "a bad argument raises ArgumentError, before any work is queued" do
    test "malformed arguments" do
      for {call, message} <- [
            {fn -> ErlangPython.call(:math, :sqrt, 16) end, ~r/^args must be a list/},
            {fn -> ErlangPython.call(123, :f, []) end, ~r/^module name/},
            {fn -> ErlangPython.call("", :f, []) end, ~r/^module name/},
            {fn -> ErlangPython.call(:math, nil, []) end, ~r/^function name/},
            {fn -> ErlangPython.eval(:code) end, ~r/^code must be a string/},
            {fn -> ErlangPython.eval("1", x: 1) end, ~r/^locals must be a map/}
          ] do
        assert_raise ArgumentError, message, call
      end
    end

    test "NUL bytes in code and names" do
      assert_raise ArgumentError, "code contains a NUL byte", fn -> ErlangPython.eval("1\0") end

      assert_raise ArgumentError, "function name contains a NUL byte", fn ->
        ErlangPython.call(:math, "sq\0rt", [4])
      end
    end

    test "invalid UTF-8 source" do
      assert_raise ArgumentError, "code is not valid UTF-8", fn ->
        ErlangPython.eval(<<0xFF, 0xFE>>)
      end
    end

    test "an unknown option is named" do
      assert_raise ArgumentError, ~r/unknown keys \[:timeuot\]/, fn ->
        ErlangPython.eval("1", %{}, timeuot: 5)
      end

      # Options are per function: eval takes no kwargs, exec no decode.
      assert_raise ArgumentError, ~r/unknown keys \[:kwargs\]/, fn ->
        ErlangPython.eval("1", %{}, kwargs: [a: 1])
      end

      assert_raise ArgumentError, ~r/unknown keys \[:decode\]/, fn ->
        ErlangPython.exec("pass", decode: false)
      end
    end

    test "a bad option value is named" do
      for {opts, message} <- [
            {[kwargs: 5], ~r/^kwargs must be a map or keyword list/},
            {[timeout: -1], ~r/^timeout must be a non-negative integer/},
            {[decode: :no], ~r/^decode must be a boolean/},
            {[node: "n@h"], ~r/^node must be a node name/},
            {:not_a_list, ~r/^options must be a keyword list/}
          ] do
        assert_raise ArgumentError, message, fn -> ErlangPython.call(:math, :sqrt, [1], opts) end
      end
    end

    test "the NIF refuses a malformed request with an error tuple" do
      for op <- [:nope, {:call}, {:call, 1, 2, 3}, "string", %{}] do
        assert {:error, {:badarg, "malformed request"}} = Runtime.request(op, 5_000)
      end
    end

    test "syntax errors say where" do
      assert {:error, %Error{type: "SyntaxError", message: message}} = ErlangPython.exec("x = (\n")
      assert message =~ "line"
    end
  end

  describe "timeouts" do
    test "an expired timeout returns {:error, :timeout} and leaves no reply behind" do
      assert {:error, :timeout} =
               ErlangPython.eval("__import__('time').sleep(0.3)", %{}, timeout: 20)

      # The next call is queued behind the timed-out one, on the same worker
      # thread, which sends its messages in order: once this answer is here,
      # a late reply to the first call would be here too.
      assert {:ok, 2} = ErlangPython.eval("1 + 1")
      refute_received {_, _}
    end

    test ":infinity waits" do
      assert {:ok, nil} =
               ErlangPython.eval("__import__('time').sleep(0.05)", %{}, timeout: :infinity)
    end
  end

  test "ping is a round trip that runs no Python" do
    assert :pong = ErlangPython.ping()
  end

  describe "the embedded interpreter" do
    test "is the Python the NIF was built against" do
      {exe, version} = ErlangPython.Native.build_info()
      assert {:ok, ^exe} = ErlangPython.eval("__import__('sys').executable")

      assert {:ok, ^version} = ErlangPython.eval("'%d.%d' % __import__('sys').version_info[:2]")

      {prefix, 0} = System.cmd(exe, ["-c", "import sys; print(sys.prefix, end='')"])
      assert {:ok, ^prefix} = ErlangPython.eval("__import__('sys').prefix")
    end

    test "imports C extension modules" do
      assert {:ok, 1.0} = ErlangPython.call(:math, :cos, [0])
      # _decimal is a C extension: it needs libpython's symbols to be global.
      assert {:ok, "0.3333333333"} =
               ErlangPython.eval("str(__import__('decimal').Context(prec=10).divide(1, 3))")

      assert {:ok, version} = ErlangPython.eval("__import__('ssl').OPENSSL_VERSION")
      assert version =~ "SSL"

      assert {:ok, [[1, "one"]]} =
               ErlangPython.eval("""
               [list(r) for r in (lambda c: (c.execute("create table t (n, s)"),
                                              c.execute("insert into t values (1, 'one')"),
                                              c.execute("select * from t").fetchall())[-1])(
                   __import__('sqlite3').connect(':memory:'))]
               """)
    end

    test "runs on one dedicated thread that is Python's main thread" do
      assert {:ok, true} =
               ErlangPython.eval(
                 "__import__('threading').current_thread() is __import__('threading').main_thread()"
               )

      {:ok, id1} = ErlangPython.eval("__import__('threading').get_ident()")

      {:ok, id2} =
        Task.async(fn -> ErlangPython.eval("__import__('threading').get_ident()") end)
        |> Task.await()

      assert id1 == id2
    end

    test "did not install Python signal handlers in the VM" do
      # With install_signal_handlers off, Python leaves SIGINT to the VM.
      assert {:ok, false} =
               ErlangPython.eval(
                 "__import__('signal').getsignal(__import__('signal').SIGINT) is __import__('signal').default_int_handler"
               )
    end
  end
end
