# A long list of integers passed to a large request is packed on the
# caller's side (native/erlang_python_nif/src/convert/packed.rs); the packed
# term lives on the caller's heap and in the request. A request cancelled
# while it waits in the queue must give the packed memory back when the
# worker drops it, not when the caller's process next collects garbage
# (an idle process may never do so). Not async: it counts the words every
# packed list holds, which other tests' calls would move.
defmodule ErlangPython.PackedReleaseTest do
  use ExUnit.Case, async: false

  alias ErlangPython.Runtime

  defp held_words do
    {:ok, words} = Runtime.request(:diagnostic_packed_words, 5_000)
    words
  end

  # Polls until `check` holds, for at most `ms` (no timing is asserted).
  defp eventually(check, ms) do
    cond do
      check.() -> true
      ms <= 0 -> false
      true -> Process.sleep(20) && eventually(check, ms - 20)
    end
  end

  test "a packed request cancelled in the queue frees its words when dropped" do
    before = held_words()
    list = Enum.to_list(1..100_000)
    parent = self()

    # Every worker busy for a while, so the call below waits in the queue.
    sleepers =
      for _ <- 1..Runtime.workers() do
        Task.async(fn -> ErlangPython.eval("__import__('time').sleep(0.6)") end)
      end

    Process.sleep(100)

    # The caller: a process with room enough never to collect garbage, which
    # then waits, as an idle process does.
    caller =
      :erlang.spawn_opt(
        fn ->
          result = ErlangPython.call(:builtins, :len, [list], timeout: 50)
          send(parent, {:called, result})

          receive do
            :stop -> :ok
          end
        end,
        min_heap_size: 2_000_000
      )

    assert_receive {:called, {:error, :timeout}}, 5_000
    Enum.each(sleepers, &Task.await(&1, 5_000))
    assert eventually(fn -> held_words() == before end, 5_000)
    # The caller never collected its garbage meanwhile.
    assert {:garbage_collection, info} = Process.info(caller, :garbage_collection)
    assert info[:minor_gcs] == 0
    send(caller, :stop)
  end

  test "packed requests that run give their words back as before" do
    before = held_words()
    list = Enum.to_list(1..100_000)
    assert {:ok, 100_000} = ErlangPython.call(:builtins, :len, [list])
    assert eventually(fn -> held_words() == before end, 5_000)
  end
end
