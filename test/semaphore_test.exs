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

  defp wait_until(check), do: assert(ErlangPython.TestHelpers.eventually(check))
end
