defmodule ErlangPython.PrecompiledTest do
  use ExUnit.Case, async: true

  import ErlangPython.TestHelpers

  alias ErlangPython.ArtifactServer
  alias ErlangPython.Build.Precompiled

  @version "9.9.9"

  setup do
    root = Path.join(System.tmp_dir!(), unique("ep_precompiled"))
    # Names repeat across test runs (unique_integer restarts with the VM).
    File.rm_rf!(root)
    served = Path.join(root, "served")
    File.mkdir_p!(served)
    {server, url} = ArtifactServer.start(served)

    on_exit(fn ->
      ArtifactServer.stop(server)
      File.rm_rf!(root)
    end)

    library = ArtifactServer.current_library()
    # The running Python's variant: the one a user of this stack downloads.
    {_python, minor} = ErlangPython.Native.build_info()
    name = Precompiled.artifact_name(@version, minor)
    artifact = Precompiled.build_artifact!(library, served, name)

    %{
      root: root,
      url: url,
      minor: minor,
      library: library,
      name: name,
      checksums: %{name => Precompiled.sha256(artifact)},
      destination: Path.join([root, "priv", "native", "lib.so"]),
      cache: Path.join(root, "cache"),
      served: served
    }
  end

  defp fetch(ctx, overrides \\ []) do
    Precompiled.fetch(
      ctx.destination,
      Keyword.merge(
        [
          version: @version,
          python_minor: ctx.minor,
          base_url: ctx.url,
          cache_dir: ctx.cache,
          checksums: ctx.checksums
        ],
        overrides
      )
    )
  end

  test "artifact names follow rustler_precompiled, with a Python variant" do
    assert Precompiled.artifact_name("1.2.3", "3.12") ==
             "liberlang_python_nif-v1.2.3-nif-2.15-#{ErlangPython.Build.Artifact.target()}--py3.12.so.tar.gz"
  end

  test "a good artifact is downloaded, verified and installed byte for byte", ctx do
    assert :ok = fetch(ctx)
    assert File.read!(ctx.destination) == File.read!(ctx.library)
    assert File.exists?(Path.join(ctx.cache, ctx.name))
  end

  test "the artifact carries the isolated worker: installed next to the library, and it runs",
       ctx do
    {:ok, worker} = ErlangPython.Isolated.executable()
    artifact = Precompiled.build_artifact!(ctx.library, ctx.served, ctx.name, worker)
    assert :ok = fetch(ctx, checksums: %{ctx.name => Precompiled.sha256(artifact)})

    installed = Path.join(Path.dirname(ctx.destination), "erlang_python_worker")
    assert File.read!(installed) == File.read!(worker)
    assert File.read!(ctx.destination) == File.read!(ctx.library)
    assert %File.Stat{mode: mode} = File.stat!(installed)
    assert Bitwise.band(mode, 0o111) != 0

    # The installed copy starts Python and says so, as a context's worker.
    port =
      Port.open({:spawn_executable, installed}, [
        :binary,
        :exit_status,
        {:packet, 4},
        {:args, ["priv=#{:code.priv_dir(:erlang_python)}", "sandbox=true"]}
      ])

    assert_receive {^port, {:data, frame}}, 30_000
    assert {:ready, os_pid} = :erlang.binary_to_term(frame)
    assert is_integer(os_pid)
    Port.close(port)
  end

  test "a cached artifact is used without downloading again", ctx do
    assert :ok = fetch(ctx)
    File.rm!(Path.join(ctx.served, ctx.name))
    File.rm!(ctx.destination)
    assert :ok = fetch(ctx)
    assert File.read!(ctx.destination) == File.read!(ctx.library)
  end

  test "a tampered artifact is refused and nothing is installed", ctx do
    tampered = Path.join(ctx.root, "tampered.so")
    File.write!(tampered, File.read!(ctx.library) <> "evil")
    Precompiled.build_artifact!(tampered, ctx.served, ctx.name)

    error = assert_raise Mix.Error, fn -> fetch(ctx) end
    assert error.message =~ "checksum mismatch"
    assert error.message =~ "ERLANG_PYTHON_BUILD=1"
    refute File.exists?(ctx.destination)
    refute File.exists?(Path.join(ctx.cache, ctx.name))
  end

  test "a missing checksum entry stops with what to do", ctx do
    error = assert_raise Mix.Error, fn -> fetch(ctx, checksums: %{}) end
    assert error.message =~ "no entry for #{ctx.name}"
    assert error.message =~ "mix erlang_python.checksum"
    refute File.exists?(ctx.destination)
  end

  test "an absent artifact is reported, so the compiler can build from source", ctx do
    missing = Precompiled.artifact_name("0.0.1", ctx.minor)

    assert {:error, {:not_found, url}} =
             fetch(ctx, version: "0.0.1", checksums: %{missing => "sha256:00"})

    assert url == "#{ctx.url}/#{missing}"
  end

  test "the checksum file lists real artifacts, sorted" do
    checksums = Precompiled.read_checksums()
    assert map_size(checksums) >= 1

    for {name, sum} <- checksums do
      assert name =~ ~r/^liberlang_python_nif-v.+-nif-2\.15-.+--py3\.\d+\.so\.tar\.gz$/
      assert sum =~ ~r/^sha256:[0-9a-f]{64}$/
    end

    text = File.read!(Precompiled.checksum_file())
    names = Regex.scan(~r/"(liberlang[^"]+)"/, text) |> Enum.map(&List.last/1)
    assert names == Enum.sort(names)
  end
end
