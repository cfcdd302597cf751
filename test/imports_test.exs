defmodule ErlangPython.ImportsTest do
  # The import registry, paths and preload code are global: not async.
  use ExUnit.Case, async: false

  import ErlangPython.TestHelpers

  alias ErlangPython.{ContextServer, Imports, Preload}

  doctest ErlangPython.Imports
  doctest ErlangPython.Preload

  setup do
    Imports.clear()
    Imports.clear_paths()
    Preload.clear()

    on_exit(fn ->
      Imports.clear()
      Imports.clear_paths()
      Preload.clear()
    end)
  end

  defp module_dir(name, source) do
    dir = Path.join(System.tmp_dir!(), unique("ep_imports"))
    File.mkdir_p!(dir)
    File.write!(Path.join(dir, "#{name}.py"), source)
    on_exit(fn -> File.rm_rf!(dir) end)
    dir
  end

  describe "imports" do
    test "ensure_imported puts the module in sys.modules now" do
      {:ok, false} = ErlangPython.eval("'ep_imported_now' in __import__('sys').modules")
      dir = module_dir("ep_imported_now", "X = 1\n")
      :ok = Imports.add_path(dir)
      assert :ok = Imports.ensure_imported(:ep_imported_now)
      assert {:ok, true} = ErlangPython.eval("'ep_imported_now' in __import__('sys').modules")
    end

    test "the registry: all/0, by_module/0, imported?/2, idempotence" do
      :ok = Imports.ensure_imported(:json)
      :ok = Imports.ensure_imported(:json)
      :ok = Imports.ensure_imported("json", "dumps")
      :ok = Imports.ensure_imported(:json, :loads)
      :ok = Imports.ensure_imported(:math)

      assert Enum.sort(Imports.all()) == [
               {"json", :all},
               {"json", "dumps"},
               {"json", "loads"},
               {"math", :all}
             ]

      assert Imports.by_module() == %{"json" => ["dumps", "loads"], "math" => []}
      assert Imports.imported?(:json, :dumps)
      refute Imports.imported?(:json, :nope)
      assert :ok = Imports.clear()
      assert Imports.all() == []
    end

    test "a missing module is recorded; calling it fails then" do
      assert :ok = Imports.ensure_imported(:ep_no_such_module_xyz)
      assert Imports.imported?(:ep_no_such_module_xyz)

      assert {:error, %ErlangPython.Error{type: "ModuleNotFoundError"}} =
               ErlangPython.call(:ep_no_such_module_xyz, :f, [])
    end

    test "__main__ and bad names are refused" do
      assert {:error, :main_not_cacheable} = Imports.ensure_imported("__main__", :f)
      assert {:error, {:badarg, _}} = Imports.ensure_imported(42)
    end

    test "new contexts import the registered modules" do
      dir = module_dir("ep_ctx_import", "import sys\nLOADED_BY = 'context'\n")
      {:ok, nil} = ErlangPython.call(:sys, "path.append", [dir])
      :ok = Imports.ensure_imported(:ep_ctx_import)
      {:ok, nil} = ErlangPython.eval("__import__('sys').modules.pop('ep_ctx_import') and None")
      {:ok, _ctx} = ContextServer.start_link()
      assert {:ok, true} = ErlangPython.eval("'ep_ctx_import' in __import__('sys').modules")
    end

    test "init/0 reads the application environment" do
      dir = module_dir("ep_config_mod", "VALUE = 123\n")
      Application.put_env(:erlang_python, :imports, [{:base64, :b64encode}, :json])
      Application.put_env(:erlang_python, :paths, [dir])

      on_exit(fn ->
        Application.delete_env(:erlang_python, :imports)
        Application.delete_env(:erlang_python, :paths)
      end)

      assert :ok = Imports.init()
      assert {"base64", "b64encode"} in Imports.all()
      assert dir in Imports.paths()
      assert {:ok, 123} = ErlangPython.eval("__import__('ep_config_mod').VALUE")
    end
  end

  describe "paths" do
    test "add_path appends to sys.path once, in order, and records it" do
      a = module_dir("ep_path_a", "")
      b = module_dir("ep_path_b", "")
      :ok = Imports.add_paths([a, b])
      :ok = Imports.add_path(a)
      assert Imports.paths() == [a, b]
      assert Imports.path_added?(a)
      {:ok, path} = ErlangPython.eval("__import__('sys').path")
      assert Enum.count(path, &(&1 == a)) == 1
      assert Enum.find_index(path, &(&1 == a)) < Enum.find_index(path, &(&1 == b))
      :ok = Imports.clear_paths()
      assert Imports.paths() == []
      refute Imports.path_added?(a)
    end
  end

  describe "preload" do
    test "set, read, clear" do
      refute Preload.set?()
      assert Preload.code() == nil
      :ok = Preload.set(["X = ", "1"])
      assert Preload.code() == "X = 1"
      assert Preload.set?()
      :ok = Preload.clear()
      refute Preload.set?()
    end

    test "each new context runs it in its own namespace" do
      :ok =
        Preload.set(
          "import json\nCOUNTER = 0\ndef bump():\n    global COUNTER\n    COUNTER += 1\n    return COUNTER"
        )

      {:ok, a} = ContextServer.start_link()
      {:ok, b} = ContextServer.start_link()
      assert {:ok, 1} = ErlangPython.call(:__main__, :bump, [], context: a)
      assert {:ok, 2} = ErlangPython.call(:__main__, :bump, [], context: a)
      assert {:ok, 1} = ErlangPython.call(:__main__, :bump, [], context: b)
      assert {:ok, "[1]"} = ErlangPython.eval("json.dumps([1])", %{}, context: b)
    end

    test "clearing affects only contexts started afterwards" do
      :ok = Preload.set("PRELOADED = 42")
      {:ok, before} = ContextServer.start_link()
      :ok = Preload.clear()
      {:ok, later} = ContextServer.start_link()
      assert {:ok, 42} = ErlangPython.eval("PRELOADED", %{}, context: before)

      assert {:error, %ErlangPython.Error{type: "NameError"}} =
               ErlangPython.eval("PRELOADED", %{}, context: later)
    end

    test "preload that raises makes the start fail" do
      :ok = Preload.set("raise RuntimeError('bad preload')")
      Process.flag(:trap_exit, true)

      assert {:error, {:context_start_failed, %ErlangPython.Error{message: "bad preload"}}} =
               ContextServer.start_link()
    end
  end

  describe "Erlang facades" do
    test "py_import" do
      assert :ok = :py_import.ensure_imported(:json)
      assert :ok = :py_import.ensure_imported(:json, :dumps)
      assert {:error, :main_not_cacheable} = :py_import.ensure_imported(:__main__)
      assert :py_import.is_imported(:json) and :py_import.is_imported(:json, :dumps)
      assert {:ok, %{"json" => ["dumps"]}} = :py_import.import_list()
      assert {"json", :all} in :py_import.all_imports()
      dir = module_dir("ep_facade_path", "V = 5\n")
      assert :ok = :py_import.add_path(String.to_charlist(dir))
      assert :py_import.is_path_added(dir)
      assert [^dir] = :py_import.all_paths()
      assert {:ok, 5} = :py.eval("__import__('ep_facade_path').V")
      assert :ok = :py_import.clear_imports()
      assert :ok = :py_import.clear_paths()
      assert [] = :py_import.all_imports()
    end

    test "py_preload and a py_context that inherits it" do
      assert :undefined = :py_preload.get_code()
      refute :py_preload.has_preload()
      :ok = :py_preload.set_code("PRELOADED = 42")
      assert "PRELOADED = 42" = :py_preload.get_code()
      {:ok, ctx} = :py_context.new(%{mode: :worker})
      assert {:ok, 42} = :py.eval(ctx, "PRELOADED")
      :ok = :py.exec(ctx, "PRELOADED = 100")
      {:ok, other} = :py_context.new(%{})
      assert {:ok, 42} = :py.eval(other, "PRELOADED")
      :ok = :py_preload.clear_code()
      refute :py_preload.has_preload()
    end
  end
end
