defmodule ErlangPython.Error do
  @moduledoc """
  A Python exception, as data or raised.

  Non-bang functions return it inside `{:error, %ErlangPython.Error{}}`;
  `call!/4`, `eval!/3` and `exec!/2` raise it.

    * `:type` - the exception class name, e.g. `"ZeroDivisionError"`
    * `:message` - `str(exception)`
    * `:traceback` - the formatted Python traceback (may be empty)

      iex> {:error, error} = ErlangPython.eval("1/0")
      iex> {error.type, error.message}
      {"ZeroDivisionError", "division by zero"}
      iex> Exception.message(error)
      "ZeroDivisionError: division by zero"
  """

  defexception type: "Exception", message: "", traceback: ""

  @type t :: %__MODULE__{type: String.t(), message: String.t(), traceback: String.t()}

  @impl true
  def message(%__MODULE__{type: type, message: ""}), do: type
  def message(%__MODULE__{type: type, message: message}), do: "#{type}: #{message}"

  @doc false
  # The exception a bang function raises for an `{:error, reason}`.
  @spec from_reason(term()) :: Exception.t()
  def from_reason(%__MODULE__{} = error), do: error

  def from_reason({:sandbox_blocked, _event, message}),
    do: %__MODULE__{type: "RuntimeError", message: message}

  def from_reason(:timeout),
    do: %__MODULE__{type: "TimeoutError", message: "the Python call timed out"}

  def from_reason(:overloaded),
    do: %__MODULE__{
      type: "Overloaded",
      message: "too many requests are waiting for the interpreter"
    }

  def from_reason({:badarg, text}), do: ArgumentError.exception(text)

  def from_reason(reason),
    do: %__MODULE__{type: "ErlangPythonError", message: inspect(reason)}
end
