defmodule ErlangPython.Preload do
  @moduledoc """
  Python code run in every new context as it starts.

      iex> :ok = ErlangPython.Preload.set("GREETING = 'hi'\\ndef shout(s):\\n    return s.upper()")
      iex> {:ok, ctx} = ErlangPython.ContextServer.start_link()
      iex> ErlangPython.eval("shout(GREETING)", %{}, context: ctx)
      {:ok, "HI"}
      iex> ErlangPython.Preload.clear()
      :ok

  Each context process (`ErlangPython.ContextServer`, and so each pool
  member) runs the code in its own namespace when it starts, after the
  registered imports (`ErlangPython.Imports`): definitions are per context,
  and a process's environment in a context (`ErlangPython.Context.process/1`)
  starts as a copy that includes them. Changing or clearing the code affects
  only contexts started afterwards. Code that raises makes the context's
  start fail.

  Also configurable: `config :erlang_python, preload: "import json"`.
  """

  @doc "Sets the code new contexts run."
  @spec set(iodata()) :: :ok | {:error, {:badarg, String.t()}}
  def set(code) do
    case :unicode.characters_to_binary(code) do
      code when is_binary(code) ->
        Application.put_env(:erlang_python, :preload, code)

      _ ->
        {:error, {:badarg, "preload code must be UTF-8 text"}}
    end
  rescue
    ArgumentError -> {:error, {:badarg, "preload code must be iodata, got: #{inspect(code)}"}}
  end

  @doc "The code new contexts run, or `nil`."
  @spec code() :: String.t() | nil
  def code, do: ErlangPython.Runtime.config(:preload)

  @doc "Removes the code; `:ok` also when none was set."
  @spec clear() :: :ok
  def clear, do: Application.delete_env(:erlang_python, :preload)

  @doc "Whether code is set."
  @spec set?() :: boolean()
  def set?, do: code() != nil
end
