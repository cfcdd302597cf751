defmodule :py_nif do
  @moduledoc """
  The feature probes of erlang_python's private NIF module, so code (and
  test suites) that check for optional features find out they are absent:
  this implementation runs one interpreter, without sub-interpreters. The
  rest of that module is private to erlang_python and has no equivalent.
  """

  @doc "`false`: no sub-interpreters with their own GIL."
  @spec owngil_supported() :: false
  def owngil_supported, do: ErlangPython.Interpreter.own_gil_supported?()

  @doc "`false`: no sub-interpreters."
  @spec subinterp_supported() :: false
  def subinterp_supported, do: ErlangPython.Interpreter.subinterpreters_supported?()

  @doc "Python's version string: `{ok, Binary}`."
  @spec version() :: {:ok, binary()} | {:error, term()}
  defdelegate version, to: :py
end
