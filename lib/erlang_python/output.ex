defmodule ErlangPython.Output do
  @moduledoc false
  # The Elixir ends of Python's sys.stdout, sys.stderr and logging (see
  # priv/_erlang_impl/_io.py). Registered as callbacks at start: a callback
  # runs with the calling process's group leader, so output lands where the
  # caller's would (ExUnit.CaptureIO, iex), and log records carry its :gl.
  require Logger

  @output "__erlang_python_output__"
  @log "__erlang_python_log__"

  @doc false
  def register do
    :ok = ErlangPython.register_function(@output, __MODULE__, :write)
    :ok = ErlangPython.register_function(@log, __MODULE__, :log)
  end

  @doc false
  def write(["stdout", text]), do: IO.write(text)
  def write(["stderr", text]), do: IO.write(:stderr, text)

  @doc false
  def log([level, message, metadata]) do
    Logger.log(elixir_level(level), message,
      python_logger: metadata["logger"],
      python_module: metadata["module"],
      python_function: metadata["function"],
      line: metadata["line"],
      file: metadata["file"]
    )
  end

  # Python's numeric levels: DEBUG 10, INFO 20, WARNING 30, ERROR 40, CRITICAL 50.
  defp elixir_level(level) when level >= 50, do: :critical
  defp elixir_level(level) when level >= 40, do: :error
  defp elixir_level(level) when level >= 30, do: :warning
  defp elixir_level(level) when level >= 20, do: :info
  defp elixir_level(_level), do: :debug
end
