defmodule Mix.Tasks.Compile.ErlangPythonDeps do
  @shortdoc "Installs the Python dependencies declared in config"
  @moduledoc """
  Installs the Python packages of `config :erlang_python, :python_deps`
  into `_build/<env>/lib/erlang_python/python_env` (see
  `ErlangPython.Deps`). Part of erlang_python's own compilers, after the
  Elixir compiler; nothing to do when no dependencies are declared or when
  the installed environment already holds them (a hash comparison).

  Add `:erlang_python_deps` to your project's compilers to have every
  `mix compile` of your project check them (useful when you change the
  config without recompiling erlang_python):

      compilers: Mix.compilers() ++ [:erlang_python_deps]
  """
  use Mix.Task.Compiler

  @impl Mix.Task.Compiler
  def run(_args) do
    config = Application.get_all_env(:erlang_python)

    case ErlangPython.Deps.spec(config) do
      nil ->
        {:noop, []}

      spec ->
        dir = env_dir()
        python = Mix.Tasks.Compile.ErlangPythonNif.python!()

        opts = [
          python: python,
          installer: config[:python_deps_installer],
          timeout: config[:python_deps_timeout] || 600_000
        ]

        case ErlangPython.Deps.install(spec, dir, opts) do
          {:ok, :unchanged} ->
            {:noop, []}

          {:ok, :installed} ->
            Mix.shell().info("erlang_python: installed the Python dependencies into #{dir}")
            {:ok, []}

          {:error, reason} ->
            Mix.raise("erlang_python: installing the Python dependencies failed: #{format(reason)}")
        end
    end
  end

  @doc false
  # Where the environment goes: erlang_python's app directory in the build,
  # whether erlang_python is the project or one of its dependencies.
  def env_dir, do: Path.join([Mix.Project.build_path(), "lib", "erlang_python", "python_env"])

  defp format({:command_failed, command, status, output}),
    do: "#{Enum.join(command, " ")} exited with #{inspect(status)}:\n#{output}"

  defp format(reason), do: inspect(reason)
end
