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
#   while the workers spin; see the threading guide). Raw pings, no options,
#   and the same for the call (a tuple reply, built on a heap). A checkout
#   without replies taken from the job prints no rows for them.
#
# After the table: #16's idle targets for the call (at most 3 us, at most
# 1.5x ping), then how the workers' waits for a request ended during the
# ping and call rows (caught spinning, or parked and why), so whether they
# spin on this machine is seen, not guessed, and the workers' busy time per
# request; then the heap fragments the VM allocates per call for each of
# the call's hand-offs. ELIXIR_ERL_OPTIONS passes VM flags (e.g.
# "+sbwt none"); see the threading guide.
#
# Also `:py.call` (the Erlang facade: semaphore, routing, process
# environment) beside the same call, and the process's CPU time per call
# (every thread, `Bench.Machine.cpu_us/1`) during the 100-caller row: with callers
# enough to keep both cores busy, CPU per call bounds the rate.
#
# RUNS (default 200) short runs of N (default 500) calls each. On a shared
# machine compare two checkouts by running this file from each in turn,
# several times alternated (the last line names the checkout measured):
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

  # One raw request answered by message, as message_ping/0; its reply.
  def by_message(op) do
    ref = make_ref()
    _handle = ErlangPython.Native.submit(ref, op)
    reply_in_mailbox(ref)
  end

  defp reply_in_mailbox(ref) do
    receive do
      {^ref, reply} -> reply
    after
      0 ->
        :erlang.yield()
        reply_in_mailbox(ref)
    end
  end

  # Whether this build has replies taken from the job (a checkout without
  # them runs this file too, for A/B: those rows are left out).
  def polled? do
    Code.ensure_loaded?(ErlangPython.Native) and
      function_exported?(ErlangPython.Native, :submit_polled, 2)
  end

  # One raw ping whose reply the caller's poll takes from the job.
  def polled_ping, do: :pong = polled(:ping)

  # One raw request whose reply the caller's poll takes from the job (or
  # from the mailbox, when the worker sent it: too large to leave).
  def polled(op) do
    ref = make_ref()
    # apply/3: a build without the NIF compiles this file without warnings.
    handle = apply(ErlangPython.Native, :submit_polled, [ref, op])
    from_job(handle, ref)
  end

  defp from_job(handle, ref) do
    case apply(ErlangPython.Native, :poll_reply, [handle]) do
      {:reply, reply} ->
        reply

      :waiting ->
        :erlang.yield()
        from_job(handle, ref)

      :sent ->
        receive(do: ({^ref, reply} -> reply))
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
    :caught_brief_spin,
    :parked_no_free_core,
    :probes,
    :probes_caught
  ]

  # `fun.()`, and how the workers' waits for a request ended meanwhile
  # (ErlangPython.pool_stats/0): whether they spun, and if not why not.
  def with_waits(fun) do
    before = waits()
    result = fun.()
    {result, Map.merge(waits(), before, fn _key, later, earlier -> later - earlier end)}
  end

  # Only the counters the checkout measured has (an older one has no
  # probes).
  defp waits do
    workers = ErlangPython.pool_stats().workers
    keys = Enum.filter([:busy_us | @waits], &Map.has_key?(hd(workers), &1))
    Map.new(keys, fn key -> {key, Enum.sum(Enum.map(workers, & &1[key]))} end)
  end

  # The workers' busy time per request completed, in microseconds (taking
  # the request, running it, replying: the worker's side of a call).
  def worker_us(%{busy_us: busy, completed: completed}) when completed > 0,
    do: busy / completed

  def worker_us(_waits), do: 0.0

  # Heap fragments allocated per call of `fun` (the VM's eheap_alloc calls,
  # by allocator instance; instance 0 serves threads outside the
  # schedulers, such as the workers), over `n` calls.
  def heap_allocations(n, fun) do
    for _ <- 1..100, do: fun.()
    before = eheap_allocs()
    for _ <- 1..n, do: fun.()

    for {instance, count} <- eheap_allocs(),
        (count - Map.get(before, instance, 0)) / n >= 0.01,
        do: {instance, Float.round((count - Map.get(before, instance, 0)) / n, 2)}
  end

  defp eheap_allocs do
    for {:instance, instance, info} <- :erlang.system_info({:allocator, :eheap_alloc}),
        {:eheap_alloc, giga, count} <- [List.keyfind(info[:calls], :eheap_alloc, 0)],
        into: %{},
        do: {instance, giga * 1_000_000_000 + count}
  end

  defp runs(runs, fun), do: for(_ <- 1..runs, do: fun.())

  defp best_and_median(values, best),
    do: {best.(values), Bench.Machine.median(values)}
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
  {"raw ping, reply by message", Bench.Latency.per_call(&Bench.Latency.message_ping/0), "us"}
]

# The same hand-offs for the call, forced: a reply that is a tuple (built
# on a heap), where ping's is an atom.
raw_call = {:call, :operator, :add, [1, 2], %{}}

rows =
  rows ++
    [
      {"raw call, reply by message",
       Bench.Latency.per_call(fn -> {:ok, 3} = Bench.Latency.by_message(raw_call) end), "us"}
    ] ++
    if Bench.Latency.polled?() do
      [
        {"raw ping, reply taken from the job", Bench.Latency.per_call(&Bench.Latency.polled_ping/0),
         "us"},
        {"raw call, reply taken from the job",
         Bench.Latency.per_call(fn -> {:ok, 3} = Bench.Latency.polled(raw_call) end), "us"}
      ]
    else
      []
    end

rows =
  rows ++
    [
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

# #16's idle targets for the sequential call, from the rows above.
{{call_best, call_median}, {ping_best, ping_median}} = {call, ping}
verdict = fn met -> if met, do: "met", else: "NOT met" end
IO.puts("\n#16 idle: call <= 3 us: best #{format.(call_best)}, median #{format.(call_median)} us")

IO.puts(
  "#16 idle: call / ping <= 1.5: best #{format.(call_best / ping_best)}, " <>
    "median #{format.(call_median / ping_median)}"
)

IO.puts(
  "#16 idle (by the best figures): <= 3 us #{verdict.(call_best <= 3.0)}; " <>
    "<= 1.5x ping #{verdict.(call_best / ping_best <= 1.5)}"
)

# A request already queued when a worker looks is no wait: with many
# callers one wake-up serves several requests.
IO.puts("\nrequests completed, and how the workers' waits for one ended (pool_stats/0)")

for {name, waits} <- [
      {"ping", ping_waits},
      {"call operator.add(1, 2)", call_waits},
      {"call with 100 callers", hundred_waits}
    ] do
  {busy, waits} = Map.pop(waits, :busy_us)
  IO.puts("  #{String.pad_trailing(name, 24)} #{inspect(waits)}")

  IO.puts(
    "  #{String.pad_trailing("", 24)} worker busy #{format.(Bench.Latency.worker_us(Map.put(waits, :busy_us, busy)))} us per request"
  )
end

# A reply that is not an immediate needs heap: built where, and freed by
# whom, is part of a hand-off's cost (a fragment per reply allocated on the
# worker thread, instance 0, made the call slower taken from the job).
IO.puts("\nheap fragments allocated per call, {allocator instance, count}")

by_message = [{"raw call, reply by message", fn -> Bench.Latency.by_message(raw_call) end}]
from_job = [{"raw call, reply taken from the job", fn -> Bench.Latency.polled(raw_call) end}]
allocation_rows = if Bench.Latency.polled?(), do: by_message ++ from_job, else: by_message

for {name, fun} <- allocation_rows do
  allocations = Bench.Latency.heap_allocations(20_000, fun)
  IO.puts("  #{String.pad_trailing(name, 36)} #{inspect(allocations)}")
end

{commit, _} = System.cmd("git", ["rev-parse", "--short", "HEAD"], stderr_to_stdout: true)
IO.puts("\nbuild: the checkout at #{String.trim(commit)} (#{File.cwd!()})")
IO.puts("load average at end #{Bench.Machine.loadavg()}")
