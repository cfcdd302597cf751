# Where 100 concurrent callers' CPU goes: MIX_ENV=prod mix run bench/callers_budget.exs
#
# #16 asks for 100 callers doing `operator.add` at 500,000 calls/s on two
# cores: about 4 us of CPU per call, every thread counted. With enough
# callers to keep both cores busy, CPU per call bounds the rate, so this
# prints, beside each rate, what one call cost each kind of thread of this
# OS process (from /proc/self/task, spinning and parking included):
#
# - sched: the VM's normal schedulers (the caller's Elixir code, `submit`
#   and its copy, the reply's receipt and decode, process switches);
# - workers: the Python worker threads (taking the request, running it,
#   encoding and sending the reply, parking);
# - other: every other thread (dirty schedulers, aux, poll);
# - busy: how long a worker was busy with one request (pool_stats/0), and
#   how many of the workers' waits for a request ended parked, per call.
#
# Rows, alternated ROUNDS times (default 5) in this one VM, TOTAL calls
# each (default 200,000):
#
# - a BEAM process answering by message: the floor of a reply by message,
#   with the same callers, without NIF or thread;
# - `ErlangPython.Native.submit/2` of a ping and a plain `receive`: the
#   NIF's round trip without the Elixir side of a call;
# - `ErlangPython.ping/0` (a worker round trip that runs no Python);
# - `ErlangPython.call(:operator, :add, [1, 2])`, #16's row.
#
# Figures are best and median of the rounds; CPU columns are medians. On
# a shared machine compare two checkouts by running this file from each in
# turn, and keep the load average printed at the end beside the figures.
Code.require_file("machine.exs", __DIR__)
Code.require_file("callers.exs", __DIR__)

rounds = String.to_integer(System.get_env("ROUNDS", "5"))
total = String.to_integer(System.get_env("TOTAL", "200000"))

{_mode, _load} =
  Bench.Machine.start("#{ErlangPython.Runtime.workers()} Python worker(s), 100 callers")

echo = spawn(&Bench.Callers.echo/0)

rows = [
  {"BEAM process replying (floor)",
   fn ->
     ref = make_ref()
     send(echo, {self(), ref, 3})

     receive do
       {^ref, 3} -> :ok
     after
       30_000 -> raise "no echo"
     end
   end},
  {"Native.submit(:ping), receive",
   fn ->
     ref = make_ref()
     # Kept until the reply: a handle collected earlier cancels the job.
     handle = ErlangPython.Native.submit(ref, :ping)

     receive do
       {^ref, :pong} -> handle
     after
       30_000 -> raise "no pong"
     end
   end},
  {"ping", fn -> :pong = ErlangPython.ping() end},
  {"call operator.add(1, 2)", fn -> {:ok, 3} = ErlangPython.call(:operator, :add, [1, 2]) end}
]

for {_name, fun} <- rows, do: Bench.Callers.rates(100, 20_000, 1, fun)

results =
  for _ <- 1..rounds, {name, fun} <- rows, reduce: %{} do
    acc ->
      Map.update(
        acc,
        name,
        [Bench.Callers.budget(100, total, fun)],
        &[Bench.Callers.budget(100, total, fun) | &1]
      )
  end

IO.puts(
  "\n#{String.pad_trailing("100 callers", 32)}" <>
    Enum.map_join(
      ["best/s", "median/s", "sched", "workers", "other", "busy", "parks"],
      &String.pad_leading(&1, 10)
    ) <> "\n#{String.pad_trailing("", 52)}(CPU us per call)               (us)  (per call)"
)

for {name, _fun} <- rows do
  budgets = results[name]
  median = fn key -> Bench.Callers.median(Enum.map(budgets, & &1[key])) end
  best = budgets |> Enum.map(& &1.rate) |> Enum.max()

  figures =
    [best, median.(:rate)]
    |> Enum.map(&:erlang.float_to_binary(&1 / 1, decimals: 0))
    |> Kernel.++(
      Enum.map(
        [:sched, :workers, :other, :busy],
        &:erlang.float_to_binary(median.(&1), decimals: 2)
      )
    )
    |> Kernel.++([:erlang.float_to_binary(median.(:parks), decimals: 3)])

  IO.puts(String.pad_trailing(name, 32) <> Enum.map_join(figures, &String.pad_leading(&1, 10)))
end

IO.puts("\nload average at end #{Bench.Machine.loadavg()}")
