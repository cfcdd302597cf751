defmodule ErlangPython.Callbacks do
  @moduledoc false
  # Runs Elixir functions that Python calls (see ErlangPython.register_function/2).
  #
  # The NIF sends {:erlang_python_callback, id, target, args, kwargs, caller}
  # here (kwargs: a map with string keys, or nil when Python passed none);
  # each call runs in a fresh monitored process, so a raise, an exit or a
  # kill in the callback never reaches the caller or the runtime: it becomes
  # an answer that Python raises as erlang.CallbackError.
  #
  # `caller` is the Elixir process whose Python call led to this callback
  # (nil when a Python thread of its own calls). The callback writes to the
  # caller's group leader, and ports it opens and returns are handed to the
  # caller: a port dies with its owner, and the callback's process ends as
  # soon as it answers.
  use GenServer

  alias ErlangPython.Native

  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)

  @impl true
  def init(_opts) do
    :ok = Native.set_callback_handler(self())
    {:ok, %{}}
  end

  @impl true
  def handle_info({:erlang_python_callback, id, target, args, kwargs, nil}, running) do
    # From a Python thread of its own: the thread waiting for the answer
    # runs this process's requests itself (the request that started the
    # thread may hold its worker, joining it), so the NIF must know the
    # process before it makes any.
    {pid, monitor} =
      spawn_monitor(fn ->
        receive do: (:named -> run(id, target, args, kwargs, nil))
      end)

    :ok = Native.callback_runner(id, pid)
    send(pid, :named)
    {:noreply, Map.put(running, monitor, id)}
  end

  def handle_info({:erlang_python_callback, id, target, args, kwargs, caller}, running) do
    {_pid, monitor} = spawn_monitor(fn -> run(id, target, args, kwargs, caller) end)
    {:noreply, Map.put(running, monitor, id)}
  end

  def handle_info({:DOWN, monitor, :process, _pid, reason}, running) do
    {id, running} = Map.pop(running, monitor)

    # A normal exit has answered already; anything else (a kill, a linked
    # exit) answers now. An id that was answered or timed out is ignored.
    if id != nil and reason != :normal do
      Native.callback_reply(id, {:error, "the callback process exited: #{inspect(reason)}"})
    end

    {:noreply, running}
  end

  def handle_info(_other, running), do: {:noreply, running}

  @doc false
  # In a callback's process: the Elixir process whose Python call led to it
  # (nil for a Python thread of its own).
  def caller, do: Process.get(:"$erlang_python_caller")

  defp run(id, target, args, kwargs, caller) do
    adopt_group_leader(caller)
    Process.put(:"$erlang_python_caller", caller)

    answer =
      try do
        result = invoke(target, args, kwargs)
        hand_over_ports(result, caller)
        {:ok, result}
      rescue
        error -> {:error, Exception.format_banner(:error, error, __STACKTRACE__)}
      catch
        kind, reason -> {:error, Exception.format_banner(kind, reason, __STACKTRACE__)}
      end

    Native.callback_reply(id, answer)
  end

  defp adopt_group_leader(caller) when is_pid(caller) do
    case Process.info(caller, :group_leader) do
      {:group_leader, leader} -> Process.group_leader(self(), leader)
      nil -> :ok
    end
  end

  defp adopt_group_leader(nil), do: :ok

  defp hand_over_ports(result, caller) when is_pid(caller) do
    {:links, links} = Process.info(self(), :links)
    owned = for link <- links, is_port(link), do: link

    if owned != [] do
      for port <- owned, contains?(result, port) do
        Port.connect(port, caller)
        Process.unlink(port)
      end
    end

    :ok
  end

  defp hand_over_ports(_result, nil), do: :ok

  defp contains?(term, term), do: true
  defp contains?([head | tail], port), do: contains?(head, port) or contains?(tail, port)
  defp contains?(tuple, port) when is_tuple(tuple), do: contains?(Tuple.to_list(tuple), port)

  defp contains?(map, port) when is_map(map),
    do: Enum.any?(map, fn {key, value} -> contains?(key, port) or contains?(value, port) end)

  defp contains?(_term, _port), do: false

  # Targets that take keyword arguments apart get them as a second argument
  # (%{} when none); the others, as before, as a map after the positional
  # arguments when there are any.
  defp invoke(fun, args, kwargs) when is_function(fun, 2), do: fun.(args, kwargs || %{})
  defp invoke(fun, args, kwargs) when is_function(fun, 1), do: fun.(with_kwargs(args, kwargs))

  defp invoke({module, function, :kwargs}, args, kwargs),
    do: apply(module, function, [args, kwargs || %{}])

  defp invoke({module, function}, args, kwargs),
    do: apply(module, function, [with_kwargs(args, kwargs)])

  defp with_kwargs(args, nil), do: args
  defp with_kwargs(args, kwargs), do: args ++ [kwargs]
end
