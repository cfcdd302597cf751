defmodule ErlangPython.PythonDepsTest do
  # Installs into erlang_python's own build directory and activates a venv
  # for the whole interpreter: runs alone.
  use ExUnit.Case, async: false

  import ErlangPython.TestHelpers
  import ExUnit.CaptureLog

  alias ErlangPython.{Deps, LocalWheel}

  @moduletag timeout: 300_000

  setup do
    dir = Path.join(System.tmp_dir!(), unique("ep_deps"))
    File.mkdir_p!(dir)
    saved = Application.get_all_env(:erlang_python)

    on_exit(fn ->
      ErlangPython.deactivate_venv()

      for key <- [:python_deps, :python_deps_installer],
          do: Application.delete_env(:erlang_python, key)

      for {key, value} <- saved, do: Application.put_env(:erlang_python, key, value)
      File.rm_rf!(dir)
    end)

    {python, _} = ErlangPython.Native.build_info()
    %{dir: dir, python: python}
  end

  describe "spec/1" do
    test "a list of requirements, a pyproject body, or nothing" do
      assert Deps.spec([]) == nil
      assert Deps.spec(python_deps: []) == nil
      assert Deps.spec(python_deps: ["numpy==2.4.6"]) == {:requirements, ["numpy==2.4.6"]}
      assert Deps.spec(python_deps: [pyproject: "[project]"]) == {:pyproject, "[project]"}
    end

    test "anything else is refused with a clear error" do
      for bad <- [:numpy, ["numpy", :pandas], [""], "numpy", [pyproject: 1]] do
        assert_raise ArgumentError, ~r/:python_deps must be a list of requirement strings/, fn ->
          Deps.spec(python_deps: bad)
        end
      end
    end
  end

  describe "install/3" do
    test "installs path dependencies with pip, once per spec; a new spec replaces the environment",
         %{dir: dir, python: python} do
      env = Path.join(dir, "env")
      v1 = LocalWheel.build(Path.join(dir, "v1"), "ep_deps_pkg", "0.1", "1")
      spec = {:requirements, ["ep_deps_pkg @ file://#{v1}"]}

      assert {:ok, :installed} = Deps.install(spec, env, python: python, installer: :pip)
      assert File.exists?(Path.join(env, Deps.stamp_file()))
      assert [_] = Path.wildcard(Path.join(env, "lib/python*/site-packages/ep_deps_pkg"))

      # Unchanged: nothing runs (without pip, an install would fail).
      File.rm!(Path.join([env, "bin", "pip"]))
      assert {:ok, :unchanged} = Deps.install(spec, env, python: python, installer: :pip)

      v2 = LocalWheel.build(Path.join(dir, "v2"), "ep_deps_other", "0.2", "2")
      spec = {:requirements, ["ep_deps_other @ file://#{v2}"]}
      assert {:ok, :installed} = Deps.install(spec, env, python: python, installer: :pip)
      assert [_] = Path.wildcard(Path.join(env, "lib/python*/site-packages/ep_deps_other"))
      assert [] = Path.wildcard(Path.join(env, "lib/python*/site-packages/ep_deps_pkg"))
    end

    test "a pyproject.toml body installs its [project] dependencies", %{dir: dir, python: python} do
      wheel = LocalWheel.build(Path.join(dir, "w"), "ep_deps_toml", "0.1", "7")

      body = """
      [project]
      name = "my_app"
      version = "0.1.0"
      dependencies = ["ep_deps_toml @ file://#{wheel}"]
      """

      env = Path.join(dir, "env")

      assert {:ok, :installed} =
               Deps.install({:pyproject, body}, env, python: python, installer: :pip)

      assert [_] = Path.wildcard(Path.join(env, "lib/python*/site-packages/ep_deps_toml"))

      assert {:error, {:invalid_pyproject, message}} =
               Deps.install({:pyproject, "[project"}, Path.join(dir, "bad"),
                 python: python,
                 installer: :pip
               )

      assert message =~ "TOML"
    end

    test "a failing installer is an error with its output", %{dir: dir, python: python} do
      spec = {:requirements, ["ep_deps_missing @ file://#{dir}/nowhere.whl"]}

      assert {:error, {:command_failed, [_pip, "install" | _], status, output}} =
               Deps.install(spec, Path.join(dir, "env"), python: python, installer: :pip)

      # pip's own words differ between versions; it says something.
      assert status != 0 and String.trim(output) != ""
    end
  end

  describe "compile time and start" do
    test "the compiler installs the configured deps, then does nothing; activate/1 makes them importable",
         %{dir: dir} do
      wheel = LocalWheel.build(dir, "ep_deps_app", "0.1", "42")
      Application.put_env(:erlang_python, :python_deps, ["ep_deps_app @ file://#{wheel}"])
      Application.put_env(:erlang_python, :python_deps_installer, :pip)
      env = Mix.Tasks.Compile.ErlangPythonDeps.env_dir()
      assert env == Deps.env_dir()
      on_exit(fn -> File.rm_rf!(env) end)

      assert {:error, %ErlangPython.Error{type: "ModuleNotFoundError"}} =
               ErlangPython.eval("__import__('ep_deps_app').VALUE")

      log =
        capture_log(fn -> assert {:error, {:python_deps_not_installed, _}} = Deps.activate() end)

      assert log =~ "mix erlang_python.deps"

      ExUnit.CaptureIO.capture_io(fn ->
        assert {:ok, []} = Mix.Tasks.Compile.ErlangPythonDeps.run([])
      end)

      assert {:noop, []} = Mix.Tasks.Compile.ErlangPythonDeps.run([])

      assert :ok = Deps.activate()
      assert {:ok, 42} = ErlangPython.eval("__import__('ep_deps_app').VALUE")
      assert %{"active" => true, "path" => ^env} = ErlangPython.Venv.info()

      # A config that no longer matches what is installed is reported.
      Application.put_env(:erlang_python, :python_deps, ["something-else"])
      log = capture_log(fn -> assert {:error, {:python_deps_stale, _}} = Deps.activate() end)
      assert log =~ "other dependencies than config declares"
    end

    test "the release step copies the environment into the release", %{dir: dir} do
      app_dir = Path.join(dir, "build/lib/erlang_python")
      File.mkdir_p!(Path.join(app_dir, "python_env/lib"))
      File.write!(Path.join(app_dir, "python_env/lib/marker"), "here")
      release_path = Path.join(dir, "rel")

      release = %{
        path: release_path,
        applications: %{erlang_python: [path: String.to_charlist(app_dir), vsn: ~c"1.2.3"]}
      }

      # Nothing declared: nothing copied.
      Application.delete_env(:erlang_python, :python_deps)
      assert Deps.copy_to_release(release) == release
      refute File.exists?(Path.join(release_path, "lib"))

      Application.put_env(:erlang_python, :python_deps, ["numpy"])
      assert Deps.copy_to_release(release) == release

      assert File.read!(Path.join(release_path, "lib/erlang_python-1.2.3/python_env/lib/marker")) ==
               "here"

      File.rm_rf!(Path.join(app_dir, "python_env"))

      assert_raise RuntimeError, ~r/not installed/, fn -> Deps.copy_to_release(release) end
    end
  end

  @tag :slow
  test "with :uv and no uv on the PATH, uv comes from PyPI into a tool venv and installs", %{
    dir: dir,
    python: python
  } do
    wheel = LocalWheel.build(dir, "ep_deps_uv", "0.1", "5")
    env = Path.join(dir, "env")

    assert {:ok, :installed} =
             Deps.install({:requirements, ["ep_deps_uv @ file://#{wheel}"]}, env,
               python: python,
               installer: :uv
             )

    assert [_] = Path.wildcard(Path.join(env, "lib/python*/site-packages/ep_deps_uv"))
  end
end
