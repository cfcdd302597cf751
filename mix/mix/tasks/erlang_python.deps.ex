defmodule Mix.Tasks.ErlangPython.Deps do
  @shortdoc "Installs the Python dependencies declared in config"
  @moduledoc """
  Installs the Python packages of `config :erlang_python, :python_deps`
  into the project-local environment the application activates at start
  (see `ErlangPython.Deps`), unless it already holds them.

      mix erlang_python.deps           # install if the spec changed
      mix erlang_python.deps --force   # reinstall
      mix erlang_python.deps --path    # print the environment's path

  `mix compile` does the same (erlang_python's `:erlang_python_deps`
  compiler).
  """
  use Mix.Task

  @impl Mix.Task
  def run(args) do
    {opts, _} = OptionParser.parse!(args, strict: [force: :boolean, path: :boolean])
    Mix.Task.run("compile", [])
    dir = Mix.Tasks.Compile.ErlangPythonDeps.env_dir()

    cond do
      opts[:path] ->
        Mix.shell().info(dir)

      ErlangPython.Deps.spec() == nil ->
        Mix.shell().info(
          "erlang_python: no Python dependencies declared (config :erlang_python, :python_deps)"
        )

      true ->
        if opts[:force], do: File.rm(Path.join(dir, ErlangPython.Deps.stamp_file()))
        Mix.Task.reenable("compile.erlang_python_deps")
        Mix.Task.run("compile.erlang_python_deps", [])
    end
  end
end
