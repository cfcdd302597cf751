defmodule ErlangPython.Output do
  @moduledoc false
  # The Elixir ends of Python's sys.stdout, sys.stderr and logging (see
  # priv/_erlang_impl/_io.py). Registered as callbacks at start: a callback
  # runs with the calling process's group leader, so output lands where the
  # caller's would (ExUnit.CaptureIO, iex), and log records carry its :gl.
  require Logger

  @output "__erlang_python_output__"
  @log "__erlang_python_log__"
  @metadata "__erlang_python_logger_metadata__"

  @doc false
  def register do
    :ok = ErlangPython.register_function(@output, __MODULE__, :write)
    :ok = ErlangPython.register_function(@log, __MODULE__, :log)
    :ok = ErlangPython.register_function(@metadata, __MODULE__, :logger_metadata)
  end

  @doc false
  # For a record Python makes during a call: the calling process's
  # Logger.metadata (string keys; values that are strings, numbers, atoms,
  # pids or references) and Logger's level as a Python level number.
  def logger_metadata([]) do
    metadata =
      for {key, value} <- caller_metadata(ErlangPython.Callbacks.caller()),
          is_atom(key) and plain?(value),
          into: %{},
          do: {Atom.to_string(key), value}

    {metadata, python_level(Logger.level())}
  end

  defp caller_metadata(caller) when is_pid(caller) do
    with {:dictionary, dictionary} <- Process.info(caller, :dictionary),
         {_, metadata} when is_map(metadata) <- List.keyfind(dictionary, :"$logger_metadata$", 0) do
      metadata
    else
      _ -> %{}
    end
  end

  defp caller_metadata(_caller), do: %{}

  defp plain?(value),
    do:
      is_binary(value) or is_number(value) or is_atom(value) or is_pid(value) or
        is_reference(value)

  @doc false
  def python_level(level) when level in [:debug], do: 10
  def python_level(level) when level in [:info, :notice], do: 20
  def python_level(level) when level in [:warning, :warn], do: 30
  def python_level(level) when level in [:error], do: 40
  def python_level(_level), do: 50

  @doc false
  def write(["stdout", text]), do: IO.write(text)
  def write(["stderr", text]), do: IO.write(:stderr, text)

  @doc false
  def log([level, message, metadata]) do
    Logger.log(
      elixir_level(level),
      message,
      caller_keys(metadata["erlang_metadata"]) ++
        [
          python_logger: metadata["logger"],
          python_module: metadata["module"],
          python_function: metadata["function"],
          line: metadata["line"],
          file: metadata["file"]
        ]
    )
  end

  # The caller's metadata the record carried, back under its own keys
  # (atoms that exist: they were atoms when they left).
  defp caller_keys(metadata) when is_map(metadata) do
    for {key, value} <- metadata, is_binary(key), atom = existing_atom(key), do: {atom, value}
  end

  defp caller_keys(_metadata), do: []

  defp existing_atom(key) do
    String.to_existing_atom(key)
  rescue
    ArgumentError -> nil
  end

  # Python's numeric levels: DEBUG 10, INFO 20, WARNING 30, ERROR 40, CRITICAL 50.
  defp elixir_level(level) when level >= 50, do: :critical
  defp elixir_level(level) when level >= 40, do: :error
  defp elixir_level(level) when level >= 30, do: :warning
  defp elixir_level(level) when level >= 20, do: :info
  defp elixir_level(_level), do: :debug
end
