defmodule ErlangPython.Venv do
  @moduledoc """
  Python virtual environments for the embedded interpreter: activating one,
  and creating one with its requirements installed.

  `activate/1` (also `ErlangPython.activate_venv/1`) puts a venv's
  site-packages first on `sys.path`; `ensure/3` creates the venv if needed,
  installs its requirements when they changed, and activates it:

      ErlangPython.Venv.ensure("/srv/app/venv", "/srv/app/requirements.txt")
      #=> {:ok, %{"active" => true, "venv_path" => "/srv/app/venv", ...}}

  Python code cannot start processes inside the VM (the sandbox refuses
  it), so `ensure/3` runs `python -m venv`, `pip` and `uv` from Elixir,
  through ports, with arguments passed as a list: no shell ever sees a
  path.
  """

  @module "_erlang_impl._venv"
  @marker ".erlang_python_requirements"

  @typedoc "What `info/0` returns."
  @type info :: %{String.t() => term()}

  @doc """
  Activates the venv at `path`; see `ErlangPython.activate_venv/1`.

  A directory with this Python's `lib/pythonX.Y/site-packages` but no
  `pyvenv.cfg` is accepted too, as a bare site directory.
  """
  @spec activate(Path.t()) :: {:ok, info()} | {:error, term()}
  def activate(path) when is_binary(path) or is_list(path) do
    path = to_string(path)

    case ErlangPython.call(@module, :activate, [Path.expand(path)]) do
      {:ok, nil} ->
        {:error, {:invalid_venv, path}}

      {:ok, info} ->
        {:ok, info}

      {:error, %ErlangPython.Error{type: "ValueError", message: message}} ->
        {:error, {:incompatible_venv, message}}

      {:error, _} = error ->
        error
    end
  end

  def activate(path), do: {:error, {:invalid_venv, path}}

  @doc "Restores `sys.path` and `sys.prefix`; see `ErlangPython.deactivate_venv/0`."
  @spec deactivate() :: :ok | {:error, term()}
  def deactivate do
    with {:ok, nil} <- ErlangPython.call(@module, :deactivate, []), do: :ok
  end

  @doc """
  The active venv: `%{"active" => boolean, "venv_path" => ..., "path" =>
  ..., "site_packages" => ..., "sys_path" => [...], "python" => "3.11.7",
  "prefix" => ...}` (the venv keys only while one is active).
  """
  @spec info() :: info() | {:error, term()}
  def info do
    with {:ok, info} <- ErlangPython.call(@module, :info, []), do: info
  end

  @doc """
  Makes sure a venv exists at `path` with the requirements of
  `requirements` installed, then activates it.

  The venv is created when `path` holds none (or always, with `force:
  true`), with the Python this library embeds. Requirements are installed
  when the file's contents (and the options that shape the install) differ
  from the last successful install into this venv: a hash of them is kept
  in the venv, so calling `ensure/3` again at every start costs a file read.
  A `requirements.txt`-style file is installed with `-r`; a
  `pyproject.toml` installs its directory as an editable package.

  ## Options

    * `:installer` - `:pip` or `:uv` (default: `:uv` when `uv` is on the
      `PATH`, else `:pip`).
    * `:force` - recreate the venv even if it exists (default `false`).
    * `:python` - the interpreter that creates the venv (default: the one
      this library was built against; a venv of another Python version
      cannot be activated).
    * `:extras` - optional dependency groups of a `pyproject.toml`.
    * `:timeout` - milliseconds each command may take (default 600_000).

  Returns `{:ok, info}` as `activate/1` does, or `{:error, {:command_failed,
  command, status, output}}`, `{:error, {:executable_not_found, name}}`,
  `{:error, {:requirements_not_found, path}}`.
  """
  @spec ensure(Path.t(), Path.t(), keyword()) :: {:ok, info()} | {:error, term()}
  def ensure(path, requirements, opts \\ []) do
    with :ok <- install(path, requirements, opts), do: activate(Path.expand(to_string(path)))
  end

  @doc """
  What `ensure/3` does before activating: creates the venv at `path` if
  needed and installs `requirements` into it when they changed; returns
  `:ok` or the same errors. Needs no running interpreter as long as
  `:python` is given, so build tools use it (`mix erlang_python.deps`).

  Takes `ensure/3`'s options, and `:uv`: the `uv` executable to use with
  `installer: :uv` (default: `uv` on the `PATH`).
  """
  @spec install(Path.t(), Path.t(), keyword()) :: :ok | {:error, term()}
  def install(path, requirements, opts \\ []) do
    opts =
      Keyword.validate!(opts, [
        :installer,
        :python,
        :uv,
        force: false,
        extras: [],
        timeout: 600_000
      ])

    path = Path.expand(to_string(path))
    requirements = Path.expand(to_string(requirements))

    with {:ok, contents} <- read_requirements(requirements),
         {:ok, installer} <- installer(opts[:installer]),
         {:ok, python} <- python(opts[:python]),
         :ok <- create(path, python, installer, opts) do
      install(path, requirements, contents, installer, opts)
    end
  end

  defp read_requirements(requirements) do
    case File.read(requirements) do
      {:ok, contents} -> {:ok, contents}
      {:error, _} -> {:error, {:requirements_not_found, requirements}}
    end
  end

  defp installer(nil), do: {:ok, if(System.find_executable("uv"), do: :uv, else: :pip)}
  defp installer(installer) when installer in [:pip, :uv], do: {:ok, installer}

  defp installer(other),
    do: {:error, {:badarg, "installer must be :pip or :uv, got: #{inspect(other)}"}}

  defp python(nil) do
    {python, _version} = ErlangPython.Native.build_info()
    {:ok, python}
  end

  defp python(python), do: {:ok, to_string(python)}

  defp create(path, python, installer, opts) do
    exists? = File.regular?(Path.join(path, "pyvenv.cfg"))

    if exists? and not opts[:force] do
      :ok
    else
      # Recreating the active venv: leave it first, so sys.path does not
      # keep pointing into a directory about to be replaced.
      if exists?, do: deactivate_if_active(path)
      File.rm_rf!(path)
      File.mkdir_p!(Path.dirname(path))

      case installer do
        :uv -> run(opts[:uv] || "uv", ["venv", "--python", python, path], [], opts)
        :pip -> run(python, ["-m", "venv", path], [], opts)
      end
    end
  end

  defp deactivate_if_active(path) do
    case info() do
      %{"active" => true, "venv_path" => ^path} -> deactivate()
      _ -> :ok
    end
  end

  defp install(path, requirements, contents, installer, opts) do
    extras = Enum.map(opts[:extras], &to_string/1)
    digest = digest([contents, requirements, Atom.to_string(installer) | extras])
    marker = Path.join(path, @marker)

    if File.read(marker) == {:ok, digest} do
      :ok
    else
      target = install_target(requirements, extras)

      {command, args, env} =
        case installer do
          :pip -> {Path.join([path, "bin", "pip"]), ["install" | target], []}
          :uv -> {opts[:uv] || "uv", ["pip", "install" | target], [{"VIRTUAL_ENV", path}]}
        end

      with :ok <- skip_if_empty(contents, fn -> run(command, args, env, opts) end) do
        File.write!(marker, digest)
      end
    end
  end

  # A requirements file with nothing to install (comments, blank lines)
  # needs no installer run: pip is absent from venvs made without it.
  defp skip_if_empty(contents, install) do
    empty? =
      contents
      |> String.split("\n")
      |> Enum.map(&String.trim/1)
      |> Enum.all?(&(&1 == "" or String.starts_with?(&1, "#")))

    if empty?, do: :ok, else: install.()
  end

  defp install_target(requirements, extras) do
    if Path.basename(requirements) == "pyproject.toml" do
      dir = Path.dirname(requirements)
      ["-e", if(extras == [], do: dir, else: "#{dir}[#{Enum.join(extras, ",")}]")]
    else
      ["-r", requirements]
    end
  end

  defp digest(parts),
    do: :crypto.hash(:sha256, Enum.intersperse(parts, <<0>>)) |> Base.encode16(case: :lower)

  # Runs a command without a shell; output is returned on failure.
  defp run(command, args, env, opts) do
    with {:ok, executable} <- executable(command) do
      task =
        Task.async(fn ->
          System.cmd(executable, args, stderr_to_stdout: true, env: env)
        end)

      case Task.yield(task, opts[:timeout]) || Task.shutdown(task, :brutal_kill) do
        {:ok, {_output, 0}} -> :ok
        {:ok, {output, status}} -> {:error, {:command_failed, [command | args], status, output}}
        nil -> {:error, {:command_failed, [command | args], :timeout, ""}}
      end
    end
  end

  defp executable(command) do
    cond do
      Path.type(command) == :absolute and File.regular?(command) -> {:ok, command}
      Path.type(command) == :absolute -> {:error, {:executable_not_found, command}}
      found = System.find_executable(command) -> {:ok, found}
      true -> {:error, {:executable_not_found, command}}
    end
  end
end
