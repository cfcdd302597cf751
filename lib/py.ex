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
  def call(module, function, args, kwargs), do: call(module, function, args, kwargs, [])

  @doc """
  Calls with keyword arguments and either a timeout in milliseconds (or
  `infinity`) or options `[{timeout, Ms}, {node, Node}]`.
  """
  @spec call(ErlangPython.name(), ErlangPython.name(), list(), map() | list(), timeout() | list()) ::
          {:ok, term()} | error()
  def call(module, function, args, kwargs, options) when is_list(options) do
    module
    |> ErlangPython.call(function, args, [kwargs: kwargs_map(kwargs)] ++ options)
    |> erlang_shape()
  end

  def call(module, function, args, kwargs, timeout) do
    module
    |> ErlangPython.call(function, args, kwargs: kwargs_map(kwargs), timeout: timeout)
    |> erlang_shape()
  end

  @doc """
  Evaluates an expression with options: `[{timeout, Ms}, {node, Node}]`
  (`node` runs it on another connected node).
  """
  @spec eval(iodata(), map() | list(), list()) :: {:ok, term()} | error()
  def eval(code, locals, options) when is_list(options) do
    with {:ok, code} <- code_binary(code) do
      code |> ErlangPython.eval(kwargs_map(locals), options) |> erlang_shape()
    end
  end

  @doc "Executes statements with options: `[{timeout, Ms}, {node, Node}]`."
  @spec exec(iodata(), list()) :: :ok | error()
  def exec(code, options) when is_list(options) do
    with {:ok, code} <- code_binary(code) do
      code |> ErlangPython.exec(options) |> erlang_shape()
    end
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

  @doc """
  Makes `Fun` callable from Python as `erlang.Name`; `Fun` takes the
  argument list: `py:register_function(run_shell, fun([Cmd]) -> ... end)`.
  """
  @spec register_function(ErlangPython.name(), (list() -> term())) :: :ok | {:error, term()}
  defdelegate register_function(name, fun), to: ErlangPython

  @doc "Makes `Module:Function(Args)` callable from Python as `erlang.Name`."
  @spec register_function(ErlangPython.name(), module(), atom()) :: :ok | {:error, term()}
  defdelegate register_function(name, module, function), to: ErlangPython

  @doc "Removes a registered function."
  @spec unregister_function(ErlangPython.name()) :: :ok | {:error, term()}
  defdelegate unregister_function(name), to: ErlangPython

  @doc "All items of a Python generator or iterable, as `{ok, List}`."
  @spec stream(ErlangPython.name(), ErlangPython.name(), list()) :: {:ok, list()} | error()
  def stream(module, function, args),
    do: collect(fn -> ErlangPython.stream(module, function, args) end)

  @doc "All items of the generator or iterable an expression evaluates to."
  @spec stream_eval(iodata()) :: {:ok, list()} | error()
  def stream_eval(code) do
    with {:ok, code} <- code_binary(code), do: collect(fn -> ErlangPython.stream_eval(code) end)
  end

  defp collect(stream) do
    {:ok, Enum.to_list(stream.())}
  rescue
    error in ErlangPython.Error -> erlang_shape({:error, error})
  end

  defp kwargs_map(kwargs) when is_map(kwargs), do: kwargs

  # Proplist semantics: a bare atom means `true`. Anything else is passed on
  # unchanged, for ErlangPython to reject with {:badarg, ...}.
  defp kwargs_map(kwargs) when is_list(kwargs) do
    if Enum.all?(kwargs, &(match?({_, _}, &1) or is_atom(&1))) do
      Map.new(kwargs, fn
        {key, value} -> {key, value}
        key -> {key, true}
      end)
    else
      kwargs
    end
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

  # Python's builtin exception classes (3.11). Listing them here as atoms
  # makes those atoms exist as soon as this module is loaded, so the standard
  # names always come back as atoms; any other name becomes an atom only if
  # that atom already exists. No atom is ever created from Python data.
  @standard_exceptions ~w(
    ArithmeticError AssertionError AttributeError BaseException BaseExceptionGroup
    BlockingIOError BrokenPipeError BufferError BytesWarning ChildProcessError
    ConnectionAbortedError ConnectionError ConnectionRefusedError ConnectionResetError
    DeprecationWarning EOFError EncodingWarning EnvironmentError Exception ExceptionGroup
    FileExistsError FileNotFoundError FloatingPointError FutureWarning GeneratorExit IOError
    ImportError ImportWarning IndentationError IndexError InterruptedError IsADirectoryError
    KeyError KeyboardInterrupt LookupError MemoryError ModuleNotFoundError NameError
    NotADirectoryError NotImplementedError OSError OverflowError PendingDeprecationWarning
    PermissionError ProcessLookupError RecursionError ReferenceError ResourceWarning
    RuntimeError RuntimeWarning StopAsyncIteration StopIteration SyntaxError SyntaxWarning
    SystemError SystemExit TabError TimeoutError TypeError UnboundLocalError
    UnicodeDecodeError UnicodeEncodeError UnicodeError UnicodeTranslateError UnicodeWarning
    UserWarning ValueError Warning ZeroDivisionError
  )a

  @doc false
  @spec standard_exceptions() :: [atom()]
  def standard_exceptions, do: @standard_exceptions

  defp type_atom(type) do
    String.to_existing_atom(type)
  rescue
    ArgumentError -> type
  end
end
