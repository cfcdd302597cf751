defmodule ErlangPython.Imports do
  @moduledoc """
  Modules imported and paths added everywhere: now, and in every context
  created later.

      iex> ErlangPython.Imports.ensure_imported(:json)
      :ok
      iex> ErlangPython.Imports.imported?(:json)
      true
      iex> ErlangPython.Imports.ensure_imported(:json, :dumps)
      :ok
      iex> ErlangPython.Imports.by_module()["json"]
      ["dumps"]
      iex> ErlangPython.Imports.ensure_imported(:__main__)
      {:error, :main_not_cacheable}

  `ensure_imported/1,2` records the module in a registry and imports it into
  `sys.modules` at once, so the first call pays no import; new contexts
  (`ErlangPython.ContextServer`) import every registered module as they
  start. A module that cannot be imported is still recorded: the error comes
  when something calls it, as with any call. `__main__` is refused (it is
  each namespace's own, not a module to cache).

  `add_path/1` appends a directory to `sys.path` at once (Python has one
  `sys.path`, shared by every context). Clearing a registry forgets its
  entries for the future; it does not un-import modules or remove paths.

  ## Configuration

      config :erlang_python,
        imports: [:json, {:json, :dumps}, {:os, :getcwd}],
        paths: ["/srv/app/python"]

  read at start, and again by `init/0`.
  """

  @imports :erlang_python_imports
  @paths :erlang_python_paths
  @module "_erlang_impl._imports"

  @typedoc "What was imported from a module: the whole module, or one name."
  @type spec :: :all | String.t()

  @doc """
  Records `module` (and, with `function`, that name in it) and imports the
  module now. `{:error, :main_not_cacheable}` for `__main__`.
  """
  @spec ensure_imported(ErlangPython.name(), ErlangPython.name() | :all) ::
          :ok | {:error, :main_not_cacheable | {:badarg, String.t()} | term()}
  def ensure_imported(module, function \\ :all) do
    with {:ok, module} <- text(module),
         :ok <- cacheable(module),
         {:ok, spec} <- if(function == :all, do: {:ok, :all}, else: text(function)) do
      :ets.insert(@imports, {{module, spec}})

      case ErlangPython.call(@module, :ensure, [module]) do
        {:ok, _imported?} -> :ok
        {:error, _} = error -> error
      end
    end
  end

  @doc "Whether `module` (or `module.function`) is recorded."
  @spec imported?(ErlangPython.name(), ErlangPython.name() | :all) :: boolean()
  def imported?(module, function \\ :all) do
    with {:ok, module} <- text(module),
         {:ok, spec} <- if(function == :all, do: {:ok, :all}, else: text(function)) do
      :ets.member(@imports, {module, spec})
    else
      _ -> false
    end
  end

  @doc "Every recorded import, as `{module, :all | function}`."
  @spec all() :: [{String.t(), spec()}]
  def all, do: for({{module, spec}} <- :ets.tab2list(@imports), do: {module, spec})

  @doc "Recorded imports grouped by module: `%{\"json\" => [\"dumps\"], \"math\" => []}`."
  @spec by_module() :: %{String.t() => [String.t()]}
  def by_module do
    Enum.reduce(all(), %{}, fn
      {module, :all}, acc -> Map.put_new(acc, module, [])
      {module, function}, acc -> Map.update(acc, module, [function], &[function | &1])
    end)
    |> Map.new(fn {module, functions} -> {module, Enum.sort(functions)} end)
  end

  @doc "The recorded modules, each once (what new contexts import)."
  @spec modules() :: [String.t()]
  def modules do
    :ets.tab2list(@imports) |> Enum.map(fn {{module, _}} -> module end) |> Enum.uniq()
  rescue
    ArgumentError -> []
  end

  @doc "Forgets every recorded import (imported modules stay imported)."
  @spec clear() :: :ok
  def clear do
    :ets.delete_all_objects(@imports)
    :ok
  end

  @doc "Appends `path` to `sys.path` now (once) and records it."
  @spec add_path(Path.t()) :: :ok | {:error, term()}
  def add_path(path), do: add_paths([path])

  @doc "`add_path/1` for several directories, in order."
  @spec add_paths([Path.t()]) :: :ok | {:error, term()}
  def add_paths(paths) when is_list(paths) do
    with {:ok, paths} <- texts(paths),
         {:ok, nil} <- ErlangPython.call(@module, :add_paths, [paths]) do
      for path <- paths, not path_added?(path) do
        :ets.insert(@paths, {:erlang.unique_integer([:monotonic]), path})
      end

      :ok
    end
  end

  @doc "The recorded paths, in the order they were added."
  @spec paths() :: [String.t()]
  def paths, do: for({_seq, path} <- :ets.tab2list(@paths), do: path)

  @doc "Whether `path` is recorded."
  @spec path_added?(Path.t()) :: boolean()
  def path_added?(path) do
    case text(path) do
      {:ok, path} -> :ets.match_object(@paths, {:_, path}) != []
      _ -> false
    end
  end

  @doc "Forgets every recorded path (`sys.path` keeps them)."
  @spec clear_paths() :: :ok
  def clear_paths do
    :ets.delete_all_objects(@paths)
    :ok
  end

  @doc """
  Records and applies `config :erlang_python, imports: [...], paths: [...]`
  (modules as `module` or `{module, function}`).
  """
  @spec init() :: :ok | {:error, term()}
  def init do
    imports = ErlangPython.Runtime.config(:imports)
    paths = ErlangPython.Runtime.config(:paths)

    with :ok <- add_paths(paths) do
      Enum.reduce_while(imports, :ok, fn entry, :ok ->
        result =
          case entry do
            {module, function} -> ensure_imported(module, function)
            module -> ensure_imported(module)
          end

        if result == :ok, do: {:cont, :ok}, else: {:halt, result}
      end)
    end
  end

  defp cacheable("__main__"), do: {:error, :main_not_cacheable}
  defp cacheable(_module), do: :ok

  defp texts(names) do
    Enum.reduce_while(names, {:ok, []}, fn name, {:ok, acc} ->
      case text(name) do
        {:ok, text} -> {:cont, {:ok, [text | acc]}}
        error -> {:halt, error}
      end
    end)
    |> case do
      {:ok, texts} -> {:ok, Enum.reverse(texts)}
      error -> error
    end
  end

  defp text(name) when is_atom(name) and not is_nil(name), do: {:ok, Atom.to_string(name)}
  defp text(name) when is_binary(name) and name != "", do: {:ok, name}

  defp text(name) when is_list(name) do
    case :unicode.characters_to_binary(name) do
      binary when is_binary(binary) and binary != "" -> {:ok, binary}
      _ -> {:error, {:badarg, "expected a name, got: #{inspect(name)}"}}
    end
  end

  defp text(name), do: {:error, {:badarg, "expected a name, got: #{inspect(name)}"}}
end
