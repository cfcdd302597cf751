# The pool with a worker stuck: with `workers: 2`, one worker sleeps 2 s in
# a call whose caller has given up, and 100 tiny unbound calls (from 100
# processes at once, then from one process in a row) must not wait for it.
#
#   mix run --no-start bench/pool.exs
#
# (--no-start: the script configures `workers: 2` before the application
# starts.) BENCH_MODE works as for bench/run.exs. Prints the median of 5
# runs and every run.
Code.require_file("machine.exs", __DIR__)

Application.put_env(:erlang_python, :workers, 2)
{:ok, _} = Application.ensure_all_started(:erlang_python)

Bench.Machine.start("#{ErlangPython.Runtime.workers()} Python workers")

median = &Bench.Machine.median/1
parent = self()

# Starts a 2 s sleep whose caller times out after 50 ms; returns once the
# sleep runs (its worker is then busy for about 2 s more).
stick_a_worker = fn ->
  task =
    Task.async(fn ->
      ErlangPython.eval(
        "(__import__('erlang').send(p, 'sleeping'), __import__('time').sleep(2))",
        %{p: parent},
        timeout: 50
      )
    end)

  receive do
    "sleeping" -> :ok
  end

  {:error, :timeout} = Task.await(task)
end

concurrent = fn ->
  1..100
  |> Enum.map(fn i ->
    Task.async(fn -> {:ok, _} = ErlangPython.call(:operator, :add, [i, 1]) end)
  end)
  |> Task.await_many(:infinity)
end

sequential = fn -> for i <- 1..100, do: {:ok, _} = ErlangPython.call(:operator, :add, [i, 1]) end

# Waits until no worker is busy, so each run starts with one sleeper only.
settle = fn settle ->
  if Enum.any?(ErlangPython.pool_stats().workers, & &1.busy) do
    Process.sleep(50)
    settle.(settle)
  end
end

measure = fn calls ->
  for _ <- 1..5 do
    settle.(settle)
    stick_a_worker.()
    {us, _} = :timer.tc(calls)
    us / 1000
  end
end

concurrent.()

for {label, calls} <- [
      {"100 tiny calls from 100 processes", concurrent},
      {"100 tiny calls in a row", sequential}
    ] do
  runs = measure.(calls)

  IO.puts(
    "#{String.pad_trailing(label, 36)} median #{Float.round(median.(runs), 2)} ms " <>
      "(runs: #{Enum.map_join(runs, ", ", &Float.round(&1, 2))}; target < 50 ms)"
  )
end

IO.puts("load average at end #{Bench.Machine.loadavg()}")
