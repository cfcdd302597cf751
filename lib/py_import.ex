defmodule :py_import do
  @moduledoc """
  Erlang facade for the import and path registry (`ErlangPython.Imports`).

      ok = py_import:ensure_imported(json),
      ok = py_import:ensure_imported(json, dumps),
      {ok, \#{<<"json">> := [<<"dumps">>]}} = py_import:import_list(),
      ok = py_import:add_path("/srv/app/python").
  """

  alias ErlangPython.Imports

  @doc "Records a module and imports it now; `{error, main_not_cacheable}` for `__main__`."
  @spec ensure_imported(term()) :: :ok | {:error, term()}
  def ensure_imported(module), do: Imports.ensure_imported(module) |> :py.erlang_shape()

  @doc "Records `Module.Function` and imports the module now."
  @spec ensure_imported(term(), term()) :: :ok | {:error, term()}
  def ensure_imported(module, function),
    do: Imports.ensure_imported(module, function) |> :py.erlang_shape()

  @doc "Whether a module is recorded."
  @spec is_imported(term()) :: boolean()
  def is_imported(module), do: Imports.imported?(module)

  @doc "Whether `Module.Function` is recorded."
  @spec is_imported(term(), term()) :: boolean()
  def is_imported(module, function), do: Imports.imported?(module, function)

  @doc "`[{Module, all | Function}]`, names as binaries."
  @spec all_imports() :: [{binary(), :all | binary()}]
  defdelegate all_imports, to: Imports, as: :all

  @doc "`{ok, \#{Module => [Function]}}`."
  @spec import_list() :: {:ok, %{binary() => [binary()]}}
  def import_list, do: {:ok, Imports.by_module()}

  @doc "Forgets every recorded import."
  @spec clear_imports() :: :ok
  defdelegate clear_imports, to: Imports, as: :clear

  @doc "Appends a directory to `sys.path` now and records it."
  @spec add_path(iodata()) :: :ok | {:error, term()}
  def add_path(path), do: Imports.add_path(IO.chardata_to_string(path)) |> :py.erlang_shape()

  @doc "`add_path/1` for several directories."
  @spec add_paths([iodata()]) :: :ok | {:error, term()}
  def add_paths(paths),
    do: paths |> Enum.map(&IO.chardata_to_string/1) |> Imports.add_paths() |> :py.erlang_shape()

  @doc "The recorded paths, in order."
  @spec all_paths() :: [binary()]
  defdelegate all_paths, to: Imports, as: :paths

  @doc "Whether a path is recorded."
  @spec is_path_added(iodata()) :: boolean()
  def is_path_added(path), do: Imports.path_added?(IO.chardata_to_string(path))

  @doc "Forgets every recorded path."
  @spec clear_paths() :: :ok
  defdelegate clear_paths, to: Imports

  @doc "Records and applies the `imports` and `paths` application settings."
  @spec init() :: :ok | {:error, term()}
  def init, do: Imports.init() |> :py.erlang_shape()
end
