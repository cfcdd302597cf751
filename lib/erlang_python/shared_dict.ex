defmodule ErlangPython.SharedDict do
  @moduledoc """
  A dictionary both Elixir and Python code read and write.

      iex> {:ok, dict} = ErlangPython.SharedDict.new()
      iex> :ok = ErlangPython.SharedDict.put(dict, "port", 8080)
      iex> :ok = ErlangPython.exec(\"""
      ...> import erlang
      ...> def next_port(handle):
      ...>     sd = erlang.SharedDict(handle)
      ...>     sd['port'] += 1
      ...>     return sd['port']
      ...> \""")
      iex> ErlangPython.call(:__main__, :next_port, [dict])
      {:ok, 8081}
      iex> ErlangPython.SharedDict.get(dict, "port")
      8081
      iex> ErlangPython.SharedDict.get(dict, "missing", :default)
      :default

  Pass the dict to Python as an argument and wrap it: `erlang.SharedDict(handle)`
  behaves like a `dict` (`sd[key]`, `sd[key] = value`, `del sd[key]`,
  `key in sd`, `sd.keys()`, `sd.get(key, default)`). Values are pickled on
  the way in, so what each side reads is a copy; each operation is atomic.
  Values must be picklable once converted (pids and references are not).

  The dict lives as long as any reference to it, from Elixir or Python;
  `destroy/1` empties it at once, after which every operation raises
  `ArgumentError`.
  """

  alias ErlangPython.Object

  @module "_erlang_impl._shared_dict"

  @typedoc "A shared dictionary (a handle to its Python store)."
  @type t :: Object.t()

  @doc "A new, empty dictionary."
  @spec new() :: {:ok, t()} | {:error, ErlangPython.reason()}
  def new, do: ErlangPython.call(@module, :new, [], decode: false)

  @doc "The value under `key`, or `default`."
  @spec get(t(), term(), term()) :: term()
  def get(dict, key, default \\ nil) do
    case method(dict, :lookup, [key]) do
      {true, value} -> value
      {false, _} -> default
    end
  end

  @doc "Stores `value` under `key`."
  @spec put(t(), term(), term()) :: :ok
  def put(dict, key, value) do
    nil = method(dict, :set, [key, value])
    :ok
  end

  @doc "Removes `key`; `:ok` also when it was absent."
  @spec delete(t(), term()) :: :ok
  def delete(dict, key) do
    nil = method(dict, :delete, [key])
    :ok
  end

  @doc "The keys, in insertion order."
  @spec keys(t()) :: [term()]
  def keys(dict), do: method(dict, :keys, [])

  @doc "Empties the dictionary for good; later operations raise. Idempotent."
  @spec destroy(t()) :: :ok
  def destroy(dict) do
    nil = method(dict, :destroy, [], true)
    :ok
  end

  defp method(dict, name, args, allow_destroyed \\ false)

  defp method(%Object{} = dict, name, args, _allow_destroyed) do
    case ErlangPython.call_method(dict, name, args) do
      {:ok, value} ->
        value

      {:error, %ErlangPython.Error{type: "DestroyedError"}} ->
        raise ArgumentError, "this SharedDict was destroyed"

      {:error, %ErlangPython.Error{type: "AttributeError"}} ->
        raise ArgumentError, "not a SharedDict: #{inspect(dict)}"

      {:error, reason} ->
        raise ErlangPython.Error.from_reason(reason)
    end
  end

  defp method(other, _name, _args, _allow_destroyed),
    do: raise(ArgumentError, "not a SharedDict: #{inspect(other)}")
end
