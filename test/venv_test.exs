defmodule ErlangPython.VenvTest do
  # Changes sys.path for the whole interpreter: run alone.
  use ExUnit.Case, async: false

  import ErlangPython.TestHelpers

  @moduletag timeout: 180_000

  setup_all do
    dir = Path.join(System.tmp_dir!(), unique("erlang_python_venv"))
    File.rm_rf!(dir)
    File.mkdir_p!(dir)
    venv = Path.join(dir, "venv")
    {python, _version} = ErlangPython.Native.build_info()

    # Python cannot spawn processes inside the VM; Elixir can, through a port.
    {_, 0} = System.cmd(python, ["-m", "venv", venv], stderr_to_stdout: true)

    extra = Path.join(dir, "extra")
    File.mkdir_p!(extra)
    File.write!(Path.join(extra, "ep_extra_module.py"), "WHERE = 'found through a .pth file'\n")
    wheel = build_wheel(dir, extra)

    {output, status} =
      System.cmd(Path.join([venv, "bin", "pip"]), ["install", "--no-index", "--no-deps", wheel],
        stderr_to_stdout: true
      )

    assert status == 0, output

    on_exit(fn ->
      ErlangPython.deactivate_venv()
      File.rm_rf!(dir)
    end)

    %{venv: venv}
  end

  # Each test starts from the base interpreter.
  setup do
    :ok = ErlangPython.deactivate_venv()
  end

  test "a package installed in a venv is importable once it is active", %{venv: venv} do
    assert {:error, %ErlangPython.Error{type: "ModuleNotFoundError"}} =
             ErlangPython.eval("__import__('ep_wheel_pkg').VALUE")

    assert {:ok, info} = ErlangPython.activate_venv(venv)
    assert info["active"] == true
    assert info["path"] == venv
    assert {:ok, 42} = ErlangPython.eval("__import__('ep_wheel_pkg').VALUE")
    assert {:ok, ^venv} = ErlangPython.eval("__import__('sys').prefix")
    assert %{"active" => true, "site_packages" => site_packages} = ErlangPython.venv_info()
    assert {:ok, [^site_packages | _]} = ErlangPython.eval("__import__('sys').path")
  end

  test ".pth files in the venv are honoured", %{venv: venv} do
    {:ok, _} = ErlangPython.activate_venv(venv)

    assert {:ok, "found through a .pth file"} =
             ErlangPython.eval("__import__('ep_extra_module').WHERE")
  end

  test "the base interpreter's site-packages are hidden while a venv is active", %{venv: venv} do
    {:ok, base} = ErlangPython.eval("__import__('site').getsitepackages()")
    {:ok, _} = ErlangPython.activate_venv(venv)
    {:ok, path} = ErlangPython.eval("__import__('sys').path")
    assert Enum.all?(base, &(&1 not in path))
  end

  test "deactivating restores sys.path and sys.prefix", %{venv: venv} do
    {:ok, before} = ErlangPython.eval("(list(__import__('sys').path), __import__('sys').prefix)")
    {:ok, _} = ErlangPython.activate_venv(venv)
    assert :ok = ErlangPython.deactivate_venv()

    assert {:ok, ^before} =
             ErlangPython.eval("(list(__import__('sys').path), __import__('sys').prefix)")

    assert %{"active" => false} = ErlangPython.venv_info()
  end

  test "a path that is not a venv is refused" do
    assert {:error, {:invalid_venv, "/tmp"}} = ErlangPython.activate_venv("/tmp")
    assert {:error, {:invalid_venv, 42}} = ErlangPython.activate_venv(42)
  end

  describe "ensure/3" do
    # Each creates venvs and runs pip in them: seconds apiece.
    @describetag :slow

    setup do
      dir = Path.join(System.tmp_dir!(), unique("ep_ensure"))
      File.mkdir_p!(dir)
      on_exit(fn -> File.rm_rf!(dir) end)
      %{dir: dir}
    end

    test "creates the venv, installs the requirements, activates it; then uses the cache",
         %{dir: dir} do
      wheel = build_wheel(dir, dir, "ep_ensure_a")
      requirements = Path.join(dir, "requirements.txt")
      File.write!(requirements, "# local wheel\n#{wheel}\n")
      venv = Path.join(dir, "venv'q$x")

      assert {:ok, %{"active" => true, "venv_path" => ^venv}} =
               ErlangPython.Venv.ensure(venv, requirements, installer: :pip)

      assert File.regular?(Path.join(venv, "pyvenv.cfg"))
      assert {:ok, 42} = ErlangPython.eval("__import__('ep_ensure_a').VALUE")

      # Unchanged requirements install nothing: the wheel may even be gone.
      :ok = ErlangPython.deactivate_venv()
      File.rm!(wheel)
      assert :ok = :py.ensure_venv(venv, requirements, [{:installer, :pip}])
      assert %{"active" => true} = ErlangPython.venv_info()

      # Changed requirements install what is new, in the same venv.
      File.write!(Path.join(venv, "kept"), "")
      wheel_b = build_wheel(dir, dir, "ep_ensure_b")
      File.write!(requirements, "#{wheel_b}\n")
      assert {:ok, _} = ErlangPython.Venv.ensure(venv, requirements, installer: :pip)
      assert {:ok, 42} = ErlangPython.eval("__import__('ep_ensure_b').VALUE")
      assert File.exists?(Path.join(venv, "kept"))

      # force: a new venv.
      assert {:ok, _} = ErlangPython.Venv.ensure(venv, requirements, installer: :pip, force: true)
      refute File.exists?(Path.join(venv, "kept"))
    end

    test "errors: missing requirements, a failing install, a bad installer", %{dir: dir} do
      assert {:error, {:requirements_not_found, _}} =
               ErlangPython.Venv.ensure(Path.join(dir, "v"), Path.join(dir, "nope.txt"))

      requirements = Path.join(dir, "requirements.txt")
      File.write!(requirements, "#{Path.join(dir, "missing-0.1-py3-none-any.whl")}\n")

      assert {:error, {:command_failed, [_pip | _], status, output}} =
               ErlangPython.Venv.ensure(Path.join(dir, "v"), requirements, installer: :pip)

      assert is_integer(status) and output != ""

      assert {:error, {:badarg, _}} =
               ErlangPython.Venv.ensure(Path.join(dir, "v"), requirements, installer: :conda)

      assert {:error, {:requirements_not_found, _}} =
               :py.ensure_venv(Path.join(dir, "v"), "/nonexistent.txt")
    end
  end

  test "a bare site directory activates; venv_info names it" do
    dir = Path.join(System.tmp_dir!(), unique("ep_bare_site"))
    {:ok, version} = ErlangPython.eval("'python%d.%d' % __import__('sys').version_info[:2]")
    site = Path.join([dir, "lib", version, "site-packages"])
    File.mkdir_p!(site)
    on_exit(fn -> File.rm_rf!(dir) end)

    assert :ok = :py.activate_venv(dir)

    assert {:ok,
            %{
              "active" => true,
              "venv_path" => ^dir,
              "site_packages" => ^site,
              "sys_path" => [^site | _]
            }} = :py.venv_info()

    assert :ok = :py.deactivate_venv()
    assert {:ok, %{"active" => false}} = :py.venv_info()
    assert {:error, {:invalid_venv, "/nonexistent/path"}} = :py.activate_venv("/nonexistent/path")
  end

  # A minimal wheel with a .pth file.
  defp build_wheel(dir, extra, name \\ "ep_wheel_pkg") do
    pth = {"#{name}_extra.pth", extra <> "\n"}
    ErlangPython.LocalWheel.build(dir, name, "0.1", "42", [pth])
  end
end
