# Where a round trip's time goes: mix run bench/latency.exs
#
# The best of many short runs (and the median beside it), so a figure
# approaches what the machine does when nothing else needs it: on a shared
# machine a long run's mean mostly measures the others' load. Next to
# `ping` and a call it prints what they are made of, each measured alone:
#
# - two messages between BEAM processes (a round trip inside the VM, the
#   floor of any reply by message);
# - submit only: what queuing one request costs the calling scheduler
#   (copying its terms, its job handle), replies collected outside the time;
# - the Elixir side of `ErlangPython.call/4` (options, checks, encoding): the
#   call against `ErlangPython.Runtime.request/2` given the built request;
# - the two ways a reply reaches a caller that waits for it on its scheduler,
#   each forced whatever the workers decide: a message (`enif_send` from the
#   worker thread; the caller yields and looks in its mailbox), and a reply
#   left in the job that the caller's poll copies out (what `request/2` does
#   while the workers spin; see the threading guide). Raw pings, no options.
#
# After the table: how the workers' waits for a request ended during the
# ping and call rows (caught spinning, or parked and why), so whether they
# spin on this machine is seen, not guessed. ELIXIR_ERL_OPTIONS passes VM
# flags (e.g. "+sbwt none"); see the threading guide.
#
# Also `:py.call` (the Erlang facade: semaphore, routing, process
# environment) beside the same call, and the process's CPU time per call
# (every thread, from /proc) during the 100-caller row: with callers
# enough to keep both cores busy, CPU per call bounds the rate.
#
# RUNS (default 200) short runs of N (default 500) calls each. On a shared
# machine compare two checkouts by running this file from each in turn:
#   (cd CHECKOUT && MIX_ENV=prod mix run /path/to/bench/latency.exs)
Code.require_file("machine.exs", __DIR__)
Code.require_file("callers.exs", __DIR__)

defmodule Bench.Latency do
  @runs String.to_integer(System.get_env("RUNS", "200"))
  @n String.to_integer(System.get_env("N", "500"))

  # {best, median} microseconds per call of `fun`.
  def per_call(fun) do
    for _ <- 1..100, do: fun.()

    @runs
    |> runs(fn -> :timer.tc(fn -> for _ <- 1..@n, do: fun.() end) |> elem(0) |> Kernel./(@n) end)
    |> best_and_median(&Enum.min/1)
  end

  # {best, median} microseconds per request of submitting 100 pings in a
  # row; their replies are collected after the clock stops.
  def submit_only do
    alias ErlangPython.Native

    runs(@runs, fn ->
      {us, submitted} =
        :timer.tc(fn ->
          for _ <- 1..100, do: (ref = make_ref()) && {ref, Native.submit(ref, :ping)}
        end)

      for {ref, _handle} <- submitted, do: receive(do: ({^ref, :pong} -> :ok))
      us / 100
    end)
    |> best_and_median(&Enum.min/1)
  end

  # One raw ping answered by message: the caller yields and looks in its
  # mailbox until the reply comes.
  def message_ping do
    ref = make_ref()
    _handle = ErlangPython.Native.submit(ref, :ping)
    in_mailbox(ref)
  end

  defp in_mailbox(ref) do
    receive do
      {^ref, :pong} -> :ok
    after
      0 ->
        :erlang.yield()
        in_mailbox(ref)
    end
  end

  # One raw ping whose reply the caller's poll takes from the job.
  def polled_ping do
    ref = make_ref()
    ref |> ErlangPython.Native.submit_polled(:ping) |> from_job(ref)
  end

  defp from_job(handle, ref) do
    case ErlangPython.Native.poll_reply(handle) do
      {:reply, :pong} ->
        :ok

      :waiting ->
        :erlang.yield()
        from_job(handle, ref)

      :sent ->
        receive(do: ({^ref, :pong} -> :ok))
    end
  end

  # {best, median} calls per second of `processes` callers, `total` calls
  # in all.
  def throughput(processes, total, fun) do
    processes
    |> Bench.Callers.rates(total, div(@runs, 10), fun)
    |> best_and_median(&Enum.max/1)
  end

  # One round trip between two BEAM processes, in microseconds.
  def process_round_trip do
    echo = spawn_link(fn -> echo() end)

    per_call(fn ->
      send(echo, {self(), :hi})
      receive(do: (:hi -> :ok))
    end)
  end

  defp echo do
    receive do
      {from, message} -> send(from, message)
    end

    echo()
  end

  @waits [
    :completed,
    :caught_spinning,
    :parked_after_spin,
    :parked_slow_arrivals,
    :parked_no_free_core
  ]

  # `fun.()`, and how the workers' waits for a request ended meanwhile
  # (ErlangPython.pool_stats/0): whether they spun, and if not why not.
  def with_waits(fun) do
    before = waits()
    result = fun.()
    {result, Map.merge(waits(), before, fn _key, later, earlier -> later - earlier end)}
  end

  defp waits do
    workers = ErlangPython.pool_stats().workers
    Map.new(@waits, fn key -> {key, Enum.sum(Enum.map(workers, & &1[key]))} end)
  end

  defp runs(runs, fun), do: for(_ <- 1..runs, do: fun.())

  defp best_and_median(values, best),
    do: {best.(values), values |> Enum.sort() |> Enum.at(div(length(values), 2))}
end

{_mode, _load} =
  Bench.Machine.start("#{ErlangPython.Runtime.workers()} Python worker(s), best of short runs")

add = fn -> {:ok, 3} = ErlangPython.call(:operator, :add, [1, 2]) end
py_add = fn -> {:ok, 3} = :py.call(:operator, :add, [1, 2]) end
request = {:call, :operator, :add, [1, 2], %{}}

{ping, ping_waits} =
  Bench.Latency.with_waits(fn ->
    Bench.Latency.per_call(fn -> :pong = ErlangPython.ping() end)
  end)

{call, call_waits} = Bench.Latency.with_waits(fn -> Bench.Latency.per_call(add) end)

cpu_before = Bench.Machine.cpu_us()

{hundred, hundred_waits} =
  Bench.Latency.with_waits(fn -> Bench.Latency.throughput(100, 20_000, add) end)

# Every call of the row's runs (div(RUNS, 10) runs of 20,000 calls).
hundred_runs = max(div(String.to_integer(System.get_env("RUNS", "200")), 10), 1)
hundred_cpu = (Bench.Machine.cpu_us() - cpu_before) / (hundred_runs * 20_000)

rows = [
  {"BEAM process -> process -> back", Bench.Latency.process_round_trip(), "us"},
  {"submit only (scheduler side)", Bench.Latency.submit_only(), "us"},
  {"raw ping, reply by message", Bench.Latency.per_call(&Bench.Latency.message_ping/0), "us"},
  {"raw ping, reply taken from the job", Bench.Latency.per_call(&Bench.Latency.polled_ping/0),
   "us"},
  {"ping", ping, "us"},
  {"call operator.add(1, 2)", call, "us"},
  {"Runtime.request of the same call",
   Bench.Latency.per_call(fn -> {:ok, 3} = ErlangPython.Runtime.request(request, 30_000) end),
   "us"},
  {":py.call of the same", Bench.Latency.per_call(py_add), "us"},
  {"call with 100 callers", hundred, "calls/s"}
]

format = fn
  value when value >= 1000 -> :erlang.float_to_binary(value / 1, decimals: 0)
  value -> :erlang.float_to_binary(value / 1, decimals: 2)
end

IO.puts(
  "\n#{String.pad_trailing("", 36)} #{String.pad_leading("best", 10)} #{String.pad_leading("median", 10)}"
)

for {name, {best, median}, unit} <- rows do
  IO.puts(
    "#{String.pad_trailing(name, 36)} #{String.pad_leading(format.(best), 10)} " <>
      "#{String.pad_leading(format.(median), 10)}  #{unit}"
  )
end

IO.puts(
  "#{String.pad_trailing("CPU per call, 100 callers", 36)} " <>
    "#{String.pad_leading(format.(hundred_cpu), 10)} #{String.pad_leading("", 10)}  us (all threads)"
)

# A request already queued when a worker looks is no wait: with many
# callers one wake-up serves several requests.
IO.puts("\nrequests completed, and how the workers' waits for one ended (pool_stats/0)")

for {name, waits} <- [
      {"ping", ping_waits},
      {"call operator.add(1, 2)", call_waits},
      {"call with 100 callers", hundred_waits}
    ] do
  IO.puts("  #{String.pad_trailing(name, 24)} #{inspect(waits)}")
end

IO.puts("\nload average at end #{Bench.Machine.loadavg()}")
