defmodule ErlangPython.Venv do
  @moduledoc false
  # See ErlangPython.activate_venv/1; the Python side is _erlang_impl._venv.

  @module "_erlang_impl._venv"

  def activate(path) when is_binary(path) do
    case ErlangPython.call(@module, :activate, [Path.expand(path)]) do
      {:ok, nil} ->
        {:error, {:invalid_venv, path}}

      {:ok, info} ->
        {:ok, info}

      {:error, %ErlangPython.Error{type: "ValueError", message: message}} ->
        {:error, {:incompatible_venv, message}}

      {:error, _} = error ->
        error
    end
  end

  def activate(path), do: {:error, {:invalid_venv, path}}

  def deactivate do
    with {:ok, nil} <- ErlangPython.call(@module, :deactivate, []), do: :ok
  end

  def info do
    with {:ok, info} <- ErlangPython.call(@module, :info, []), do: info
  end
end
