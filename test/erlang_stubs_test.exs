defmodule ErlangPython.ErlangStubsTest do
  use ExUnit.Case, async: true

  @stub Path.expand("../priv/erlang/__init__.pyi", __DIR__)

  test "the erlang module is typed: py.typed, and a stub for every public name" do
    assert File.exists?(Path.join(Path.dirname(@stub), "py.typed"))

    assert {:ok, %{"missing" => [], "extra" => []}} =
             ErlangPython.eval(
               """
               (lambda ast, erlang: (lambda stubbed: {
                   "missing": sorted(set(erlang.__all__) - stubbed),
                   "extra": sorted(stubbed - set(erlang.__all__)),
               })({node.name for node in ast.parse(open(path).read()).body
                   if isinstance(node, (ast.FunctionDef, ast.ClassDef))
                   and not node.name.startswith("__")}))(__import__("ast"), __import__("erlang"))
               """,
               %{path: @stub}
             )
  end
end
