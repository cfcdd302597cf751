defmodule Mix.Tasks.Compile.ErlangPythonNif do
  @shortdoc "Builds the erlang_python NIF with cargo"
  @moduledoc """
  Builds or fetches the erlang_python NIF and installs it into `priv/native/`
  under its rustler_precompiled-style name.

  From source (`cargo build --release` of `native/erlang_python_nif`) when
  `ERLANG_PYTHON_BUILD` is `1`/`true` or the version is a `-dev` version;
  otherwise the precompiled artifact for this target and Python version is
  taken from the cache or downloaded and verified against the checksum file
  (see `ErlangPython.Build.Precompiled`). `ERLANG_PYTHON_BUILD=0` forces the
  precompiled path. When no artifact exists for this combination, it falls
  back to building from source.

  The Python the NIF embeds is `ERLANG_PYTHON_PYTHON` when set, else `python3`
  on `PATH`; it is passed to PyO3 as `PYO3_PYTHON`, and the library records an
  rpath to that Python's library directory.

  In the `:test` environment the crate's `diagnostics` feature is enabled
  (a request that panics on purpose, for the test suite), in a target
  directory of its own; no other build ever has it.

  Cargo runs only when an input changed (crate sources, manifests, the chosen
  Python, the package version, the environment's features), when the
  installed library is not the one this task installed (another build
  replaced it), or with `--force`.
  """
  use Mix.Task.Compiler

  alias ErlangPython.Build.Artifact

  @manifest "compile.erlang_python_nif"

  @impl Mix.Task.Compiler
  def run(args) do
    config = Mix.Project.config()
    version = Keyword.fetch!(config, :version)
    destination = Path.join([Artifact.priv_dir(), "native", Artifact.lib_filename(version)])
    python = python!()
    features = features(Mix.env())
    fingerprint = fingerprint(python, version, features)
    manifest = Path.join(Mix.Project.manifest_path(config), @manifest)

    status =
      if "--force" not in args and read_manifest(manifest) == {fingerprint, stamp(destination)} do
        :noop
      else
        install!(build_mode(version), python, version, destination, features)
        File.mkdir_p!(Path.dirname(manifest))
        File.write!(manifest, :erlang.term_to_binary({fingerprint, stamp(destination)}))
        :ok
      end

    Mix.Project.build_structure(config)
    {status, []}
  end

  @impl Mix.Task.Compiler
  def manifests, do: [Path.join(Mix.Project.manifest_path(), @manifest)]

  @impl Mix.Task.Compiler
  def clean do
    File.rm_rf!(Path.join(Artifact.priv_dir(), "native"))
    Enum.each(manifests(), &File.rm/1)
  end

  @doc false
  def python! do
    candidate = System.get_env("ERLANG_PYTHON_PYTHON") || "python3"

    System.find_executable(candidate) ||
      Mix.raise("""
      erlang_python: no Python interpreter found (looked for #{inspect(candidate)}).
      Install Python 3.9+ built with a shared libpython, or point
      ERLANG_PYTHON_PYTHON at one.
      """)
  end

  @doc false
  def build_mode(version) do
    case System.get_env("ERLANG_PYTHON_BUILD") do
      value when value in ["1", "true"] -> :source
      value when value in ["0", "false"] -> :precompiled
      _ -> if String.contains?(version, "-dev"), do: :source, else: :precompiled
    end
  end

  @doc false
  # Cargo features of the NIF for a Mix environment.
  def features(:test), do: ["diagnostics"]
  def features(_env), do: []

  defp install!(:source, python, _version, destination, features),
    do: build!(python, destination, features)

  # Precompiled artifacts are release builds: environments that need
  # features build from source.
  defp install!(:precompiled, python, _version, destination, [_ | _] = features),
    do: build!(python, destination, features)

  defp install!(:precompiled, python, version, destination, []) do
    minor = python_minor!(python)

    case ErlangPython.Build.Precompiled.fetch(destination, version: version, python_minor: minor) do
      :ok ->
        Mix.shell().info(
          "erlang_python: installed the verified precompiled NIF for Python #{minor}"
        )

      {:error, {:not_found, url}} ->
        Mix.shell().info(
          "erlang_python: no precompiled NIF at #{url} for this target and Python #{minor}; building from source"
        )

        build!(python, destination)

      {:error, {:download_failed, url, reason}} ->
        Mix.shell().info(
          "erlang_python: could not download #{url} (#{inspect(reason)}); building from source"
        )

        build!(python, destination)
    end
  end

  @doc false
  def python_minor!(python) do
    {minor, 0} =
      System.cmd(python, ["-c", "import sys; print('%d.%d' % sys.version_info[:2], end='')"])

    minor
  end

  @doc """
  Builds the NIF with cargo (release profile, `features` enabled) and
  installs it at `destination`.
  """
  def build!(python, destination, features \\ []) do
    cargo =
      System.find_executable("cargo") ||
        Mix.raise(
          "erlang_python: cargo not found; install Rust (https://rustup.rs) to build the NIF."
        )

    crate_dir = Artifact.crate_dir()

    # A build with features gets its own target directory, so switching
    # between environments does not rebuild the crate each time.
    target_dir =
      case features do
        [] -> Path.join(crate_dir, "target")
        _ -> Path.join([crate_dir, "target", Enum.join(features, "+")])
      end

    feature_args = if features == [], do: [], else: ["--features", Enum.join(features, ",")]

    Mix.shell().info(
      "Compiling NIF crate #{Artifact.crate()} (cargo build --release#{Enum.map_join(feature_args, &(" " <> &1))}, Python: #{python})"
    )

    {_, status} =
      System.cmd(
        cargo,
        ["build", "--release", "--manifest-path", Path.join(crate_dir, "Cargo.toml")] ++
          ["--target-dir", target_dir | feature_args],
        env: [{"PYO3_PYTHON", python}],
        into: IO.stream(:stdio, :line),
        stderr_to_stdout: true
      )

    if status != 0 do
      Mix.raise("erlang_python: cargo build failed with exit status #{status}")
    end

    built = Path.join([target_dir, "release", "lib#{Artifact.crate()}.so"])
    File.mkdir_p!(Path.dirname(destination))
    # Copy to a temporary name and rename, so a running VM that has the old
    # file mapped is never handed a half-written library.
    tmp = destination <> ".tmp"
    File.cp!(built, tmp)
    File.rename!(tmp, destination)
    install_worker!(Path.join([target_dir, "release", "erlang_python_worker"]), destination)
  end

  # Isolated contexts' worker executable (the crate's `erlang_python_worker`
  # binary), next to the NIF; replaced the same way, since a running
  # context may have the old one open.
  defp install_worker!(built, nif_destination) do
    destination = Path.join(Path.dirname(nif_destination), "erlang_python_worker")
    tmp = destination <> ".tmp"
    File.cp!(built, tmp)
    File.chmod!(tmp, 0o755)
    File.rename!(tmp, destination)
  end

  defp fingerprint(python, version, features) do
    crate_dir = Artifact.crate_dir()

    inputs =
      [
        Path.join(crate_dir, "Cargo.toml"),
        Path.join(crate_dir, "Cargo.lock"),
        Path.join(crate_dir, "build.rs")
      ] ++
        Path.wildcard(Path.join(crate_dir, "src/**/*.rs")) ++
        Path.wildcard(Path.join(crate_dir, "worker/**/*.rs"))

    stamps =
      for path <- Enum.sort(inputs), File.exists?(path) do
        %File.Stat{mtime: mtime, size: size} = File.stat!(path)
        {path, mtime, size}
      end

    {stamps, python, version, features, System.get_env("ERLANG_PYTHON_PYTHON"), build_mode(version),
     System.get_env("ERLANG_PYTHON_BASE_URL")}
  end

  # The installed library as this task left it: another build (another
  # environment, a project depending on this checkout) may replace it.
  defp stamp(path) do
    case File.stat(path) do
      {:ok, %File.Stat{mtime: mtime, size: size, inode: inode}} -> {mtime, size, inode}
      {:error, _} -> nil
    end
  end

  defp read_manifest(path) do
    case File.read(path) do
      {:ok, binary} -> :erlang.binary_to_term(binary)
      _ -> nil
    end
  rescue
    ArgumentError -> nil
  end
end
