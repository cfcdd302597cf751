defmodule Mix.Tasks.ErlangPython.Checksum do
  @shortdoc "Builds the precompiled NIF artifact and (re)writes the checksum file"
  @moduledoc """
  Builds the NIF from source for this machine's target and Python, packs it
  with isolated contexts' worker executable as a precompiled artifact (`<library>--py<major>.<minor>.so.tar.gz`) into
  `_build/precompiled/`, and rewrites `checksum-Elixir.ErlangPython.Native.exs`
  with the SHA-256 of every artifact in that directory, sorted, as
  rustler_precompiled writes it. Entries already in the file for artifacts
  not built here (other targets, other Pythons) are kept.

      mix erlang_python.checksum
      ERLANG_PYTHON_PYTHON=python3.12 mix erlang_python.checksum

  Upload the artifacts to the release the base URL points at.
  """
  use Mix.Task

  alias ErlangPython.Build.{Artifact, Precompiled}
  alias Mix.Tasks.Compile.ErlangPythonNif, as: Compiler

  @impl Mix.Task
  def run(_args) do
    version = Mix.Project.config()[:version]
    python = Compiler.python!()
    minor = Compiler.python_minor!(python)
    out_dir = Path.join(Mix.Project.build_path(), "../precompiled") |> Path.expand()
    library = Path.join(out_dir, Artifact.lib_filename(version))

    Compiler.build!(python, library)

    # Compiler.build!/2 installs the worker next to the library.
    worker = Path.join(out_dir, "erlang_python_worker")

    artifact =
      Precompiled.build_artifact!(
        library,
        out_dir,
        Precompiled.artifact_name(version, minor),
        worker
      )

    built =
      for path <- Path.wildcard(Path.join(out_dir, "*.tar.gz")),
          into: %{},
          do: {Path.basename(path), Precompiled.sha256(path)}

    checksums = Map.merge(Precompiled.read_checksums(), built)
    Precompiled.write_checksums!(checksums)

    Mix.shell().info(
      "wrote #{Precompiled.checksum_file()} (#{map_size(checksums)} entries); artifact: #{artifact}"
    )
  end
end
