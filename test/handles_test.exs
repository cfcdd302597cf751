defmodule ErlangPython.HandlesTest do
  # Counts Python objects: run alone.
  use ExUnit.Case, async: false

  import ErlangPython.TestHelpers

  alias ErlangPython.{Error, Object}

  setup_all do
    :ok =
      ErlangPython.exec("""
      import gc, weakref
      class _HandleThing:
          def __init__(self, n=0):
              self.n = n
          def double(self, by=2):
              return self.n * by
      _handle_freed = []
      def _handle_watched(tag):
          thing = _HandleThing()
          weakref.finalize(thing, _handle_freed.append, tag)
          return thing
      """)
  end

  # Runs `fun` in a process that then exits: whatever handles it held are
  # garbage with it.
  defp in_dying_process(fun) do
    task = Task.async(fun)
    Task.await(task, 60_000)
  end

  test "a handle is the live object: attributes, methods, passing it back, inspect" do
    assert {:ok, %Object{type: "__main__._HandleThing"} = thing} =
             ErlangPython.call(:__main__, :_HandleThing, [21])

    assert {:ok, 21} = ErlangPython.getattr(thing, :n)
    assert {:ok, 42} = ErlangPython.call_method(thing, :double)
    assert {:ok, 63} = ErlangPython.call_method(thing, :double, [], kwargs: [by: 3])
    assert {:ok, true} = ErlangPython.eval("t is t2", %{t: thing, t2: thing})
    assert {:ok, %{"n" => 21}} = ErlangPython.decode(thing)

    assert inspect(thing) =~
             ~r/^#ErlangPython\.Object<<__main__\._HandleThing object at 0x[0-9a-f]+>>$/

    assert {:error, %Error{type: "AttributeError"}} = ErlangPython.getattr(thing, :missing)

    assert_raise ArgumentError, ~r/expected an ErlangPython.Object/, fn ->
      ErlangPython.getattr(:not_a_handle, :n)
    end
  end

  test "inspect truncates long reprs" do
    {:ok, long} = ErlangPython.eval("list(range(1000))", %{}, decode: false)
    shown = inspect(long)
    assert String.ends_with?(shown, "...>")
    assert String.length(shown) < 120
  end

  test "dropping the Elixir side frees the Python object" do
    tag = unique("freed")

    in_dying_process(fn ->
      {:ok, %Object{} = handle} = ErlangPython.call(:__main__, :_handle_watched, [tag])
      assert {:ok, false} = ErlangPython.eval("tag in _handle_freed", %{tag: tag})
      # Used here, so a garbage collection before this line cannot free it.
      assert %Object{} = handle
    end)

    # The handle died with its process; the release is applied at the
    # interpreter's next request, with the GIL held.
    assert eventually(fn ->
             ErlangPython.eval("tag in _handle_freed", %{tag: tag}) == {:ok, true}
           end)
  end

  test "10,000 handles created and dropped: no growth in Python's object count" do
    count = fn ->
      {:ok, n} = ErlangPython.eval("(gc.collect(), len(gc.get_objects()))[1]")
      n
    end

    in_dying_process(fn ->
      for _ <- 1..1_000, do: {:ok, %Object{}} = ErlangPython.call(:__main__, :_HandleThing)
    end)

    before = count.()

    in_dying_process(fn ->
      handles = for i <- 1..10_000, do: ErlangPython.call(:__main__, :_HandleThing, [i])
      # While held, they are alive.
      assert count.() >= before + 9_900
      assert Enum.all?(handles, &match?({:ok, %Object{}}, &1))
    end)

    assert eventually(fn -> count.() < before + 100 end),
           "Python objects: #{before} before, #{count.()} after"
  end
end
