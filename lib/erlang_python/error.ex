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

  ## Tracebacks in messages

  `Exception.message/1` (what a raised error shows) is `"Type: message"`
  followed, on lines of their own, by the frames of the Python traceback
  that belong to the code being called, most recent call last, with their
  source lines:

      ** (ErlangPython.Error) KeyError: 'missing'
      Traceback (most recent call last):
        File "/srv/app/pricing.py", line 7, in price
          return table[key]
                 ~~~~~^^^^^

  Frames that are not the caller's own code are left out: this library's
  (its `_erlang_impl` and `erlang` packages) and those of code compiled from
  a string (`<string>`: the source of `eval/3` and `exec/2`, and the
  `lambda` an expression with locals is wrapped in). The `:traceback` field
  keeps the whole traceback, untouched. `inspect/1` shows that field on
  lines of its own too, so iex prints it readably.
  """

  defexception type: "Exception", message: "", traceback: ""

  @type t :: %__MODULE__{type: String.t(), message: String.t(), traceback: String.t()}

  @impl true
  def message(%__MODULE__{} = error) do
    case frames(error) do
      [] -> headline(error)
      frames -> Enum.join([headline(error), "Traceback (most recent call last):" | frames], "\n")
    end
  end

  @doc """
  `"Type: message"` (or the bare type when the message is empty), without
  the traceback.

      iex> ErlangPython.Error.headline(%ErlangPython.Error{type: "KeyError", message: "'k'"})
      "KeyError: 'k'"
  """
  @spec headline(t()) :: String.t()
  def headline(%__MODULE__{type: type, message: ""}), do: type
  def headline(%__MODULE__{type: type, message: message}), do: "#{type}: #{message}"

  @doc """
  The traceback's frames from the caller's own code, each as its text (the
  `File "...", line N, in name` line and the source lines after it), most
  recent call last; see "Tracebacks in messages".

  Only the last exception of a chain (`During handling of the above
  exception...`) is looked at: it is the one raised.
  """
  @spec frames(t()) :: [String.t()]
  def frames(%__MODULE__{traceback: traceback}) when is_binary(traceback) and traceback != "" do
    traceback
    |> String.split("\n")
    |> last_section()
    |> group_frames([])
    |> Enum.reject(&hidden_frame?/1)
  end

  def frames(%__MODULE__{}), do: []

  @header "Traceback (most recent call last):"

  defp last_section(lines) do
    case lines |> Enum.reverse() |> Enum.split_while(&(&1 != @header)) do
      {_, []} -> []
      {after_header, _} -> Enum.reverse(after_header)
    end
  end

  # A frame is its `  File ...` line and the deeper-indented lines below it
  # (source, caret markers, "[Previous line repeated ...]"); the first line
  # indented less is the exception itself, and ends the frames.
  defp group_frames([~s(  File ") <> _ = line | rest], acc) do
    {body, rest} = Enum.split_while(rest, &String.starts_with?(&1, "    "))
    group_frames(rest, [Enum.join([line | body], "\n") | acc])
  end

  defp group_frames(["  [" <> _ = line | rest], [frame | acc]),
    do: group_frames(rest, [frame <> "\n" <> line | acc])

  defp group_frames(_, acc), do: Enum.reverse(acc)

  defp hidden_frame?(frame) do
    case Regex.run(~r/^  File "([^"]*)"/, frame) do
      [_, "<string>"] -> true
      [_, file] -> library_file?(file)
      nil -> false
    end
  end

  # This library's own Python code: priv/_erlang_impl and priv/erlang.
  defp library_file?(file),
    do: file =~ ~r{/_erlang_impl/[^/]+\.py$} or file =~ ~r{/priv/erlang/[^/]+\.py$}

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

defimpl Inspect, for: ErlangPython.Error do
  import Inspect.Algebra

  # The traceback as a heredoc, so iex shows its lines as lines rather than
  # one string full of "\n" (and the output still reads as Elixir).
  def inspect(%ErlangPython.Error{traceback: traceback} = error, opts)
      when is_binary(traceback) and traceback != "" do
    if String.contains?(traceback, ~s(""")) or not String.printable?(traceback) do
      Inspect.Any.inspect(error, opts)
    else
      body =
        traceback
        |> String.replace("\\", "\\\\")
        |> String.replace("\#{", "\\\#{")
        |> String.trim_trailing("\n")

      concat([
        "%ErlangPython.Error{type: ",
        to_doc(error.type, opts),
        ", message: ",
        to_doc(error.message, opts),
        ", traceback: \"\"\"\n",
        body,
        "\n\"\"\"}"
      ])
    end
  end

  def inspect(error, opts), do: Inspect.Any.inspect(error, opts)
end
