defmodule ErlangPython.ReloadTest do
  use ExUnit.Case, async: true

  import ErlangPython.TestHelpers

  setup do
    dir = Path.join(System.tmp_dir!(), unique("ep_reload"))
    File.mkdir_p!(dir)
    module = unique("ep_reload_mod")
    source = Path.join(dir, module <> ".py")
    File.write!(source, "def version():\n    return 'v1'\n")

    {:ok, nil} =
      ErlangPython.call(:builtins, :exec, ["import sys; sys.path.insert(0, d)", %{"d" => dir}])

    on_exit(fn ->
      ErlangPython.call(:builtins, :exec, ["import sys; sys.path.remove(d)", %{"d" => dir}])
      File.rm_rf!(dir)
    end)

    %{module: module, source: source}
  end

  test "an edited module's new code runs after reload/1, not before", %{
    module: module,
    source: source
  } do
    assert {:ok, "v1"} = ErlangPython.call(module, :version, [])

    # Same size, same second: only the discarded bytecode makes this visible.
    File.write!(source, "def version():\n    return 'v2'\n")
    assert {:ok, "v1"} = ErlangPython.call(module, :version, [])

    assert :ok = ErlangPython.reload(module)
    assert {:ok, "v2"} = ErlangPython.call(module, :version, [])

    # New functions appear too.
    File.write!(source, "def version():\n    return 'v3'\n\ndef extra():\n    return 42\n")
    assert :ok = ErlangPython.reload(String.to_atom(module))
    assert {:ok, 42} = ErlangPython.call(module, :extra, [])
  end

  test "a module not imported yet is imported", %{module: module} do
    assert :ok = ErlangPython.reload(module)
    assert {:ok, true} = ErlangPython.eval("m in __import__('sys').modules", %{m: module})
  end

  test "a syntax error is an error, and the module keeps its old code", %{
    module: module,
    source: source
  } do
    assert {:ok, "v1"} = ErlangPython.call(module, :version, [])
    File.write!(source, "def version(:\n")

    assert {:error, %ErlangPython.Error{type: "SyntaxError"}} = ErlangPython.reload(module)
    assert {:ok, "v1"} = ErlangPython.call(module, :version, [])
  end

  test "the py facade's reload sees a same-second edit too", %{module: module, source: source} do
    assert {:ok, "v1"} = ErlangPython.call(module, :version, [])
    File.write!(source, "def version():\n    return 'v9'\n")
    assert :ok = :py.reload(String.to_atom(module))
    assert {:ok, "v9"} = ErlangPython.call(module, :version, [])
  end

  test "an unknown module is an error; a bad name is refused" do
    assert {:error, %ErlangPython.Error{type: "ModuleNotFoundError"}} =
             ErlangPython.reload(unique("no_such_module"))

    assert_raise ArgumentError, fn -> ErlangPython.reload(42) end
  end
end
