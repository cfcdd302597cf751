defmodule ErlangPython.ConcurrencyTest do
  use ExUnit.Case, async: true

  test "1000 concurrent callers each get their own answer" do
    results =
      1..1000
      |> Enum.map(fn i ->
        Task.async(fn ->
          {i, ErlangPython.call(:operator, :mul, [i, i]), ErlangPython.eval("n + 1", %{n: i})}
        end)
      end)
      |> Task.await_many(60_000)

    for {i, call_result, eval_result} <- results do
      assert call_result == {:ok, i * i}
      assert eval_result == {:ok, i + 1}
    end

    assert length(results) == 1000
  end

  test "a slow call does not block the caller's scheduler" do
    # While Python sleeps, other BEAM processes keep running on every scheduler.
    task = Task.async(fn -> ErlangPython.eval("__import__('time').sleep(0.3) or 'slept'") end)
    counter = Task.async(fn -> Enum.reduce(1..200_000, 0, &(&1 + &2)) end)
    assert Task.await(counter) == 20_000_100_000
    assert {:ok, "slept"} = Task.await(task)
  end

  test "replies never reach another process" do
    parent = self()

    pids =
      for i <- 1..200 do
        spawn(fn ->
          result = ErlangPython.eval("i", %{i: i})
          # Nothing else may be in this process's mailbox.
          extra =
            receive do
              msg -> msg
            after
              50 -> :none
            end

          send(parent, {:result, i, result, extra})
        end)
      end

    for i <- 1..200 do
      assert_receive {:result, ^i, {:ok, ^i}, :none}, 10_000
    end

    assert length(pids) == 200
  end
end
