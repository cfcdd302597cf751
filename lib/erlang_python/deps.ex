defmodule ErlangPython.Deps do
  @moduledoc """
  Python dependencies declared in the application's config, installed at
  compile time into a project-local environment and activated at start.

      # config/config.exs
      config :erlang_python, :python_deps, ["numpy==2.4.6", "scikit-learn>=1.6"]

      # or a pyproject.toml body (its [project] dependencies are installed)
      config :erlang_python, :python_deps,
        pyproject: \"\"\"
        [project]
        name = "my_app"
        version = "0.1.0"
        dependencies = ["numpy==2.4.6"]
        \"\"\"

  `mix compile` installs them (erlang_python's `:erlang_python_deps`
  compiler; `mix erlang_python.deps` does it on demand) into
  `_build/<env>/lib/erlang_python/python_env`, a venv made with the Python
  the NIF is built for, by `uv` or `pip` (see "Options"). A hash of the
  requirements, the Python and the installer is kept next to it: while they
  are unchanged, compiling again installs nothing. At start, the
  application activates that venv (`ErlangPython.Venv.activate/1`) before
  any other Python code runs. `copy_to_release/1` is the release step that
  puts it into a release.

  ## Options

  Also under `config :erlang_python`:

    * `:python_deps_installer` - `:uv` or `:pip`. Default: `:uv` when `uv`
      is on the `PATH`, else `:pip`. With `:uv` and no `uv` on the `PATH`,
      uv is installed from PyPI into a tool venv in the user's cache
      (`~/.cache/erlang_python/tools/uv`) first.
    * `:python_deps_timeout` - milliseconds each installer command may take
      (default 600_000).

  Requirement strings are pip's: versions (`"numpy==2.4.6"`), extras,
  markers, and path dependencies (`"my_lib @ file:///abs/path/my_lib"`,
  a wheel file, or a directory with a `pyproject.toml`; see the deployment
  guide).
  """

  require Logger

  @stamp ".erlang_python_deps"

  @typedoc "Declared dependencies, normalised."
  @type spec :: {:requirements, [String.t()]} | {:pyproject, String.t()}

  @doc """
  The declared dependencies in `config` (default: erlang_python's
  application environment), or `nil` when none are declared. Raises
  `ArgumentError` for a value of the wrong shape.
  """
  @spec spec(keyword()) :: spec() | nil
  def spec(config \\ Application.get_all_env(:erlang_python)) do
    case Keyword.get(config, :python_deps) do
      nil ->
        nil

      [] ->
        nil

      [pyproject: body] when is_binary(body) ->
        {:pyproject, body}

      requirements when is_list(requirements) ->
        if Enum.all?(requirements, &(is_binary(&1) and String.trim(&1) != "")) do
          {:requirements, requirements}
        else
          bad!(requirements)
        end

      other ->
        bad!(other)
    end
  end

  defp bad!(value) do
    raise ArgumentError,
          "config :erlang_python, :python_deps must be a list of requirement strings " <>
            "or [pyproject: toml_body], got: #{inspect(value)}"
  end

  @doc """
  A hash of what determines the environment's contents: the spec and the
  installer. The Python is part of the installed stamp, not of this hash,
  so a release started on another machine compares specs only.
  """
  @spec digest(spec(), :uv | :pip) :: String.t()
  def digest(spec, installer) do
    :crypto.hash(:sha256, :erlang.term_to_binary({spec, installer}))
    |> Base.encode16(case: :lower)
  end

  @doc "Where the environment is at run time: erlang_python's app directory."
  @spec env_dir() :: Path.t()
  def env_dir, do: Application.app_dir(:erlang_python, "python_env")

  @doc """
  Installs `spec` into the venv at `dir` unless the stamp there says it
  already holds it; returns `{:ok, :installed | :unchanged}` or an error
  from `ErlangPython.Venv.install/3`.

  Options: `:python` (required: the interpreter the NIF embeds),
  `:installer`, `:uv`, `:timeout`.
  """
  @spec install(spec(), Path.t(), keyword()) ::
          {:ok, :installed | :unchanged} | {:error, term()}
  def install(spec, dir, opts) do
    opts = Keyword.validate!(opts, [:python, :installer, :uv, timeout: 600_000])
    python = opts[:python] || raise ArgumentError, ":python is required"
    installer = opts[:installer] || default_installer()
    digest = digest(spec, installer)
    stamp = Path.join(dir, @stamp)
    wanted = stamp_text(digest, python)

    if File.read(stamp) == {:ok, wanted} do
      {:ok, :unchanged}
    else
      with {:ok, requirements} <- requirements(spec, python),
           {:ok, uv} <- uv(installer, opts[:uv], python, opts[:timeout]) do
        file = Path.join(Path.dirname(dir), "python_env.requirements.txt")
        File.mkdir_p!(Path.dirname(file))
        File.write!(file, Enum.map_join(requirements, "", &(&1 <> "\n")))

        # A changed spec starts from a fresh venv, so removed packages go.
        result =
          ErlangPython.Venv.install(dir, file,
            python: python,
            installer: installer,
            uv: uv,
            force: File.exists?(dir),
            timeout: opts[:timeout]
          )

        with :ok <- result do
          File.write!(stamp, wanted)
          {:ok, :installed}
        end
      end
    end
  end

  # The stamp holds the spec's digest on its first line (what activate/0
  # compares) and the Python it was installed for on the second.
  defp stamp_text(digest, python), do: "#{digest}\n#{python}\n"

  defp default_installer, do: if(System.find_executable("uv"), do: :uv, else: :pip)

  defp requirements({:requirements, list}, _python), do: {:ok, list}

  # A pyproject.toml's [project] dependencies, read with the Python's own
  # tomllib (Python 3.11+), so pip and uv install the same list.
  defp requirements({:pyproject, body}, python) do
    code = """
    import sys, tomllib
    with open(sys.argv[1], "rb") as f:
        project = tomllib.load(f).get("project", {})
    for requirement in project.get("dependencies", []):
        print(requirement)
    """

    tmp =
      Path.join(System.tmp_dir!(), "erlang_python_pyproject_#{System.unique_integer([:positive])}")

    File.write!(tmp, body)

    try do
      case System.cmd(python, ["-c", code, tmp], stderr_to_stdout: true) do
        {lines, 0} -> {:ok, String.split(lines, "\n", trim: true)}
        {output, _} -> {:error, {:invalid_pyproject, String.trim(output)}}
      end
    after
      File.rm(tmp)
    end
  end

  @doc false
  # The uv executable: on the PATH, given, or installed into a tool venv.
  def uv(:pip, _given, _python, _timeout), do: {:ok, nil}
  def uv(:uv, given, _python, _timeout) when is_binary(given), do: {:ok, given}

  def uv(:uv, nil, python, timeout) do
    case System.find_executable("uv") do
      nil -> uv_tool(python, timeout)
      uv -> {:ok, uv}
    end
  end

  defp uv_tool(python, timeout) do
    home = System.get_env("XDG_CACHE_HOME") || Path.join(System.user_home!(), ".cache")
    tool = Path.join([home, "erlang_python", "tools", "uv"])
    uv = Path.join([tool, "bin", "uv"])
    requirements = tool <> ".requirements.txt"

    if File.regular?(uv) do
      {:ok, uv}
    else
      File.mkdir_p!(Path.dirname(tool))
      File.write!(requirements, "uv\n")

      with :ok <-
             ErlangPython.Venv.install(tool, requirements,
               python: python,
               installer: :pip,
               timeout: timeout
             ),
           do: {:ok, uv}
    end
  end

  @doc """
  Activates the environment of the declared dependencies, if any are
  declared; the application calls it at start. Logs a warning when the
  environment is missing or holds another spec (run `mix
  erlang_python.deps`), and leaves the interpreter as it is then.
  """
  @spec activate(keyword()) :: :ok | {:error, term()}
  def activate(config \\ Application.get_all_env(:erlang_python)) do
    case spec(config) do
      nil -> :ok
      spec -> activate(spec, env_dir(), config[:python_deps_installer])
    end
  end

  defp activate(spec, dir, installer) do
    installed = File.read(Path.join(dir, @stamp))

    installed_digest =
      case installed do
        {:ok, text} -> text |> String.split("\n") |> hd()
        _ -> nil
      end

    cond do
      installed_digest == nil ->
        Logger.warning(
          "erlang_python: Python dependencies are declared in config but not installed " <>
            "at #{dir}: run `mix erlang_python.deps` (or `mix compile`)"
        )

        {:error, {:python_deps_not_installed, dir}}

      installed_digest not in for(i <- installers(installer), do: digest(spec, i)) ->
        Logger.warning(
          "erlang_python: the Python environment at #{dir} was installed for other " <>
            "dependencies than config declares: run `mix erlang_python.deps`"
        )

        {:error, {:python_deps_stale, dir}}

      true ->
        with {:ok, _info} <- ErlangPython.Venv.activate(dir), do: :ok
    end
  end

  # The installer is chosen at compile time when not configured.
  defp installers(nil), do: [:uv, :pip]
  defp installers(installer), do: [installer]

  @doc """
  A release step that copies the installed environment into the release,
  where `activate/1` finds it:

      releases: [
        my_app: [steps: [:assemble, &ErlangPython.Deps.copy_to_release/1]]
      ]

  (Before `:tar` when there is one.) Does nothing when no dependencies are
  declared; raises when they are but are not installed.
  """
  @spec copy_to_release(struct()) :: struct()
  def copy_to_release(%{path: path, applications: applications} = release) do
    app = Map.fetch!(applications, :erlang_python)
    source = Path.join(to_string(app[:path]), "python_env")

    cond do
      spec() == nil ->
        release

      not File.dir?(source) ->
        raise "erlang_python: Python dependencies are declared but not installed at " <>
                "#{source}: run `mix erlang_python.deps` before the release"

      true ->
        target = Path.join([path, "lib", "erlang_python-#{app[:vsn]}", "python_env"])
        File.rm_rf!(target)
        File.mkdir_p!(Path.dirname(target))
        {:ok, _} = File.cp_r(source, target)
        release
    end
  end

  @doc false
  def stamp_file, do: @stamp
end
