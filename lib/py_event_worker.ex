defmodule :py_event_worker do
  @moduledoc """
  A process that drives an event queue (`ErlangPython.EventQueue`,
  `py_nif:event_loop_new/0`): made its worker with
  `py_nif:event_loop_set_worker/2`, it is told when events become pending.
  With a handler (`start_link/3`) it takes them and calls
  `Handler(Events)`; without one, the events stay for `py_nif:get_pending/1`.
  """

  use GenServer

  @doc "A worker for `Loop`, named `Name` (a label): `{ok, Pid}`."
  @spec start_link(binary(), reference()) :: {:ok, pid()}
  def start_link(name, loop), do: start_link(name, loop, nil)

  @doc "A worker that calls `Handler([{CallbackId, Type}])` for each batch of events."
  @spec start_link(binary(), reference(), ([{non_neg_integer(), atom()}] -> term()) | nil) ::
          {:ok, pid()}
  def start_link(name, loop, handler) when is_function(handler, 1) or is_nil(handler),
    do: GenServer.start_link(__MODULE__, {name, loop, handler})

  @doc "Stops the worker: `ok`."
  @spec stop(pid()) :: :ok
  def stop(pid), do: GenServer.stop(pid, :normal)

  @impl true
  def init({name, loop, handler}), do: {:ok, %{name: name, loop: loop, handler: handler}}

  @impl true
  def handle_info({:event_queue_ready, loop}, %{loop: loop, handler: handler} = state)
      when handler != nil do
    case ErlangPython.EventQueue.pending(loop) do
      [] -> :ok
      events -> handler.(events)
    end

    {:noreply, state}
  end

  def handle_info(_other, state), do: {:noreply, state}
end
