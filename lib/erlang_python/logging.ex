defmodule ErlangPython.Logging do
  @moduledoc """
  Python's `logging`, into Elixir's `Logger`.

  Records logged by Python code always reach `Logger` (with the Python
  logger's name, module, function and line as metadata); Python's own level
  filtering applies first. Its root logger's level follows Logger's: set
  when the application starts, and again each time Python makes a record
  during a call, so after `Logger.configure(level: ...)` Python catches up
  at its next record (`sync_level/0` at once). `configure/1` sets a level
  of its own instead (and the format of the message).

  A record made during a call carries the calling process's
  `Logger.metadata/0`: as attributes of the Python record (a format may use
  `%(request_id)s`; `record.erlang_metadata` holds them all) and back on the
  Logger event, under the same keys. Values that are strings, numbers,
  atoms, pids or references travel; others are left out.

      Logger.metadata(request_id: "req-42")
      ErlangPython.exec("import logging; logging.getLogger('app').warning('hello')")
      # a Logger warning "hello" with request_id: "req-42" in its metadata

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
  Sets Python's root logger level to Logger's current level, and makes it
  follow Logger's again after `configure/1`.
  """
  @spec sync_level() :: :ok | {:error, ErlangPython.reason()}
  def sync_level do
    level = ErlangPython.Output.python_level(Logger.level())

    with {:ok, nil} <- ErlangPython.call("_erlang_impl._io", :follow_level, [level]), do: :ok
  end

  @doc """
  Sets the root Python logger's level and the message format; the level
  stops following Logger's (`sync_level/0` restores that).

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
