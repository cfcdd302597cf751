defmodule ErlangPython.Error do
  @moduledoc """
  A Python exception, as data or raised.

  Non-bang functions return it inside `{:error, %ErlangPython.Error{}}`;
  `call!/4`, `eval!/3` and `exec!/2` raise it. Failures that are not Python
  exceptions (a timeout, an overloaded queue) are `ErlangPython.CallError`.

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
  # The exception a bang function raises for an `{:error, reason}`: this
  # struct for a Python exception, ErlangPython.CallError for a failure
  # that is not one.
  @spec from_reason(term()) :: Exception.t()
  def from_reason(%__MODULE__{} = error), do: error

  def from_reason({:sandbox_blocked, _event, message}),
    do: %__MODULE__{type: "RuntimeError", message: message}

  def from_reason({:badarg, text}), do: ArgumentError.exception(text)

  def from_reason(reason), do: %ErlangPython.CallError{reason: reason}
end
