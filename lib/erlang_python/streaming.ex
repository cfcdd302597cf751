defmodule ErlangPython.Streaming do
  @moduledoc """
  A Python generator's items pushed to a process as messages, as they are
  produced.

      iex> {:ok, ref} = ErlangPython.Streaming.start(:builtins, :range, [3])
      iex> for _ <- 1..4, do: receive(do: ({:py_stream, ^ref, event} -> event))
      [{:data, 0}, {:data, 1}, {:data, 2}, :done]

  The owner (the caller, or `owner:`) receives `{:py_stream, ref, {:data,
  item}}` for each item, then `{:py_stream, ref, :done}`, or `{:py_stream,
  ref, {:error, text}}` when calling the function or iterating fails (`text`
  is the exception as `"Type: message"`; the items produced before it are
  delivered first), or `{:py_stream, ref, {:error, :timeout}}` when Python
  took longer than `:timeout` for a chunk (as a call's timeout reads). Generators, iterators, iterables
  and async generators all work. `cancel/1` stops the iteration (the
  generator is closed, its `finally` blocks run) and the owner then
  receives `{:py_stream, ref, {:error, "cancelled"}}`; the stream also
  stops if the owner exits. `ErlangPython.stream/4` is the pull-based,
  `Enumerable` form.

  ## Options

    * `:owner` - the process that receives the events (default: the caller).
    * `:kwargs` - keyword arguments for the function.
    * `:context` - where the function is looked up and run, as for
      `ErlangPython.call/4` (a `__main__` function of the caller's own
      environment needs `context: ErlangPython.Context.process()`).
    * `:chunk_size` - items pulled from Python at a time (default 1: each
      item is sent as soon as it is produced; larger chunks cost fewer round
      trips to the interpreter, and an item waits for its chunk to fill).
    * `:max_delay` - with a larger `:chunk_size`, milliseconds an item may
      wait for its chunk to fill before the chunk is sent anyway (default
      `nil`: no limit); see `ErlangPython.stream/4`.
    * `:timeout` - milliseconds Python may take to produce a chunk
      (default 30_000, or `:infinity`).
  """

  @table :erlang_python_streams

  @doc "Starts streaming `module.function(*args)`; returns the events' reference."
  @spec start(ErlangPython.name(), ErlangPython.name(), list(), keyword()) ::
          {:ok, reference()} | {:error, {:badarg, String.t()}}
  def start(module, function, args \\ [], opts \\ []) do
    with {:ok, opts} <- validate(opts) do
      ref = make_ref()
      owner = opts[:owner]
      call_opts = Keyword.take(opts, [:kwargs, :context, :max_delay, :timeout])
      # The driver registers itself before it runs, so cancel/1 finds it
      # even when called right after start/4 returns.
      parent = self()

      {pid, monitor} =
        spawn_monitor(fn ->
          :ok = ErlangPython.Registry.register(@table, {ref, self()}, self())
          send(parent, {__MODULE__, ref, :registered})
          chunked = call_opts ++ [chunk_size: opts[:chunk_size]]
          drive(ref, owner, fn -> ErlangPython.stream(module, function, args, chunked) end)
        end)

      receive do
        {__MODULE__, ^ref, :registered} ->
          Process.demonitor(monitor, [:flush])
          {:ok, ref}

        {:DOWN, ^monitor, :process, ^pid, reason} ->
          {:error, {:stream_start_failed, reason}}
      end
    end
  end

  @doc """
  Stops the stream `ref`. `:ok` also when it has ended already (events sent
  before the cancel may still arrive before the `"cancelled"` error).
  """
  @spec cancel(reference()) :: :ok
  def cancel(ref) when is_reference(ref) do
    case :ets.lookup(@table, ref) do
      [{^ref, driver}] -> send(driver, {:cancel, ref})
      [] -> :ok
    end

    :ok
  end

  defp drive(ref, owner, open) do
    owner_monitor = Process.monitor(owner)

    result =
      try do
        open.()
        |> Enum.reduce_while(:done, fn item, :done ->
          receive do
            {:cancel, ^ref} -> {:halt, {:error, "cancelled"}}
            {:DOWN, ^owner_monitor, :process, _, _} -> {:halt, :owner_down}
          after
            0 ->
              send(owner, {:py_stream, ref, {:data, item}})
              {:cont, :done}
          end
        end)
      rescue
        error in ErlangPython.Error -> {:error, ErlangPython.Error.headline(error)}
        error in ErlangPython.CallError -> {:error, call_error(error)}
        error -> {:error, Exception.message(error)}
      end

    if result != :owner_down, do: send(owner, {:py_stream, ref, result})
  end

  # A timeout reads as a call's does; other failures as their message.
  defp call_error(%ErlangPython.CallError{reason: :timeout}), do: :timeout
  defp call_error(error), do: Exception.message(error)

  defp validate(opts) do
    opts =
      Keyword.validate!(opts, [
        :kwargs,
        :context,
        :max_delay,
        :timeout,
        owner: self(),
        chunk_size: 1
      ])

    cond do
      not is_pid(opts[:owner]) ->
        {:error, {:badarg, "owner must be a pid, got: #{inspect(opts[:owner])}"}}

      not (is_integer(opts[:chunk_size]) and opts[:chunk_size] > 0) ->
        {:error, {:badarg, "chunk_size must be a positive integer"}}

      true ->
        {:ok, Enum.reject(opts, fn {_key, value} -> is_nil(value) end)}
    end
  end
end
