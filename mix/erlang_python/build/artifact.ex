defmodule ErlangPython.Build.Artifact do
  @moduledoc """
  Names of the NIF library and its precompiled artifacts.

  Follows rustler_precompiled's conventions so precompiled downloads need no
  renaming: `lib<crate>-v<version>-nif-<nif_version>-<target>.so`.

  Loaded by `mix.exs` (it is needed before `lib/` compiles) and used at
  compile time by `ErlangPython.Native` to know which file to load.
  """

  @crate "erlang_python_nif"
  # The crate is built with rustler's `nif_version_2_15` feature.
  @nif_version "2.15"

  @doc "The Rust crate's name."
  def crate, do: @crate

  @doc "The NIF API version the library is built for."
  def nif_version, do: @nif_version

  @doc "Directory of the Rust crate."
  def crate_dir, do: Path.expand("../../../native/#{@crate}", __DIR__)

  @doc "The package's source `priv/` directory."
  def priv_dir, do: Path.expand("../../../priv", __DIR__)

  @doc """
  The Rust target triple of this machine, from the VM's own architecture
  string (as rustler_precompiled derives it).
  """
  def target do
    :erlang.system_info(:system_architecture)
    |> List.to_string()
    |> target_from_architecture()
  end

  @doc false
  def target_from_architecture(arch) do
    case String.split(arch, "-") do
      [cpu, _vendor, "linux", abi | _] -> "#{normalize_cpu(cpu)}-unknown-linux-#{abi}"
      [cpu, _vendor, "linux"] -> "#{normalize_cpu(cpu)}-unknown-linux-gnu"
      [cpu, "apple", "darwin" <> _ | _] -> "#{normalize_cpu(cpu)}-apple-darwin"
      [cpu, vendor, os | _] -> "#{normalize_cpu(cpu)}-#{vendor}-#{os}"
      _ -> arch
    end
  end

  defp normalize_cpu("arm64"), do: "aarch64"
  defp normalize_cpu("amd64"), do: "x86_64"
  defp normalize_cpu(cpu), do: cpu

  @doc "File name of the library without extension, as `:erlang.load_nif/2` wants it."
  def lib_basename(version), do: "lib#{@crate}-v#{version}-nif-#{@nif_version}-#{target()}"

  @doc "File name of the library."
  def lib_filename(version), do: lib_basename(version) <> ".so"
end
