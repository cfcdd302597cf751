defmodule ErlangPython.Logging do
  @moduledoc """
  Python's `logging`, into Elixir's `Logger`.

  Records logged by Python code always reach `Logger` (with the Python
  logger's name, module, function and line as metadata); Python's own level
  filtering applies first, and its root logger's default level is
  `WARNING`. `configure/1` sets that level and the format of the message.

      iex> ErlangPython.Logging.configure(level: :info, format: "%(name)s: %(message)s")
      :ok

  From Python, `erlang.setup_logging(level=20, format=None)` does the same,
  and `erlang.ErlangHandler` is the handler class, for loggers that do not
  propagate to the root.

  | Python level | Elixir level |
  |--------------|--------------|
  | `DEBUG` (10) | `:debug` |
  | `INFO` (20) | `:info` |
  | `WARNING` (30) | `:warning` |
  | `ERROR` (40) | `:error` |
  | `CRITICAL` (50) | `:critical` |
  """

  @levels %{debug: 10, info: 20, warning: 30, warn: 30, error: 40, critical: 50}

  @doc """
  Sets the root Python logger's level and the message format.

    * `:level` - `:debug` (default), `:info`, `:warning`, `:error`,
      `:critical`, or a Python level number.
    * `:format` - a `logging.Formatter` format (default `"%(message)s"`).
  """
  @spec configure(keyword()) :: :ok | {:error, ErlangPython.reason()}
  def configure(opts \\ []) do
    opts = Keyword.validate!(opts, level: :debug, format: nil)

    with {:ok, level} <- level_number(opts[:level]),
         {:ok, format} <- format_text(opts[:format]),
         {:ok, _handler} <-
           ErlangPython.call("_erlang_impl._io", :configure, [level, format], decode: false) do
      :ok
    end
  end

  defp level_number(level) when is_integer(level) and level >= 0, do: {:ok, level}

  defp level_number(level) do
    case Map.fetch(@levels, level) do
      {:ok, number} -> {:ok, number}
      :error -> {:error, {:badarg, "unknown log level: #{inspect(level)}"}}
    end
  end

  defp format_text(nil), do: {:ok, nil}
  defp format_text(format) when is_binary(format), do: {:ok, format}
  defp format_text(format) when is_list(format), do: {:ok, List.to_string(format)}

  defp format_text(format),
    do: {:error, {:badarg, "format must be a string, got: #{inspect(format)}"}}
end
