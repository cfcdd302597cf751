defmodule :py_callback do
  @moduledoc """
  Erlang facade for the functions Python calls as `erlang.<name>` or
  `erlang.call(name, ...)` (`ErlangPython.register_function/2,3`).
  """

  @doc """
  Registers `Fun` (arity 1: it receives the argument list) or `{Module,
  Function}` under `Name`: `ok`.
  """
  @spec register(atom() | binary(), (list() -> term()) | {module(), atom()}) :: :ok
  def register(name, {module, function}), do: ErlangPython.register_function(name, module, function)
  def register(name, fun), do: ErlangPython.register_function(name, fun)

  @doc "Removes the function registered as `Name`: `ok`."
  @spec unregister(atom() | binary()) :: :ok
  def unregister(name), do: ErlangPython.unregister_function(name)

  @doc false
  # The callbacks erlang_python registers at start, under the same names:
  # `_py_sleep(Seconds)` waits in the calling process with `receive after`;
  # `_py_whereis(Name)` is `erlang.whereis(name)`'s lookup (priv/erlang).
  @spec register_builtins() :: :ok
  def register_builtins do
    :ok = ErlangPython.register_function("_py_sleep", &sleep/1)
    ErlangPython.register_function("_py_whereis", &whereis/1)
  end

  defp sleep([seconds]) when is_number(seconds) do
    Process.sleep(max(0, round(seconds * 1000)))
    :ok
  end

  defp sleep(_args), do: :ok

  # The name comes from Python data: only an existing atom can name a
  # registered process, so none is created.
  defp whereis([name]) when is_binary(name) do
    Process.whereis(String.to_existing_atom(name))
  rescue
    ArgumentError -> nil
  end
end
