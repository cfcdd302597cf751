defmodule ErlangPython.Context do
  @moduledoc """
  An isolated Python namespace.

  Pass `context: ctx` to `ErlangPython.call/4` (with `:__main__`),
  `eval/3`, `exec/2` and `stream_eval/3`: names defined in one context are
  invisible to others and to `__main__`. Modules stay shared, since Python
  has one `sys.modules`.

      iex> {:ok, a} = ErlangPython.Context.new()
      iex> {:ok, b} = ErlangPython.Context.new()
      iex> ErlangPython.exec("x = 'in a'", context: a)
      :ok
      iex> ErlangPython.eval("x", %{}, context: a)
      {:ok, "in a"}
      iex> {:error, %ErlangPython.Error{type: "NameError"}} = ErlangPython.eval("x", %{}, context: b)

  A context is freed when its last reference is garbage-collected. For
  tests, `use ErlangPython.Case` gives each test its own.
  """

  @enforce_keys [:object]
  defstruct [:object]

  @type t :: %__MODULE__{object: ErlangPython.Object.t()}

  @doc "A new, empty namespace."
  @spec new() :: {:ok, t()} | {:error, ErlangPython.reason()}
  def new do
    with {:ok, object} <- ErlangPython.call("_erlang_impl._context", :new, [], decode: false) do
      {:ok, %__MODULE__{object: object}}
    end
  end
end
