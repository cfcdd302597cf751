defmodule ErlangPython.ModuleLookupTest do
  # A worker remembers the modules it found initialized in sys.modules, so
  # a repeated call finds its module with one dict lookup. Whatever
  # sys.modules holds now must still be what a call uses.
  use ExUnit.Case, async: false

  test "a call uses the object sys.modules holds now, after it was replaced" do
    :ok =
      ErlangPython.exec("""
      import sys, types
      sys.modules['lookup_probe'] = types.SimpleNamespace(which=lambda: 'first')
      """)

    for _ <- 1..3, do: assert({:ok, "first"} = ErlangPython.call(:lookup_probe, :which, []))

    :ok =
      ErlangPython.exec(
        "sys.modules['lookup_probe'] = types.SimpleNamespace(which=lambda: 'second')"
      )

    assert {:ok, "second"} = ErlangPython.call(:lookup_probe, :which, [])

    :ok = ErlangPython.exec("del sys.modules['lookup_probe']")

    assert {:error, %ErlangPython.Error{type: "ModuleNotFoundError"}} =
             ErlangPython.call(:lookup_probe, :which, [])
  end

  # The new source differs in size too: a .pyc is checked by mtime (to the
  # second) and size.
  test "a module imported again from a changed file is the new one" do
    dir = Path.join(System.tmp_dir!(), "module_lookup_#{System.unique_integer([:positive])}")
    File.mkdir_p!(dir)
    on_exit(fn -> File.rm_rf!(dir) end)
    File.write!(Path.join(dir, "lookup_file_probe.py"), "def version():\n    return 1\n")
    :ok = ErlangPython.exec("import sys; sys.path.insert(0, #{inspect(dir)})")

    try do
      for _ <- 1..3, do: assert({:ok, 1} = ErlangPython.call(:lookup_file_probe, :version, []))

      File.write!(Path.join(dir, "lookup_file_probe.py"), "def version():\n    return 20\n")

      :ok =
        ErlangPython.exec("""
        import importlib
        del sys.modules['lookup_file_probe']
        importlib.invalidate_caches()
        """)

      assert {:ok, 20} = ErlangPython.call(:lookup_file_probe, :version, [])
    after
      ErlangPython.exec("sys.path.remove(#{inspect(dir)})")
    end
  end
end
