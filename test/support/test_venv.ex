defmodule ErlangPython.TestVenv do
  @moduledoc """
  The venv of real Python libraries the tests run against (numpy, pandas,
  scikit-learn: `test/requirements.txt`), named by the environment variable
  `ERLANG_PYTHON_TEST_VENV`.

  `bin/test` (and so CI, on both tested configurations) makes it with
  `bin/test-venv` and sets the variable. `test/test_helper.exs` puts its
  site-packages on `sys.path` once, ahead of the base interpreter's, without
  hiding those (the sandbox tests need cffi from there). Tests that need
  these libraries are tagged `@tag :test_venv` (or `@moduletag`); a plain
  `mix test` without the variable excludes them and says so, and under CI
  (`CI` set) a missing venv fails the run instead of skipping them.
  """

  @variable "ERLANG_PYTHON_TEST_VENV"

  @doc "The variable's name."
  @spec variable() :: String.t()
  def variable, do: @variable

  @doc "The venv's directory, or `nil` when the variable is unset."
  @spec path() :: Path.t() | nil
  def path do
    case System.get_env(@variable) do
      nil -> nil
      "" -> nil
      path -> Path.expand(path)
    end
  end

  @doc """
  Puts the venv's site-packages first on `sys.path` (with its `.pth`
  files); raises if the venv does not hold this Python's site-packages or
  numpy cannot be imported from it.
  """
  @spec add!() :: :ok
  def add! do
    venv = path() || raise "#{@variable} is not set"

    code = """
    import site, sys
    _sp = '%s/lib/python%d.%d/site-packages' % (venv, *sys.version_info[:2])
    _before = list(sys.path)
    site.addsitedir(_sp)
    sys.path[:] = [p for p in sys.path if p not in _before] + [p for p in _before]
    """

    {:ok, nil} = ErlangPython.call(:builtins, :exec, [code, %{"venv" => venv}])

    case ErlangPython.eval("__import__('numpy').__version__") do
      {:ok, version} when is_binary(version) ->
        :ok

      {:error, error} ->
        raise "#{@variable}=#{venv}: numpy does not import from it: #{Exception.message(error)}"
    end
  end
end
