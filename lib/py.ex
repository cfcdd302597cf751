defmodule :py do
  @moduledoc """
  Erlang-style facade, with erlang_python-compatible names and return shapes.

  From Erlang:

      {ok, 4.0} = py:call(math, sqrt, [16]),
      {ok, 45} = py:eval(<<"sum(range(10))">>),
      ok = py:exec(<<"x = 1">>),
      {error, {'ZeroDivisionError', <<"division by zero">>}} = py:eval(<<"1/0">>).

  Code may be a binary or a charlist (`py:eval("1 + 1")`). A Python exception
  comes back as `{error, {TypeAtom, Message}}`, where `TypeAtom` is the
  exception's class name when an atom of that name already exists (all of
  Python's standard exceptions qualify) and a binary otherwise: no atom is
  ever created from Python data. A sandbox block keeps the Elixir API's shape,
  `{error, {sandbox_blocked, Event, Message}}`.
  """

  @typedoc "An error as `:py` returns it."
  @type error :: {:error, {atom() | binary(), binary()} | term()}

  @doc "Calls `module.function(*args)`."
  @spec call(ErlangPython.name(), ErlangPython.name(), list()) :: {:ok, term()} | error()
  def call(module, function, args), do: call(module, function, args, %{})

  @doc "Calls `module.function(*args, **kwargs)`; `kwargs` is a map or proplist."
  @spec call(ErlangPython.name(), ErlangPython.name(), list(), map() | list()) ::
          {:ok, term()} | error()
  def call(module, function, args, kwargs), do: call(module, function, args, kwargs, 30_000)

  @doc "Calls with keyword arguments and a timeout in milliseconds (or `infinity`)."
  @spec call(ErlangPython.name(), ErlangPython.name(), list(), map() | list(), timeout()) ::
          {:ok, term()} | error()
  def call(module, function, args, kwargs, timeout) do
    module
    |> ErlangPython.call(function, args, kwargs: kwargs_map(kwargs), timeout: timeout)
    |> erlang_shape()
  end

  @doc "Evaluates an expression."
  @spec eval(iodata()) :: {:ok, term()} | error()
  def eval(code), do: eval(code, %{})

  @doc "Evaluates an expression with local variables (a map or proplist)."
  @spec eval(iodata(), map() | list()) :: {:ok, term()} | error()
  def eval(code, locals) do
    with {:ok, code} <- code_binary(code) do
      code |> ErlangPython.eval(kwargs_map(locals)) |> erlang_shape()
    end
  end

  @doc "Executes statements in `__main__`."
  @spec exec(iodata()) :: :ok | error()
  def exec(code) do
    with {:ok, code} <- code_binary(code) do
      code |> ErlangPython.exec() |> erlang_shape()
    end
  end

  defp kwargs_map(kwargs) when is_map(kwargs), do: kwargs

  defp kwargs_map(kwargs) when is_list(kwargs) do
    Map.new(kwargs, fn
      {key, value} -> {key, value}
      key when is_atom(key) -> {key, true}
    end)
  end

  defp kwargs_map(other), do: other

  defp code_binary(code) when is_binary(code), do: {:ok, code}

  defp code_binary(code) when is_list(code) do
    case :unicode.characters_to_binary(code) do
      binary when is_binary(binary) -> {:ok, binary}
      _ -> {:error, {:badarg, "code is not valid chardata"}}
    end
  end

  defp code_binary(code),
    do: {:error, {:badarg, "code must be a binary or a string, got: #{inspect(code)}"}}

  @doc false
  def erlang_shape({:error, %ErlangPython.Error{type: type, message: message}}),
    do: {:error, {type_atom(type), message}}

  def erlang_shape(other), do: other

  defp type_atom(type) do
    String.to_existing_atom(type)
  rescue
    ArgumentError -> type
  end
end
