defmodule ErlangPython.CallError do
  @moduledoc """
  A call that failed for a reason other than a Python exception.

  Bang functions (`ErlangPython.call!/4`, ...) raise it where the non-bang
  function returns `{:error, reason}` with a `reason` that is not an
  `ErlangPython.Error`; `:reason` is that same term:

    * `:timeout` - no answer within the call's `:timeout`
    * `:overloaded` - too many requests were waiting for the interpreter
    * `:not_started` - the interpreter is not running
    * `{:too_deep, limit}`, `:duplicate_key`, `{:integer_too_large, bits}` -
      a value that cannot convert (see the type conversion guide)
    * `{:nodedown, node}`, `{:erpc, reason}` - a `node:` call that could not
      reach its node
    * `{:context_down, pid}` - the context process given as `:context` is
      not running
    * `{:internal_error, text}` - a bug in erlang_python (please report it)

  A Python exception raises `ErlangPython.Error` instead, and a bad argument
  `ArgumentError`.

      iex> {:error, :timeout} = ErlangPython.eval("__import__('time').sleep(1)", %{}, timeout: 10)
      iex> Exception.message(%ErlangPython.CallError{reason: :timeout})
      "the Python call timed out"
  """

  defexception [:reason]

  @type t :: %__MODULE__{reason: term()}

  @impl true
  def message(%__MODULE__{reason: reason}), do: describe(reason)

  defp describe(:timeout), do: "the Python call timed out"
  defp describe(:overloaded), do: "too many requests are waiting for the interpreter (overloaded)"
  defp describe(:not_started), do: "the Python interpreter is not running"
  defp describe({:too_deep, limit}), do: "a value is nested more than #{limit} levels deep"
  defp describe(:duplicate_key), do: "two Python keys convert to the same Erlang term"

  defp describe({:integer_too_large, bits}),
    do: "an integer of #{bits} bits is too large for an Erlang integer"

  defp describe({:nodedown, node}), do: "node #{inspect(node)} is not reachable"

  defp describe({:context_down, pid}),
    do: "the context process #{inspect(pid)} is not running"

  defp describe({:python_init_failed, text}), do: "Python could not start: #{text}"
  defp describe({:internal_error, text}), do: "internal error in erlang_python: #{text}"
  defp describe(reason), do: "the Python call failed: #{inspect(reason)}"
end
