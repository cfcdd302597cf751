defmodule ErlangPython.Stream do
  @moduledoc false
  # The Elixir side of ErlangPython.stream/4 and stream_eval/3: a
  # Stream.resource over a chunked puller (_erlang_impl._stream) for a Python
  # generator, iterator or async generator. Pulls `chunk_size` items at a
  # time, so memory stays flat; halting early closes the source (its
  # `finally` runs); an exception raises ErlangPython.Error from the
  # enumeration.

  alias ErlangPython.Error

  @doc false
  # `open_source` returns {:ok, handle_to_the_iterable} or {:error, reason};
  # `options` are ErlangPython.stream/4's, validated. Pulls run where the
  # source was made: a context's source stays on the context's thread.
  def new(open_source, %{chunk_size: chunk, timeout: timeout, context: context} = options) do
    request = [timeout: timeout, context: context]

    Stream.resource(
      fn ->
        with {:ok, source} <- open_source.(),
             {:ok, stream} <-
               ErlangPython.call(
                 "_erlang_impl._stream",
                 :open,
                 [source, options[:max_delay]],
                 [decode: false] ++ request
               ) do
          {stream, false}
        else
          {:error, reason} -> raise Error.from_reason(reason)
        end
      end,
      fn
        {stream, true} ->
          {:halt, {stream, true}}

        {stream, false} ->
          case ErlangPython.call_method(stream, :next_chunk, [chunk], request) do
            {:ok, {items, done}} -> {items, {stream, done}}
            {:error, reason} -> raise Error.from_reason(reason)
          end
      end,
      fn {stream, _done} -> ErlangPython.call_method(stream, :close, [], request) end
    )
  end
end
