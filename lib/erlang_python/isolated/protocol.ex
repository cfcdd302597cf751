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
  # A request encoded in the calling process, as an I/O vector without the
  # version byte: the server then holds (and queues) a few binaries, never
  # a copy of a large argument's terms (a message copies its terms, not
  # its large binaries), and large binaries are referenced all the way to
  # the channel.
  def encode_request(request) do
    [<<131, first::binary>> | rest] = :erlang.term_to_iovec(request)
    [first | rest]
  end

  @doc false
  # `{:call, id, caller, request}` around a request from encode_request/1:
  # the 3-tuple's encoding with its arity made 4, the request's appended.
  def call(id, caller, encoded_request) do
    <<131, 104, 3, head::binary>> = :erlang.term_to_binary({:call, id, caller})
    [<<131, 104, 4, head::binary>> | encoded_request]
  end

  # The id a direct call's frame carries until the NIF patches in its own
  # (native/erlang_python_nif/src/isolated_channel.rs): 2^62 is written as
  # an 8-byte SMALL_BIG, so every direct id fits the same bytes.
  @direct_placeholder Bitwise.bsl(1, 62)

  @doc false
  # `{:call, id, caller, request}` for a direct call: written by hand, so the
  # id's 8 bytes sit at a fixed place (after version, tuple, `:call` as a
  # SMALL_ATOM_UTF8) on every OTP release.
  def direct_call(caller, encoded_request) do
    <<131, pid::binary>> = :erlang.term_to_binary(caller)

    [
      <<131, 104, 4, 119, 4, "call", 110, 8, 0, @direct_placeholder::little-64, pid::binary>>
      | encoded_request
    ]
  end

  @doc false
  def callback_reply(id, answer), do: :erlang.term_to_binary({:callback_reply, id, answer})

  @doc false
  def release(ids), do: :erlang.term_to_binary({:release, ids})

  # Every atom a worker's conversions write into a value: nil and the
  # booleans, the special floats, and the modules and fields of the forms
  # in guides/type-conversion.md (dates and times, `{:timedelta, us}`,
  # Decimal, MapSet, handles). native/erlang_python_nif/src/etf/writer.rs,
  # src/convert/datetime.rs and src/convert/numeric.rs write them.
  @written_atoms MapSet.new([
                   nil,
                   true,
                   false,
                   :nan,
                   :infinity,
                   :neg_infinity,
                   :__struct__,
                   :calendar,
                   Calendar.ISO,
                   Date,
                   Time,
                   NaiveDateTime,
                   DateTime,
                   :year,
                   :month,
                   :day,
                   :hour,
                   :minute,
                   :second,
                   :microsecond,
                   :utc_offset,
                   :std_offset,
                   :time_zone,
                   :zone_abbr,
                   :timedelta,
                   Decimal,
                   :sign,
                   :coef,
                   :exp,
                   :NaN,
                   :inf,
                   MapSet,
                   :map,
                   :version,
                   ErlangPython.Object,
                   :ref,
                   :isolated,
                   :type
                 ])

  @doc false
  # Whether the worker may have made `term` for `erlang.send`: it holds no
  # atom but those above, and no fun. A worker runs Python that may be
  # hostile and writes its frames itself, so it can forge any term of
  # existing atoms; sent on, such a term could speak an OTP protocol (a
  # `:"$gen_call"` to `rex` runs `os:cmd/1`, `{:stop, :stop}` to `init`
  # halts the VM). Python has no atoms of its own, so no honest message
  # needs others.
  def sendable?(term) when is_atom(term), do: MapSet.member?(@written_atoms, term)
  def sendable?(term) when is_tuple(term), do: sendable_list?(Tuple.to_list(term))
  def sendable?(term) when is_list(term), do: sendable_list?(term)

  def sendable?(term) when is_map(term),
    do: :maps.fold(fn key, value, ok -> ok and sendable?(key) and sendable?(value) end, true, term)

  def sendable?(term) when is_function(term), do: false
  def sendable?(_number_binary_pid_reference_or_port), do: true

  defp sendable_list?([head | tail]), do: sendable?(head) and sendable_list?(tail)
  defp sendable_list?([]), do: true
  defp sendable_list?(improper_tail), do: sendable?(improper_tail)

  @doc false
  # A frame from the worker. Atoms it names must exist already (`:safe`):
  # a worker cannot grow the atom table.
  def decode(frame) do
    {:ok, :erlang.binary_to_term(frame, [:safe])}
  rescue
    ArgumentError -> {:error, :malformed}
  end
end
