defmodule :py_preload do
  @moduledoc """
  Erlang facade for code every new context runs (`ErlangPython.Preload`).

      ok = py_preload:set_code(<<"import json">>),
      {ok, Ctx} = py_context:new(\#{}),
      {ok, <<"[1]">>} = py:eval(Ctx, <<"json.dumps([1])">>).
  """

  alias ErlangPython.Preload

  @doc "Sets the code."
  @spec set_code(iodata()) :: :ok | {:error, term()}
  defdelegate set_code(code), to: Preload, as: :set

  @doc "The code, or `undefined`."
  @spec get_code() :: binary() | :undefined
  def get_code, do: Preload.code() || :undefined

  @doc "Removes the code."
  @spec clear_code() :: :ok
  defdelegate clear_code, to: Preload, as: :clear

  @doc "Whether code is set."
  @spec has_preload() :: boolean()
  defdelegate has_preload, to: Preload, as: :set?
end
