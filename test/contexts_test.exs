defmodule ErlangPython.ContextsTest do
  # ErlangPython.Case gives each test its own namespace: async is safe.
  use ErlangPython.Case, async: true

  alias ErlangPython.{Context, Error}

  doctest ErlangPython.Context

  test "each test gets its own context", %{python: python} do
    assert %Context{} = python
    assert :ok = ErlangPython.exec("shared_name = 'this test'", context: python)
    assert {:ok, "this test"} = ErlangPython.eval("shared_name", %{}, context: python)
  end

  test "the same name in another test's context is invisible", %{python: python} do
    assert {:error, %Error{type: "NameError"}} =
             ErlangPython.eval("shared_name", %{}, context: python)
  end

  test "two contexts never see each other's names, nor __main__'s" do
    {:ok, a} = Context.new()
    {:ok, b} = Context.new()
    :ok = ErlangPython.exec("def who():\n    return 'a'", context: a)
    :ok = ErlangPython.exec("def who():\n    return 'b'", context: b)
    assert {:ok, "a"} = ErlangPython.call(:__main__, :who, [], context: a)
    assert {:ok, "b"} = ErlangPython.call(:__main__, :who, [], context: b)
    assert {:error, %Error{type: "AttributeError"}} = ErlangPython.call(:__main__, :who)
    assert {:ok, [1, 2]} = ErlangPython.eval("[x, y]", %{x: 1, y: 2}, context: a)
  end

  test "streams and modules inside a context", %{python: python} do
    :ok = ErlangPython.exec("import math\nlimit = 4", context: python)

    assert ErlangPython.stream_eval("(math.factorial(i) for i in range(limit))", %{},
             context: python
           )
           |> Enum.to_list() == [1, 1, 2, 6]
  end

  test "a bad context raises ArgumentError" do
    assert_raise ArgumentError, ~r/^context must be an ErlangPython.Context/, fn ->
      ErlangPython.eval("1", %{}, context: :nope)
    end
  end
end
