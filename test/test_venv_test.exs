defmodule ErlangPython.TestVenvTest do
  # The venv of real libraries CI provides (bin/test-venv): what the tests
  # of conversions and guides run against.
  use ExUnit.Case, async: true

  @moduletag :test_venv

  @pins "test/requirements.txt"
        |> File.read!()
        |> String.split("\n", trim: true)
        |> Enum.reject(&String.starts_with?(&1, "#"))
        |> Map.new(fn line -> line |> String.split("==") |> List.to_tuple() end)

  test "numpy, pandas and scikit-learn import at their pinned versions" do
    assert map_size(@pins) == 3

    for {package, version} <- @pins do
      module = if package == "scikit-learn", do: "sklearn", else: package
      assert {:ok, ^version} = ErlangPython.eval("__import__(m).__version__", %{m: module})
    end
  end

  test "the venv is the one named by ERLANG_PYTHON_TEST_VENV" do
    venv = ErlangPython.TestVenv.path()
    assert {:ok, file} = ErlangPython.eval("__import__('numpy').__file__")
    assert String.starts_with?(file, venv)
  end

  test "the libraries compute under the sandbox" do
    assert {:ok, 2.5} = ErlangPython.eval("float(__import__('numpy').array([1, 2, 3, 4]).mean())")

    assert {:ok, %{"a" => 3, "b" => 7}} =
             ErlangPython.eval(
               "{k: int(v) for k, v in __import__('pandas').DataFrame({'a': [1, 2], 'b': [3, 4]}).sum().items()}"
             )
  end
end
