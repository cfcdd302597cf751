defmodule ErlangPython.StackTest do
  # guides/deployment.md lists the stacks CI tests. Each CI configuration
  # runs this file, so a stack that is tested but not listed (or a row whose
  # versions drifted) fails here.
  use ExUnit.Case, async: true

  alias ErlangPython.Build.{Artifact, Precompiled}

  @guide Path.expand("../guides/deployment.md", __DIR__)

  defp tested_combinations do
    [_, section] = String.split(File.read!(@guide), "## Tested combinations", parts: 2)
    [section | _] = String.split(section, "\n## ", parts: 2)

    rows =
      for line <- String.split(section, "\n"),
          String.starts_with?(line, "|"),
          cells = line |> String.trim("|") |> String.split("|") |> Enum.map(&String.trim/1),
          not String.starts_with?(hd(cells), "-"),
          do: cells

    [header | rows] = rows
    assert header == ["system", "Erlang/OTP", "Elixir", "Python", "Rust", "command"]
    rows
  end

  defp running_stack do
    os_release = File.read!("/etc/os-release")
    [_, os_name] = Regex.run(~r/^NAME="?([^"\n]+)/m, os_release)
    [_, os_version] = Regex.run(~r/^VERSION_ID="?([^"\n]+)/m, os_release)
    {_python, python} = ErlangPython.Native.build_info()
    {rustc, 0} = System.cmd("rustc", ["--version"])
    [_, rust] = Regex.run(~r/^rustc (\d+\.\d+)/, rustc)

    %{
      system: "#{os_name |> String.split() |> hd()} #{os_version}",
      otp: System.otp_release(),
      elixir: System.version() |> Version.parse!() |> then(&"#{&1.major}.#{&1.minor}"),
      python: python,
      rust: rust
    }
  end

  test "the running stack is a row of the tested-combinations table" do
    stack = running_stack()

    matches =
      for [system, otp, elixir, python, rust, _command] = row <- tested_combinations(),
          system == stack.system and otp == stack.otp and elixir == stack.elixir and
            python == stack.python and String.starts_with?(rust, stack.rust <> " "),
          do: row

    assert matches != [],
           "#{inspect(stack)} is tested but has no row in guides/deployment.md's table"
  end

  test "the checksum file has a precompiled artifact for this stack's Python and target" do
    {_python, minor} = ErlangPython.Native.build_info()
    version = Mix.Project.config()[:version]
    name = Precompiled.artifact_name(version, minor)
    checksums = Precompiled.read_checksums()

    assert Map.has_key?(checksums, name),
           "no entry for #{name} (target #{Artifact.target()}): run bin/precompile"
  end
end
