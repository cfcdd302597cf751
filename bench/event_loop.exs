# Event-loop task round trips: mix run bench/event_loop.exs
#
# A task is created from Erlang (ErlangPython.EventLoopPool.create_task/4)
# and its result awaited (ErlangPython.await/2): one at a time (latency per
# task), many in flight from one process (all on its loop), and from 100
# processes (spread over the pool's loops). Then the event queue's own
# round trips (timer, pipe readiness), which run no Python. Each row is the
# median of 3 runs. BENCH_QUICK=1 for a smoke run.
Code.require_file("machine.exs", __DIR__)

alias ErlangPython.{EventLoopPool, EventQueue}
alias ErlangPython.EventQueue.TestFd

quick = System.get_env("BENCH_QUICK") in ["1", "true"]
runs = 3
scale = fn n -> if quick, do: max(div(n, 20), 1), else: n end
median = &Bench.Machine.median/1

Bench.Machine.start(
  "#{ErlangPython.Runtime.workers()} worker thread(s), #{EventLoopPool.size()} loops"
)

# Defined in each caller's environment (tasks look functions up there).
define = fn ->
  :ok =
    :py.exec("""
    import asyncio

    async def bench_noop(x):
        return x

    async def bench_yield(x):
        await asyncio.sleep(0)
        return x

    def bench_plain(x):
        return x
    """)
end

define.()

sequential = fn function, n ->
  {us, _} =
    :timer.tc(fn ->
      for i <- 1..n do
        {:ok, ^i} = ErlangPython.await(EventLoopPool.create_task(:__main__, function, [i]))
      end
    end)

  us
end

in_flight = fn function, n ->
  {us, _} =
    :timer.tc(fn ->
      tasks = for i <- 1..n, do: EventLoopPool.create_task(:__main__, function, [i])
      for {task, i} <- Enum.zip(tasks, 1..n), do: {:ok, ^i} = ErlangPython.await(task, :infinity)
    end)

  us
end

spread = fn function, processes, per ->
  {us, _} =
    :timer.tc(fn ->
      1..processes
      |> Enum.map(fn _ ->
        Task.async(fn ->
          define.()
          tasks = for i <- 1..per, do: EventLoopPool.create_task(:__main__, function, [i])

          for {task, i} <- Enum.zip(tasks, 1..per),
              do: {:ok, ^i} = ErlangPython.await(task, :infinity)
        end)
      end)
      |> Task.await_many(:infinity)
    end)

  us
end

# Warm up: loops started, functions compiled.
for loop <- EventLoopPool.loops_list(),
    do:
      {:ok, 1} =
        ErlangPython.await(EventLoopPool.create_task(:__main__, :bench_noop, [1], loop: loop))

IO.puts("\n| event-loop task, created from Erlang and awaited | tasks | µs per task | tasks/s |")
IO.puts("|---|---:|---:|---:|")

row = fn label, n, us ->
  IO.puts("| #{label} | #{n} | #{Float.round(us / n, 1)} | #{round(n / (us / 1_000_000))} |")
end

n = scale.(2_000)

row.(
  "coroutine returning at once, one at a time",
  n,
  median.(for _ <- 1..runs, do: sequential.(:bench_noop, n))
)

row.(
  "coroutine with one `await asyncio.sleep(0)`, one at a time",
  n,
  median.(for _ <- 1..runs, do: sequential.(:bench_yield, n))
)

row.(
  "plain function (no task: worker only), one at a time",
  n,
  median.(for _ <- 1..runs, do: sequential.(:bench_plain, n))
)

n = scale.(10_000)

row.(
  "coroutine, #{n} in flight from one process (one loop)",
  n,
  median.(for _ <- 1..runs, do: in_flight.(:bench_yield, n))
)

per = scale.(100)

row.(
  "coroutine, 100 processes x #{per} in flight (all loops)",
  100 * per,
  median.(for _ <- 1..runs, do: spread.(:bench_yield, 100, per))
)

# The event queue: no Python involved.
{:ok, queue} = EventQueue.new()

timer_rt = fn n ->
  {us, _} =
    :timer.tc(fn ->
      for i <- 1..n do
        {:ok, _} = EventQueue.call_later(queue, 0, i)
        {:ok, 1} = EventQueue.poll(queue, 1_000)
        [{^i, :timer}] = EventQueue.pending(queue)
      end
    end)

  us
end

{:ok, {r, w}} = TestFd.pipe()
{:ok, _watch} = EventQueue.add_reader(queue, r, 1)

pipe_rt = fn n ->
  {us, _} =
    :timer.tc(fn ->
      for _ <- 1..n do
        :ok = TestFd.write(w, "x")
        {:ok, 1} = EventQueue.poll(queue, 1_000)
        [{1, :read}] = EventQueue.pending(queue)
        {:ok, "x"} = TestFd.read(r, 16)
      end
    end)

  us
end

IO.puts("\n| event queue round trip (no Python) | rounds | µs per round |")
IO.puts("|---|---:|---:|")
n = scale.(5_000)

IO.puts(
  "| timer: call_later(0) -> poll -> pending | #{n} | #{Float.round(median.(for _ <- 1..runs, do: timer_rt.(n)) / n, 1)} |"
)

IO.puts(
  "| pipe: write -> readiness -> poll -> pending -> read | #{n} | #{Float.round(median.(for _ <- 1..runs, do: pipe_rt.(n)) / n, 1)} |"
)

IO.puts("\nload average at end #{Bench.Machine.loadavg()}")
