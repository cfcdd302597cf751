defmodule ErlangPython.Isolated.Transport do
  @moduledoc false
  # How frames travel between an isolated context's server and its worker.
  #
  # The worker always runs as a port: the port gives its exit status (the
  # reason pending callers get), and closing it tells the worker to stop.
  # Frames travel through shared memory when it can be set up
  # (`transport: :shared_memory`, the default): two rings mapped by both
  # processes, the VM's side served by native/erlang_python_nif/src/
  # isolated_channel.rs, whose thread delivers each frame from the worker as
  # `{:isolated_frame, tag, frame}`. Otherwise (`transport: :pipes`, or no
  # /dev/shm) they travel over the port's pipes, `{:packet, 4}`.

  alias ErlangPython.Native

  defstruct [:port, :channel, :tag]

  @type t :: %__MODULE__{port: port(), channel: reference() | nil, tag: pos_integer()}

  @doc false
  # Starts `executable` with `args`; the frames' way is set up first, so the
  # worker maps the channel before it says it is ready.
  def open(executable, args, kind) do
    tag = System.unique_integer([:positive])

    {channel, args} =
      with :shared_memory <- kind,
           {:ok, channel, path} <- Native.isolated_channel_open(self(), tag) do
        {channel, args ++ ["channel=#{path}"]}
      else
        _pipes_or_no_shared_memory -> {nil, args}
      end

    port =
      Port.open({:spawn_executable, executable}, [
        :binary,
        :exit_status,
        :use_stdio,
        {:packet, 4},
        {:args, args}
      ])

    %__MODULE__{port: port, channel: channel, tag: tag}
  end

  @doc false
  # Sends one frame (iodata: a binary or a list of binaries). A worker that
  # is gone is reported by the port's exit status, not here.
  def send(%__MODULE__{channel: nil, port: port}, frame) do
    Port.command(port, frame)
    :ok
  end

  def send(%__MODULE__{channel: channel}, frame) do
    _ = Native.isolated_channel_write(channel, frame)
    :ok
  end

  @doc false
  # What a message means for this transport: `{:frame, binary}`,
  # `{:exit, status}`, `{:broken, why}` (the worker corrupted the shared
  # memory), or `:other` (including frames of an earlier worker's channel).
  def classify(%__MODULE__{port: port}, {port, {:data, frame}}), do: {:frame, frame}
  def classify(%__MODULE__{tag: tag}, {:isolated_frame, tag, frame}), do: {:frame, frame}
  def classify(%__MODULE__{port: port}, {port, {:exit_status, status}}), do: {:exit, status}
  def classify(%__MODULE__{tag: tag}, {:isolated_closed, tag, why}), do: {:broken, why}
  def classify(_transport, _message), do: :other

  @doc false
  # Ends the channel (waking its threads) and closes the port.
  def close(%__MODULE__{port: port, channel: channel}) do
    if channel, do: Native.isolated_channel_close(channel)

    try do
      Port.close(port)
    rescue
      ArgumentError -> :ok
    end

    :ok
  end

  @doc false
  # After the worker exited: the port is closed already; the channel's
  # threads still wait.
  def release(%__MODULE__{channel: nil}), do: :ok
  def release(%__MODULE__{channel: channel}), do: Native.isolated_channel_close(channel)
end
