defmodule ErlangPython.SmallRequestReplyTest do
  # A small request (at most 64 term cells) is answered from its own
  # environment, a larger one from the worker's: on both sides of that
  # line, and from many processes at once, each caller gets its own answer,
  # async calls keep theirs until awaited, and a cancelled call sends none.
  use ExUnit.Case, async: false

  # Argument lists of 1 to 130 integers: requests on both sides of the line.
  @lengths [1, 2, 30, 60, 61, 62, 63, 64, 65, 66, 100, 130]

  test "each of many concurrent callers gets the sum of its own list" do
    tasks =
      for caller <- 1..40, length <- @lengths do
        Task.async(fn ->
          values = Enum.map(1..length, &(&1 * caller))
          {ErlangPython.call(:builtins, :sum, [values]), Enum.sum(values)}
        end)
      end

    for {result, expected} <- Task.await_many(tasks, 30_000) do
      assert result == {:ok, expected}
    end
  end

  test "replies carry terms the request held, intact after the request is gone" do
    blob = :binary.copy("x", 1_000)

    for length <- @lengths do
      args = [Enum.to_list(1..length) ++ [blob]]
      assert {:ok, list} = ErlangPython.call(:builtins, :list, args)
      :erlang.garbage_collect()
      assert list == Enum.to_list(1..length) ++ [blob]
    end
  end

  test "async calls keep small and large replies until awaited" do
    calls =
      for length <- @lengths do
        {ErlangPython.async_call(:builtins, :len, [Enum.to_list(1..length)]), length}
      end

    Process.sleep(50)
    refute_received {_, _}

    for {call, length} <- calls do
      assert ErlangPython.await(call, 5_000) == {:ok, length}
    end
  end

  test "a small call that timed out sends nothing later" do
    assert {:error, :timeout} = ErlangPython.call(:time, :sleep, [0.3], timeout: 50)

    Process.sleep(500)
    refute_received {_ref, _}
  end
end
