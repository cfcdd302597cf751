defmodule ErlangPython.Sigils do
  @moduledoc """
  Python in a sigil, for iex and scripts.

      import ErlangPython.Sigils

      ~PY"sum(range(10))"          #=> 45   (Elixir 1.15 and later)
      ~P"sum(range(10))"           #=> 45   (any Elixir: one-letter sigils)

  A block runs in `__main__` and returns the value of its last line when
  that line is an expression (`nil` otherwise); definitions persist:

      ~P\"\"\"
      def area(r):
          return 3.14159 * r * r
      area(2)
      \"\"\"
      #=> 12.56636

  Errors raise `ErlangPython.Error`. Interpolation is not supported: pass
  values with `ErlangPython.eval/3` instead.
  """

  @doc "Runs the Python block and returns its last expression's value."
  @spec sigil_PY(String.t(), charlist()) :: term()
  def sigil_PY(code, _modifiers), do: run!(code)

  @doc "`~P`, the same as `~PY`, for Elixir versions without multi-letter sigils."
  @spec sigil_P(String.t(), charlist()) :: term()
  def sigil_P(code, _modifiers), do: run!(code)

  defp run!(code) when is_binary(code) do
    case ErlangPython.call("_erlang_impl._sigil", :run, [code]) do
      {:ok, value} -> value
      {:error, reason} -> raise ErlangPython.Error.from_reason(reason)
    end
  end
end
