defmodule ErlangPython.SemaphoreTest do
  # The semaphore is one for the whole VM: not async.
  use ExUnit.Case, async: false

  alias ErlangPython.Semaphore

  setup do
    max = Semaphore.max_concurrent()
    :ok = Semaphore.set_max(1)
    on_exit(fn -> Semaphore.set_max(max) end)
  end

  test "waiters get freed slots in the order they came" do
    :ok = Semaphore.acquire(1_000)
    parent = self()

    # Each waiter is in line before the next one asks.
    for i <- 1..5 do
      spawn_link(fn ->
        :ok = Semaphore.acquire(10_000)
        send(parent, {:got, i})
        :ok = Semaphore.release()
      end)

      wait_until(fn -> Semaphore.waiting() == i end)
    end

    :ok = Semaphore.release()
    got = for _ <- 1..5, do: receive(do: ({:got, i} -> i))
    assert got == [1, 2, 3, 4, 5]
    wait_until(fn -> Semaphore.current() == 0 end)
  end

  test "a waiter that times out leaves the line, and the slot goes to the next one" do
    :ok = Semaphore.acquire(1_000)
    assert {:error, :max_concurrent} = Semaphore.acquire(0)
    assert {:error, :max_concurrent} = Semaphore.acquire(50)
    assert Semaphore.waiting() == 0

    patient = Task.async(fn -> Semaphore.acquire(10_000) end)
    wait_until(fn -> Semaphore.waiting() == 1 end)
    :ok = Semaphore.release()
    assert :ok = Task.await(patient)
    # The task ended holding it: its slot freed with it.
    wait_until(fn -> Semaphore.current() == 0 end)
  end

  test "a waiter that dies leaves the line without taking a slot" do
    :ok = Semaphore.acquire(1_000)
    doomed = spawn(fn -> Semaphore.acquire(:infinity) end)
    wait_until(fn -> Semaphore.waiting() == 1 end)
    Process.exit(doomed, :kill)
    wait_until(fn -> Semaphore.waiting() == 0 end)

    :ok = Semaphore.release()
    assert Semaphore.current() == 0
    assert :ok = Semaphore.acquire(0)
    :ok = Semaphore.release()
  end

  test "a holder that dies gives its slots back, and a waiter gets one" do
    parent = self()

    holder =
      spawn(fn ->
        :ok = Semaphore.acquire(1_000)
        send(parent, :holding)
        Process.sleep(:infinity)
      end)

    assert_receive :holding, 5_000
    waiter = Task.async(fn -> Semaphore.acquire(10_000) end)
    wait_until(fn -> Semaphore.waiting() == 1 end)
    Process.exit(holder, :kill)
    assert :ok = Task.await(waiter)
    wait_until(fn -> Semaphore.current() == 0 end)
  end

  test "a process that holds no slot cannot give back another's" do
    :ok = Semaphore.acquire(1_000)
    Task.await(Task.async(fn -> Semaphore.release() end))
    assert Semaphore.current() == 1
    assert {:error, :max_concurrent} = Semaphore.acquire(0)
    :ok = Semaphore.release()
    assert Semaphore.current() == 0
  end

  test "raising the limit lets waiters in" do
    :ok = Semaphore.acquire(1_000)
    waiters = for _ <- 1..2, do: Task.async(fn -> Semaphore.acquire(10_000) end)
    wait_until(fn -> Semaphore.waiting() == 2 end)
    :ok = Semaphore.set_max(3)
    assert [:ok, :ok] = Task.await_many(waiters)
    :ok = Semaphore.release()
  end

  # Fast path (a free slot, nobody in line): no server round trip. These
  # check it never breaks what the line guarantees.

  test "a slot freed while someone waits goes to the waiter, not to a caller that comes later" do
    :ok = Semaphore.acquire(1_000)
    parent = self()

    # The waiter keeps its slot until told (a process that ends would free
    # it, and the later caller could then rightly take it).
    waiter =
      spawn_link(fn ->
        send(parent, {:waiter, Semaphore.acquire(10_000)})
        receive(do: (:done -> Semaphore.release()))
      end)

    wait_until(fn -> Semaphore.waiting() == 1 end)

    # The release and the new attempt come from one process, back to back:
    # the freed slot must not be taken by the later caller.
    :ok = Semaphore.release()
    assert {:error, :max_concurrent} = Semaphore.acquire(0)
    assert_receive {:waiter, :ok}, 10_000
    send(waiter, :done)
    wait_until(fn -> Semaphore.current() == 0 end)
  end

  test "a process holds and gives back several slots" do
    :ok = Semaphore.set_max(3)
    for _ <- 1..3, do: :ok = Semaphore.acquire(0)
    assert Semaphore.current() == 3
    assert {:error, :max_concurrent} = Semaphore.acquire(0)
    for _ <- 1..3, do: :ok = Semaphore.release()
    assert Semaphore.current() == 0
    # One more release gives back nothing it does not hold.
    :ok = Semaphore.release()
    assert Semaphore.current() == 0
  end

  test "a lower limit lets nobody in until enough slots are given back" do
    :ok = Semaphore.set_max(3)
    for _ <- 1..3, do: :ok = Semaphore.acquire(0)
    :ok = Semaphore.set_max(1)
    assert {:error, :max_concurrent} = Semaphore.acquire(0)
    :ok = Semaphore.release()
    :ok = Semaphore.release()
    assert {:error, :max_concurrent} = Semaphore.acquire(0)
    :ok = Semaphore.release()
    assert :ok = Semaphore.acquire(0)
    :ok = Semaphore.release()
  end

  # Many callers racing between the fast path and the line: none is lost
  # (a lost wake-up would leave one waiting forever), never more than the
  # limit hold at once, and every slot is back at the end.
  test "callers racing through the fast path and the line all get through, within the limit" do
    :ok = Semaphore.set_max(3)
    counter = :counters.new(2, [])

    tasks =
      for i <- 1..40 do
        Task.async(fn ->
          for j <- 1..200 do
            :ok =
              Semaphore.with_slot(:infinity, fn ->
                :counters.add(counter, 1, 1)
                seen = :counters.get(counter, 1)
                if seen > :counters.get(counter, 2), do: :counters.put(counter, 2, seen)
                if rem(i + j, 3) == 0, do: :erlang.yield()
                :counters.sub(counter, 1, 1)
                :ok
              end)
          end

          :done
        end)
      end

    assert Enum.all?(Task.await_many(tasks, 60_000), &(&1 == :done))
    assert :counters.get(counter, 2) <= 3
    assert :counters.get(counter, 2) >= 1
    assert Semaphore.current() == 0
    assert Semaphore.waiting() == 0
  end

  # Processes killed at any point of acquire/release (fast path or line)
  # leave no slot taken: every slot can be taken again afterwards.
  test "processes killed while taking, holding or giving back slots leave none behind" do
    :ok = Semaphore.set_max(4)

    parent = self()

    for round <- 1..20 do
      victims = for _ <- 1..12, do: spawn(fn -> churn(parent, 0) end)

      # Each has held a slot at least once; let them churn a little more,
      # then kill them all wherever they are.
      for _ <- victims, do: assert_receive(:held_once, 10_000)
      for _ <- 1..(rem(round, 5) + 1), do: :erlang.yield()
      Enum.each(victims, &Process.exit(&1, :kill))
    end

    wait_until(fn -> Semaphore.current() == 0 end)
    assert Semaphore.waiting() == 0
    for _ <- 1..4, do: assert(:ok = Semaphore.acquire(0))
    assert {:error, :max_concurrent} = Semaphore.acquire(0)
    for _ <- 1..4, do: :ok = Semaphore.release()
  end

  test "a holder that took its slot without waiting and dies while others wait frees it for them" do
    :ok = Semaphore.set_max(2)
    parent = self()

    holders =
      for _ <- 1..2 do
        spawn(fn ->
          :ok = Semaphore.acquire(0)
          send(parent, :holding)
          Process.sleep(:infinity)
        end)
      end

    for _ <- holders, do: assert_receive(:holding, 5_000)
    waiters = for _ <- 1..2, do: Task.async(fn -> Semaphore.acquire(10_000) end)
    wait_until(fn -> Semaphore.waiting() == 2 end)
    Enum.each(holders, &Process.exit(&1, :kill))
    assert [:ok, :ok] = Task.await_many(waiters, 10_000)
    wait_until(fn -> Semaphore.current() == 0 end)
  end

  defp churn(parent, held) do
    case Semaphore.acquire(50) do
      :ok ->
        if held == 0, do: send(parent, :held_once)
        :erlang.yield()
        Semaphore.release()
        churn(parent, held + 1)

      {:error, :max_concurrent} ->
        churn(parent, held)
    end
  end

  defp wait_until(check), do: assert(ErlangPython.TestHelpers.eventually(check))
end
