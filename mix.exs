# Compile-time tooling (the cargo compiler, artifact naming) lives in mix/,
# outside lib/, so it exists before lib/ compiles and is never compiled twice.
# mix/ is laid out like lib/: each file's path follows its module's name.
Code.require_file("mix/erlang_python/build/artifact.ex", __DIR__)
Code.require_file("mix/erlang_python/build/precompiled.ex", __DIR__)
Code.require_file("mix/mix/tasks/compile.erlang_python_nif.ex", __DIR__)
Code.require_file("mix/mix/tasks/erlang_python.checksum.ex", __DIR__)
Code.require_file("mix/mix/tasks/compile.erlang_python_deps.ex", __DIR__)
Code.require_file("mix/mix/tasks/erlang_python.deps.ex", __DIR__)

defmodule ErlangPython.MixProject do
  use Mix.Project

  @version "0.1.0-dev"
  @source_url "https://github.com/erlang-python/erlang_python"

  def project do
    [
      app: :erlang_python,
      version: @version,
      elixir: "~> 1.14",
      # Python dependencies declared in config are installed once lib/ is
      # compiled (ErlangPython.Deps does the work).
      compilers: [:erlang_python_nif | Mix.compilers()] ++ [:erlang_python_deps],
      elixirc_paths: elixirc_paths(Mix.env()),
      start_permanent: Mix.env() == :prod,
      deps: [],
      description: "Call Python from Elixir and Erlang: CPython embedded in the BEAM, safely.",
      source_url: @source_url,
      package: package(),
      docs: docs(),
      test_coverage: [summary: [threshold: 0]]
    ]
  end

  def application do
    [
      mod: {ErlangPython.Application, []},
      extra_applications: [:logger, :crypto | extra_applications(Mix.env())]
    ]
  end

  # The tests' loopback artifact server (test/support) uses OTP's httpd.
  defp extra_applications(:test), do: [:inets]
  defp extra_applications(_), do: []

  defp elixirc_paths(:test), do: ["lib", "test/support"]
  defp elixirc_paths(_), do: ["lib"]

  # For ex_doc, when it is available: the guides, and ErlangPython's
  # functions in the groups their `@doc group:` names.
  @doc_groups [
    "Calling Python",
    "Object handles",
    "Asynchronous calls and streams",
    "Calling Elixir from Python",
    "Interrupting",
    "Worker pool",
    "Virtual environments",
    "Descriptors and reactors"
  ]

  defp docs do
    [
      main: "ErlangPython",
      source_ref: "v#{@version}",
      extras: ["README.md", "CHANGELOG.md" | Path.wildcard("guides/*.md")],
      groups_for_extras: [Guides: Path.wildcard("guides/*.md")],
      groups_for_docs: for(group <- @doc_groups, do: {group, &(&1[:group] == group)}),
      groups_for_modules: [
        "Python values": [ErlangPython.Object, ErlangPython.Context, ErlangPython.AsyncCall],
        Errors: [ErlangPython.Error, ErlangPython.CallError],
        Runtime: [
          ErlangPython.Runtime,
          ErlangPython.State,
          ErlangPython.Telemetry,
          ErlangPython.Telemetry.Poller
        ],
        "Descriptors and reactors": [ErlangPython.Descriptor, ErlangPython.Reactor],
        "Event loops": [
          ErlangPython.EventLoopPool,
          ErlangPython.EventQueue,
          ErlangPython.EventQueue.TestFd
        ],
        "Erlang and tooling": [:py, ErlangPython.Sigils, ErlangPython.Case]
      ]
    ]
  end

  defp package do
    [
      licenses: ["Apache-2.0"],
      links: %{"GitHub" => @source_url},
      files: ~w(
        lib mix priv/_erlang_impl priv/erlang guides
        native/erlang_python_nif/src native/erlang_python_nif/build.rs
        native/erlang_python_nif/Cargo.toml native/erlang_python_nif/Cargo.lock
        mix.exs README.md LICENSE CHANGELOG.md checksum-Elixir.ErlangPython.Native.exs
      )
    ]
  end
end
