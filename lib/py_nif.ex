defmodule :py_nif do
  @moduledoc """
  The feature probes of erlang_python's private NIF module, so code (and
  test suites) that check for optional features find out they are absent:
  this implementation runs one interpreter, without sub-interpreters; and
  the functions erlang_python documents for memory ceilings
  (`context_set_memory_limit/2`, `context_memory_usage/1`, over
  `ErlangPython.Memory`). The rest of that module is private to
  erlang_python and has no equivalent.
  """

  @doc "`false`: no sub-interpreters with their own GIL."
  @spec owngil_supported() :: false
  def owngil_supported, do: ErlangPython.Interpreter.own_gil_supported?()

  @doc "`false`: no sub-interpreters."
  @spec subinterp_supported() :: false
  def subinterp_supported, do: ErlangPython.Interpreter.subinterpreters_supported?()

  @doc "Python's version string: `{ok, Binary}`."
  @spec version() :: {:ok, binary()} | {:error, term()}
  defdelegate version, to: :py

  # The channel primitives the original's suites call directly.

  @doc "The next channel item without waiting: `{ok, Term}`, `{error, empty}` or `{error, closed}`."
  @spec channel_try_receive(reference()) :: {:ok, term()} | {:error, :empty | :closed}
  def channel_try_receive(channel), do: ErlangPython.Channel.try_receive(channel)

  @doc "The next byte-channel chunk without waiting."
  @spec byte_channel_try_receive_bytes(reference()) :: {:ok, binary()} | {:error, :empty | :closed}
  def byte_channel_try_receive_bytes(channel), do: ErlangPython.Channel.try_receive(channel)

  @doc """
  Makes the caller the channel's waiter: it receives `channel_data_ready` or
  `channel_closed`. `ok`, or `{error, waiter_exists}`.
  """
  @spec channel_register_sync_waiter(reference()) :: :ok | {:error, :waiter_exists}
  def channel_register_sync_waiter(channel),
    do: ErlangPython.Native.channel_register_sync_waiter(channel)

  # Memory ceilings, over ErlangPython.Memory.

  @doc """
  Sets a context's memory ceiling in bytes (0: none; usage is still
  counted). `Ref` is `py_context:get_nif_ref(Ctx)`. `ok` or `{error, Reason}`.
  """
  @spec context_set_memory_limit(pid(), non_neg_integer()) :: :ok | {:error, term()}
  def context_set_memory_limit(context, 0) when is_pid(context),
    do: ErlangPython.Memory.set_limit(context, :infinity)

  def context_set_memory_limit(context, bytes)
      when is_pid(context) and is_integer(bytes) and bytes > 0,
      do: ErlangPython.Memory.set_limit(context, bytes)

  def context_set_memory_limit(context, bytes) when is_pid(context),
    do: {:error, {:invalid_memory_limit, bytes}}

  @doc """
  A context's memory: `{ok, UsedBytes, LimitBytes}` (limit 0: none), or
  `{error, Reason}`.
  """
  @spec context_memory_usage(pid()) ::
          {:ok, non_neg_integer(), non_neg_integer()} | {:error, term()}
  def context_memory_usage(context) when is_pid(context) do
    with {:ok, %{used: used, limit: limit}} <- ErlangPython.Memory.usage(context) do
      {:ok, used, if(limit == :infinity, do: 0, else: limit)}
    end
  end
end
