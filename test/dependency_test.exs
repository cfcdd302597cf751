defmodule ErlangPython.DependencyTest do
  # Builds a fresh Mix project that depends on this package: minutes, not
  # seconds, and it rewrites priv/native (atomically), so it runs alone, in
  # bin/test's step for slow tests.
  use ExUnit.Case, async: false

  import ErlangPython.TestHelpers

  alias ErlangPython.ArtifactServer
  alias ErlangPython.Build.Precompiled

  @moduletag :slow
  @moduletag timeout: 600_000
  @root Path.expand("..", __DIR__)

  setup_all do
    project = Path.join(System.tmp_dir!(), unique("ep_dependent"))
    # A fresh project every run (names repeat across runs).
    File.rm_rf!(project)
    File.mkdir_p!(Path.join(project, "lib"))
    on_exit(fn -> File.rm_rf!(project) end)

    File.write!(Path.join(project, "mix.exs"), """
    defmodule Dependent.MixProject do
      use Mix.Project

      def project do
        [app: :dependent, version: "0.1.0", deps: [{:erlang_python, path: #{inspect(@root)}}]]
      end

      def application, do: [extra_applications: [:logger]]
    end
    """)

    # The interpreter starts lazily here, at the first call.
    File.mkdir_p!(Path.join(project, "config"))

    File.write!(
      Path.join(project, "config/config.exs"),
      "import Config\nconfig :erlang_python, start: :lazy\n"
    )

    File.write!(Path.join(project, "lib/dependent.ex"), """
    defmodule Dependent do
      def answer, do: ErlangPython.eval!("6 * 7")
    end
    """)

    %{project: project}
  end

  defp mix(project, args, env \\ []) do
    System.cmd("mix", args, cd: project, env: [{"MIX_ENV", "dev"} | env], stderr_to_stdout: true)
  end

  test "a project depending on erlang_python by path compiles and calls Python", %{project: project} do
    {output, status} = mix(project, ["compile"])
    assert status == 0, output
    assert output =~ "Compiling NIF crate erlang_python_nif"

    # Nothing changed: cargo is not run again.
    {output, 0} = mix(project, ["compile"])
    refute output =~ "Compiling NIF crate"

    script =
      "IO.inspect({ErlangPython.Native.started(), Dependent.answer(), ErlangPython.Native.started()})"

    {output, status} = mix(project, ["run", "-e", script])
    assert status == 0, output
    # start: :lazy: not running before the first call, running after it.
    assert output =~ "{false, 42, true}"
  end

  test "with precompiled NIFs: a served artifact is verified, installed and loaded", %{
    project: project
  } do
    root = Path.join(System.tmp_dir!(), unique("ep_served"))
    File.rm_rf!(root)
    on_exit(fn -> File.rm_rf!(root) end)
    served = Path.join(root, "served")
    File.mkdir_p!(served)
    {server, url} = ArtifactServer.start(served)
    on_exit(fn -> ArtifactServer.stop(server) end)

    # The artifact and its checksum entry come from the project's own
    # tooling, for the running Python: what a release would publish for it.
    version = Mix.Project.config()[:version]
    {_python, minor} = ErlangPython.Native.build_info()
    name = Precompiled.artifact_name(version, minor)
    checksum_file = Path.join(root, "checksums.exs")

    {output, status} =
      System.cmd("mix", ["erlang_python.checksum"],
        cd: @root,
        env: [{"MIX_ENV", "test"}, {"ERLANG_PYTHON_CHECKSUM_FILE", checksum_file}],
        stderr_to_stdout: true
      )

    assert status == 0, output
    File.cp!(Path.join([@root, "_build", "precompiled", name]), Path.join(served, name))
    assert %{^name => "sha256:" <> _} = Precompiled.read_checksums(checksum_file)

    env = [
      {"ERLANG_PYTHON_BUILD", "0"},
      {"ERLANG_PYTHON_BASE_URL", url},
      {"ERLANG_PYTHON_CHECKSUM_FILE", checksum_file},
      {"ERLANG_PYTHON_CACHE_DIR", Path.join(root, "cache")}
    ]

    {output, status} = mix(project, ["compile"], env)
    assert status == 0, output
    assert output =~ "installed the verified precompiled NIF"
    refute output =~ "Compiling NIF crate"

    {output, status} = mix(project, ["run", "-e", "IO.inspect(Dependent.answer())"], env)
    assert status == 0, output
    assert output =~ "42"

    # No artifact for this combination on the server: a clear message, then
    # a build from source.
    File.rm!(Path.join(served, name))
    File.rm_rf!(Path.join(root, "cache"))
    {output, status} = mix(project, ["deps.compile", "erlang_python", "--force"], env)
    assert status == 0, output
    assert output =~ "no precompiled NIF at #{url}/#{name}"
    assert output =~ "building from source"
  end

  test "Python deps in the dependent project's config: installed by mix compile, active at start",
       %{
         project: project
       } do
    # A project of its own: its config declares a package (a local wheel,
    # so no index is needed).
    deps_project = project <> "_pydeps"
    File.rm_rf!(deps_project)
    File.mkdir_p!(Path.join(deps_project, "config"))
    on_exit(fn -> File.rm_rf!(deps_project) end)
    File.cp!(Path.join(project, "mix.exs"), Path.join(deps_project, "mix.exs"))
    File.cp_r!(Path.join(project, "lib"), Path.join(deps_project, "lib"))

    wheel =
      ErlangPython.LocalWheel.build(Path.join(deps_project, "wheels"), "ep_dep_e2e", "0.1", "99")

    File.write!(Path.join(deps_project, "config/config.exs"), """
    import Config
    config :erlang_python, start: :lazy
    config :erlang_python, :python_deps, ["ep_dep_e2e @ file://#{wheel}"]
    config :erlang_python, python_deps_installer: :pip
    """)

    {output, status} = mix(deps_project, ["compile"])
    assert status == 0, output
    assert output =~ "installed the Python dependencies"

    {output, status} = mix(deps_project, ["erlang_python.deps", "--path"])
    assert status == 0, output
    env = output |> String.split("\n", trim: true) |> List.last()
    assert env == Path.join(deps_project, "_build/dev/lib/erlang_python/python_env")
    assert File.exists?(Path.join(env, ErlangPython.Deps.stamp_file()))

    # Unchanged: nothing is installed again.
    {output, 0} = mix(deps_project, ["erlang_python.deps"])
    refute output =~ "installed the Python dependencies"

    {output, status} =
      mix(deps_project, [
        "run",
        "-e",
        "IO.inspect(ErlangPython.eval!(\"__import__('ep_dep_e2e').VALUE\"))"
      ])

    assert status == 0, output
    assert output =~ ~r/^99$/m
  end
end
