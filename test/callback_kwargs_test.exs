defmodule ErlangPython.CallbackKwargsTest do
  use ExUnit.Case, async: true

  import ErlangPython.TestHelpers

  defmodule Target do
    def both(args, kwargs), do: %{"args" => args, "kwargs" => kwargs}
    def plain(args), do: args
  end

  setup do
    name = unique("kw")
    on_exit(fn -> ErlangPython.unregister_function(name) end)
    %{name: name}
  end

  test "a fun of arity 2 gets keyword arguments apart from a positional dict", %{name: name} do
    :ok = ErlangPython.register_function(name, fn args, kwargs -> {args, kwargs} end)
    call = "__import__('erlang').call(n, *args, **kwargs)"

    assert {:ok, {[1, %{"a" => 2}], %{}}} =
             ErlangPython.eval(call, %{n: name, args: [1, %{"a" => 2}], kwargs: %{}})

    assert {:ok, {[1], %{"a" => 2}}} =
             ErlangPython.eval(call, %{n: name, args: [1], kwargs: %{a: 2}})
  end

  test "an arity-1 fun still gets them as a trailing map, as before", %{name: name} do
    :ok = ErlangPython.register_function(name, fn args -> args end)

    assert {:ok, [1, %{"a" => 2}]} =
             ErlangPython.eval("__import__('erlang').call(n, 1, a=2)", %{n: name})

    assert {:ok, [1]} = ErlangPython.eval("__import__('erlang').call(n, 1)", %{n: name})
  end

  test "module and function with kwargs: true", %{name: name} do
    :ok = ErlangPython.register_function(name, Target, :both, kwargs: true)

    assert {:ok, %{"args" => [%{"x" => 1}], "kwargs" => %{"y" => 2}}} =
             ErlangPython.eval("__import__('erlang').call(n, {'x': 1}, y=2)", %{n: name})

    :ok = ErlangPython.register_function(name, Target, :plain)

    assert {:ok, [1, %{"y" => 2}]} =
             ErlangPython.eval("__import__('erlang').call(n, 1, y=2)", %{n: name})
  end

  test "bad registrations are refused", %{name: name} do
    assert_raise ArgumentError, ~r/arity 1 or 2/, fn ->
      ErlangPython.register_function(name, fn a, b, c -> {a, b, c} end)
    end

    assert_raise ArgumentError, fn ->
      ErlangPython.register_function(name, Target, :both, bogus: 1)
    end
  end
end
