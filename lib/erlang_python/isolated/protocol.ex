defmodule ErlangPython.Isolated.Protocol do
  @moduledoc false
  # The messages between an isolated context's server and its worker
  # process, in the external term format, one per `{:packet, 4}` frame.
  # The worker declares the same format once, in
  # native/erlang_python_nif/worker/protocol.rs:
  #
  #   to the worker:   {:call, id, caller, request}
  #                    {:callback_reply, callback_id, {:ok, term} | {:error, text}}
  #                    {:release, [handle_id]}
  #   from the worker: {:ready, os_pid}
  #                    {:reply, id, :ok | :pong | {:ok, term} | {:error, reason}}
  #                    {:callback, callback_id, name, args}
  #                    {:send, pid, term}
  #
  # `request` is what ErlangPython.Request builds (without a context: the
  # worker's __main__ is the context's namespace).

  @doc false
  # As an I/O vector: large binaries in the request are referenced, not
  # copied, on their way to the port.
  def call(id, caller, request), do: :erlang.term_to_iovec({:call, id, caller, request})

  @doc false
  def callback_reply(id, answer), do: :erlang.term_to_binary({:callback_reply, id, answer})

  @doc false
  def release(ids), do: :erlang.term_to_binary({:release, ids})

  @doc false
  # A frame from the worker. Atoms it names must exist already (`:safe`):
  # a worker cannot grow the atom table.
  def decode(frame) do
    {:ok, :erlang.binary_to_term(frame, [:safe])}
  rescue
    ArgumentError -> {:error, :malformed}
  end
end
