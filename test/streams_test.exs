defmodule ErlangPython.StreamsTest do
  use ExUnit.Case, async: true

  import ErlangPython.TestHelpers

  alias ErlangPython.Error

  setup_all do
    :ok =
      ErlangPython.exec("""
      import asyncio
      _streams_log = []

      def _streams_naturals(tag):
          n = 0
          try:
              while True:
                  _streams_log.append((tag, n))
                  yield n
                  n += 1
          finally:
              _streams_log.append((tag, 'closed'))

      def _streams_failing():
          yield 1
          yield 2
          raise ValueError('stream broke')

      async def _streams_async(n):
          for i in range(n):
              await asyncio.sleep(0)
              yield i * 10
      """)
  end

  defp produced(tag) do
    {:ok, log} = ErlangPython.eval("[n for t, n in _streams_log if t == tag]", %{tag: tag})
    log
  end

  test "an infinite generator taken 10 items: lazy, chunked, closed afterwards" do
    tag = unique("infinite")
    stream = ErlangPython.stream(:__main__, :_streams_naturals, [tag], chunk_size: 16)
    # Nothing runs until the stream is enumerated.
    assert produced(tag) == []
    assert Enum.take(stream, 10) == Enum.to_list(0..9)
    log = produced(tag)
    # One chunk was pulled, not the infinite rest; and its finally ran.
    assert List.last(log) == "closed"
    assert length(log) == 17
  end

  test "chunking keeps memory flat: each pull asks for chunk_size items" do
    tag = unique("chunks")

    assert ErlangPython.stream(:__main__, :_streams_naturals, [tag], chunk_size: 5) |> Enum.take(12) ==
             Enum.to_list(0..11)

    assert length(produced(tag)) == 15 + 1
  end

  test "an async generator, streamed" do
    assert ErlangPython.stream(:__main__, :_streams_async, [5]) |> Enum.to_list() == [
             0,
             10,
             20,
             30,
             40
           ]
  end

  test "an exception in the middle raises from the enumeration, after the items before it" do
    stream = ErlangPython.stream(:__main__, :_streams_failing)
    assert Enum.take(stream, 2) == [1, 2]

    error = assert_raise Error, fn -> Enum.to_list(stream) end
    assert error.type == "ValueError"
    assert error.message == "stream broke"
  end

  test "stream_eval over an expression, with locals" do
    assert ErlangPython.stream_eval("(x * x for x in range(n))", %{n: 5}) |> Enum.to_list() == [
             0,
             1,
             4,
             9,
             16
           ]

    assert ErlangPython.stream_eval("iter([1, 'two', None])") |> Enum.to_list() == [1, "two", nil]
  end

  test "a source that is not iterable is an error when enumerated" do
    assert_raise Error, ~r/TypeError/, fn -> ErlangPython.stream_eval("42") |> Enum.to_list() end
  end

  test ":py.stream/3 and :py.stream_eval/1 return the whole list" do
    assert {:ok, [0, 10, 20]} = :py.stream(:__main__, :_streams_async, [3])
    assert {:ok, [0, 1, 2]} = :py.stream_eval("range(3)")
    assert {:error, {:ValueError, "stream broke"}} = :py.stream(:__main__, :_streams_failing, [])
  end
end
