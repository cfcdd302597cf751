defmodule ErlangPython.Telemetry.Poller do
  @moduledoc """
  A process that emits the pool's events (`ErlangPython.Telemetry.emit_pool_stats/0`)
  at a fixed interval.

  The application starts one when configured with `:pool_stats_interval`
  (milliseconds; `nil`, the default, starts none):

      config :erlang_python, pool_stats_interval: 5_000

  Or start your own, in your supervision tree:

      children = [{ErlangPython.Telemetry.Poller, interval: 1_000}]

  | option | default | what |
  |---|---|---|
  | `:interval` | required | milliseconds between two emissions, a positive integer |
  | `:name` | none | a name to register the process under |

  The first emission comes one interval after the start.
  """

  use GenServer

  @doc false
  def child_spec(options) do
    %{id: Keyword.get(options, :name, __MODULE__), start: {__MODULE__, :start_link, [options]}}
  end

  @doc "Starts the poller; raises `ArgumentError` for a bad option."
  @spec start_link(keyword()) :: GenServer.on_start()
  def start_link(options) do
    options = Keyword.validate!(options, [:interval, :name])
    interval = check_interval!(Keyword.get(options, :interval), "the :interval option")

    case options[:name] do
      nil -> GenServer.start_link(__MODULE__, interval)
      name -> GenServer.start_link(__MODULE__, interval, name: name)
    end
  end

  @doc false
  # The application's poller, from `config :erlang_python, :pool_stats_interval`:
  # none when it is nil.
  def configured_child do
    case ErlangPython.Runtime.config(:pool_stats_interval) do
      nil ->
        []

      interval ->
        check_interval!(interval, "config :erlang_python, :pool_stats_interval")
        [{__MODULE__, interval: interval, name: __MODULE__}]
    end
  end

  defp check_interval!(interval, _what) when is_integer(interval) and interval > 0, do: interval

  defp check_interval!(interval, what) do
    raise ArgumentError,
          "#{what} must be a positive integer (milliseconds), got: #{inspect(interval)}"
  end

  @impl true
  def init(interval) do
    {:ok, schedule(interval)}
  end

  @impl true
  def handle_info(:emit, interval) do
    :ok = ErlangPython.Telemetry.emit_pool_stats()
    {:noreply, schedule(interval)}
  end

  defp schedule(interval) do
    Process.send_after(self(), :emit, interval)
    interval
  end
end
