defmodule ErlangPython.Build.Precompiled do
  @moduledoc """
  Precompiled NIF libraries, following rustler_precompiled's conventions.

  An artifact is `<library>--py<major>.<minor>.so.tar.gz`, where `<library>`
  is `ErlangPython.Build.Artifact.lib_basename/1`: one variant per Python
  minor version, because the library links one libpython. The checksum file
  (`checksum-Elixir.ErlangPython.Native.exs`) maps artifact names to
  `"sha256:<hex>"`. Nothing is extracted, let alone loaded, before its
  SHA-256 matches.

  The archive holds the library and, next to it, isolated contexts' worker
  executable (`erlang_python_worker`, built from the same crate and
  linked to the same libpython), so one checksum covers both and a user
  of the precompiled NIF gets isolated contexts too. An archive without
  the worker (made before it existed) still installs the library.

  Uses OTP only: `:httpc` (TLS verified against the system's CA store,
  `HTTP_PROXY`/`HTTPS_PROXY` honoured, retries), `:crypto` and `:erl_tar`.
  """

  alias ErlangPython.Build.Artifact

  @checksum_file "checksum-Elixir.ErlangPython.Native.exs"
  @default_base_url "https://github.com/erlang-python/erlang_python/releases/download/v"

  @doc "The artifact's file name for `version` and a Python `\"3.11\"`."
  def artifact_name(version, python_minor),
    do: "#{Artifact.lib_basename(version)}--py#{python_minor}.so.tar.gz"

  @doc "Path of the checksum file (overridable with ERLANG_PYTHON_CHECKSUM_FILE, for mirrors)."
  def checksum_file,
    do:
      System.get_env("ERLANG_PYTHON_CHECKSUM_FILE") ||
        Path.expand("../../../#{@checksum_file}", __DIR__)

  @doc "The checksums map, `%{}` when the file does not exist."
  def read_checksums(path \\ checksum_file()) do
    if File.exists?(path) do
      {checksums, _} = Code.eval_file(path)
      checksums
    else
      %{}
    end
  end

  @doc "Writes the checksums map sorted by name, as rustler_precompiled does."
  def write_checksums!(checksums, path \\ checksum_file()) do
    body =
      checksums
      |> Enum.sort()
      |> Enum.map_join("", fn {name, sum} -> "  #{inspect(name)} => #{inspect(sum)},\n" end)

    File.write!(path, "%{\n" <> body <> "}\n")
  end

  @doc "`\"sha256:<hex>\"` of a file."
  def sha256(path),
    do: "sha256:" <> Base.encode16(:crypto.hash(:sha256, File.read!(path)), case: :lower)

  @worker "erlang_python_worker"

  @doc """
  Packs the library at `library`, and the worker executable at `worker`
  when given, as the artifact `name` in `dir`; returns its path.
  """
  def build_artifact!(library, dir, name, worker \\ nil) do
    File.mkdir_p!(dir)
    path = Path.join(dir, name)
    inner = String.replace_suffix(name, ".tar.gz", "")
    members = [{String.to_charlist(inner), File.read!(library)}]
    members = if worker, do: members ++ [{~c"#{@worker}", File.read!(worker)}], else: members
    :ok = :erl_tar.create(String.to_charlist(path), members, [:compressed])
    path
  end

  @doc "The base URL artifacts are downloaded from, for `version`."
  def base_url(version) do
    System.get_env("ERLANG_PYTHON_BASE_URL") ||
      Application.get_env(:erlang_python, :precompiled_base_url) || @default_base_url <> version
  end

  @doc """
  Gets the verified artifact into `destination` (the library path).

  Options: `:version`, `:python_minor`, `:base_url`, `:cache_dir`,
  `:checksums` (defaults to the checksum file). Returns `:ok`,
  `{:error, {:not_found, url}}` (no such artifact: build from source
  instead), or `{:error, {:download_failed, url, reason}}`. Raises on a
  missing checksum entry or a checksum mismatch: a library that cannot be
  verified is never used.
  """
  def fetch(destination, opts) do
    start_applications!([:crypto, :inets, :ssl])
    version = Keyword.fetch!(opts, :version)
    name = artifact_name(version, Keyword.fetch!(opts, :python_minor))
    checksums = Keyword.get_lazy(opts, :checksums, &read_checksums/0)
    cache_dir = Keyword.get_lazy(opts, :cache_dir, &cache_dir/0)

    url =
      "#{String.trim_trailing(Keyword.get_lazy(opts, :base_url, fn -> base_url(version) end), "/")}/#{name}"

    expected =
      Map.get(checksums, name) ||
        Mix.raise("""
        erlang_python: the checksum file has no entry for #{name}.
        Build from source instead (ERLANG_PYTHON_BUILD=1), or, if you publish
        your own artifacts, run `mix erlang_python.checksum` to record them.
        """)

    cached = Path.join(cache_dir, name)

    with :ok <- ensure_cached(cached, url, expected) do
      verify!(cached, expected, url)
      extract!(cached, destination)
    end
  end

  defp ensure_cached(cached, url, expected) do
    if File.exists?(cached) and sha256(cached) == expected do
      :ok
    else
      with {:ok, body} <- download(url) do
        File.mkdir_p!(Path.dirname(cached))
        File.write!(cached, body)
        :ok
      end
    end
  end

  defp verify!(path, expected, url) do
    actual = sha256(path)

    if actual != expected do
      File.rm(path)

      Mix.raise("""
      erlang_python: checksum mismatch for #{url}
        expected #{expected}
        got      #{actual}
      The download was deleted and nothing was installed. If you trust this
      artifact, update the checksum file (mix erlang_python.checksum);
      otherwise build from source with ERLANG_PYTHON_BUILD=1.
      """)
    end
  end

  # The library goes to `destination`, the worker (when the archive has
  # one) next to it, where ErlangPython.Isolated looks for it. Each is
  # written under a temporary name and renamed: a running VM may have the
  # old one open.
  defp extract!(archive, destination) do
    {:ok, members} = :erl_tar.extract(String.to_charlist(archive), [:compressed, :memory])
    {workers, libraries} = Enum.split_with(members, fn {name, _} -> name == ~c"#{@worker}" end)
    [{_name, library}] = libraries
    File.mkdir_p!(Path.dirname(destination))
    install_file!(destination, library, 0o644)

    for {_name, worker} <- workers,
        do: install_file!(Path.join(Path.dirname(destination), @worker), worker, 0o755)

    :ok
  end

  defp install_file!(destination, contents, mode) do
    tmp = destination <> ".tmp"
    File.write!(tmp, contents)
    File.chmod!(tmp, mode)
    File.rename!(tmp, destination)
  end

  @doc "Where downloaded artifacts are kept between builds."
  def cache_dir do
    System.get_env("ERLANG_PYTHON_CACHE_DIR") ||
      :filename.basedir(:user_cache, ~c"erlang_python") |> List.to_string()
  end

  @attempts 3

  @doc false
  def download(url, attempt \\ 1) do
    configure_proxies()
    http_options = [timeout: 120_000, connect_timeout: 20_000] ++ tls_options(url)

    case :httpc.request(:get, {String.to_charlist(url), []}, http_options, body_format: :binary) do
      {:ok, {{_, 200, _}, _headers, body}} ->
        {:ok, body}

      {:ok, {{_, 404, _}, _, _}} ->
        {:error, {:not_found, url}}

      other when attempt < @attempts ->
        Process.sleep(500 * attempt)
        _ = other
        download(url, attempt + 1)

      {:ok, {{_, status, _}, _, _}} ->
        {:error, {:download_failed, url, {:http_status, status}}}

      {:error, reason} ->
        {:error, {:download_failed, url, reason}}
    end
  end

  # From Elixir 1.15 on, Mix keeps only the project's declared applications
  # on the code path, so a dependency's compiler finds no `inets.app` until
  # it asks Mix for it (`Mix.ensure_application!/1`, new in 1.15). Elixir
  # 1.14 has every OTP application on the path already.
  defp start_applications!(apps) do
    for app <- apps do
      if function_exported?(Mix, :ensure_application!, 1) do
        apply(Mix, :ensure_application!, [app])
      end

      case Application.ensure_all_started(app) do
        {:ok, _} ->
          :ok

        {:error, reason} ->
          Mix.raise(
            "erlang_python: cannot start #{app} for the precompiled NIF: #{inspect(reason)}"
          )
      end
    end

    :ok
  end

  defp tls_options("https" <> _) do
    [
      ssl: [
        verify: :verify_peer,
        cacerts: :public_key.cacerts_get(),
        depth: 4,
        customize_hostname_check: [match_fun: :public_key.pkix_verify_hostname_match_fun(:https)]
      ]
    ]
  end

  defp tls_options(_plain_http), do: []

  defp configure_proxies do
    for {variable, option} <- [{"HTTP_PROXY", :proxy}, {"HTTPS_PROXY", :https_proxy}],
        value = System.get_env(variable) || System.get_env(String.downcase(variable)),
        value not in [nil, ""] do
      %URI{host: host, port: port} = URI.parse(value)

      no_proxy =
        (System.get_env("NO_PROXY") || "")
        |> String.split(",", trim: true)
        |> Enum.map(&String.to_charlist/1)

      :httpc.set_options([{option, {{String.to_charlist(host), port}, no_proxy}}])
    end

    :ok
  end
end
