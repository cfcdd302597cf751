defmodule ErlangPython.SharedStateTest do
  # The semaphore's limit and the state store are global: not async.
  use ExUnit.Case, async: false

  alias ErlangPython.{Semaphore, SharedDict, State}

  doctest ErlangPython.SharedDict
  doctest ErlangPython.Semaphore

  describe "SharedDict" do
    test "values are copies: mutating what was read changes nothing" do
      {:ok, sd} = SharedDict.new()
      :ok = SharedDict.put(sd, "list", [1, 2])

      :ok =
        ErlangPython.exec(
          "import erlang\ndef _mutate(h):\n    erlang.SharedDict(h)['list'].append(3)"
        )

      {:ok, nil} = ErlangPython.call(:__main__, :_mutate, [sd])
      assert [1, 2] = SharedDict.get(sd, "list")
    end

    test "concurrent writers to distinct keys all land" do
      {:ok, sd} = SharedDict.new()

      1..10
      |> Enum.map(fn n ->
        Task.async(fn -> for i <- 1..50, do: :ok = SharedDict.put(sd, "k#{n}", i) end)
      end)
      |> Task.await_many()

      assert length(SharedDict.keys(sd)) == 10
      assert Enum.all?(1..10, &(SharedDict.get(sd, "k#{&1}") == 50))
    end

    test "after destroy every operation raises; values that cannot be pickled are refused" do
      {:ok, sd} = SharedDict.new()
      assert_raise ErlangPython.Error, fn -> SharedDict.put(sd, "pid", self()) end
      :ok = SharedDict.destroy(sd)
      assert_raise ArgumentError, fn -> SharedDict.get(sd, "x") end
      assert_raise ArgumentError, fn -> SharedDict.keys(:not_a_dict) end
    end
  end

  describe "Semaphore" do
    setup do
      max = Semaphore.max_concurrent()
      on_exit(fn -> Semaphore.set_max(max) end)
    end

    test "never lets more than the limit through" do
      :ok = Semaphore.set_max(3)
      counter = :counters.new(2, [])

      1..12
      |> Enum.map(fn _ ->
        Task.async(fn ->
          Semaphore.with_slot(5_000, fn ->
            :counters.add(counter, 1, 1)
            seen = :counters.get(counter, 1)
            if seen > :counters.get(counter, 2), do: :counters.put(counter, 2, seen)
            Process.sleep(20)
            :counters.sub(counter, 1, 1)
          end)
        end)
      end)
      |> Task.await_many(10_000)

      assert :counters.get(counter, 2) <= 3
      assert Semaphore.current() == 0
    end

    test "a waiter gets a slot as soon as one frees" do
      :ok = Semaphore.set_max(1)
      :ok = Semaphore.acquire(100)
      waiter = Task.async(fn -> Semaphore.acquire(2_000) end)
      Process.sleep(50)
      :ok = Semaphore.release()
      assert :ok = Task.await(waiter)
      :ok = Semaphore.release()
    end

    # Once, the counters were made at the first use, and callers racing
    # through it each made a set of their own (slots taken on one were
    # given back to another). A server holds the slots now; racing callers
    # must still get exactly the limit between them.
    test "racing callers get exactly the limit between them" do
      limit = Semaphore.max_concurrent()

      # Each caller holds what it got until all have tried.
      results = together(50, fn -> Semaphore.acquire(0) end, &release_if_taken/1)

      assert Enum.count(results, &(&1 == :ok)) == limit
      assert Semaphore.current() == 0
    end

    test "every racing caller gets its slots" do
      echo = spawn_link(fn -> echo_loop() end)

      results =
        together(50, fn ->
          for _ <- 1..20 do
            Semaphore.with_slot(20_000, fn ->
              ref = make_ref()
              send(echo, {self(), ref})
              receive do: (^ref -> :ok)
            end)
          end
        end)

      assert Enum.frequencies(List.flatten(results)) == %{ok: 1_000}
      assert Semaphore.current() == 0
    end
  end

  describe "State entry cap" do
    setup do
      State.clear()

      on_exit(fn ->
        Application.delete_env(:erlang_python, :max_state_entries)
        State.clear()
      end)
    end

    test "counts entries exactly under concurrent puts and deletes" do
      Application.put_env(:erlang_python, :max_state_entries, 50)

      1..8
      |> Enum.map(fn n ->
        Task.async(fn ->
          for i <- 1..20 do
            State.put({n, i}, i)
            State.delete({n, i - 1})
          end
        end)
      end)
      |> Task.await_many()

      # Each task leaves one key; the cap still admits exactly 42 more.
      assert length(State.keys()) == 8
      results = for i <- 1..50, do: State.put({:more, i}, i)
      assert Enum.count(results, &(&1 == :ok)) == 42
    end

    test "a new counter past the cap raises; the size key is untouchable" do
      Application.put_env(:erlang_python, :max_state_entries, 1)
      1 = State.incr(:one)
      assert_raise ArgumentError, fn -> State.incr(:two) end
      assert_raise ArgumentError, fn -> State.incr(:"$py_state_size$") end
      assert {:error, :reserved_key} = State.put(:"$py_state_size$", 0)
      assert State.fetch(:"$py_state_size$") == :error
      assert State.keys() == [:one]
    end

    test "Python sees the cap as an error from state_set" do
      Application.put_env(:erlang_python, :max_state_entries, 0)

      assert {:error, %ErlangPython.Error{type: "CallbackError"}} =
               ErlangPython.exec("import erlang\nerlang.state_set('k', 1)")
    end
  end

  # Runs `fun` in `n` processes released at once and returns their results
  # in order; once all have answered, each runs `after_all` on its result
  # (and has finished when this returns).
  defp together(n, fun, after_all \\ fn _ -> :ok end) do
    parent = self()

    pids =
      for _ <- 1..n do
        spawn_link(fn ->
          receive do: (:go -> :ok)
          result = fun.()
          send(parent, {:result, self(), result})
          receive do: (:after_all -> after_all.(result))
          send(parent, {:done, self()})
        end)
      end

    Enum.each(pids, &send(&1, :go))

    results =
      for pid <- pids do
        receive do
          {:result, ^pid, result} -> result
        after
          30_000 -> flunk("a caller did not finish within 30 s")
        end
      end

    Enum.each(pids, &send(&1, :after_all))
    for pid <- pids, do: receive(do: ({:done, ^pid} -> :ok))
    results
  end

  defp release_if_taken(:ok), do: Semaphore.release()
  defp release_if_taken(_refused), do: :ok

  defp echo_loop do
    receive do
      {from, ref} -> send(from, ref)
    end

    echo_loop()
  end
end
