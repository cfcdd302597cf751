# What the :py facade costs over the Elixir API: mix run bench/facade.exs
#
# Prints the median microseconds per call (sequential, one process) of the
# same Python call made through ErlangPython.call/4 (the shared __main__),
# through a process environment, and through :py.call/3 (process
# environment, pool routing, semaphore slot, None -> none on the result).
Code.require_file("machine.exs", __DIR__)
n = String.to_integer(System.get_env("BENCH_N", "20000"))
runs = 7

median = &Bench.Machine.median/1

per_call = fn fun ->
  fun.()

  median.(
    for _ <- 1..runs do
      {us, _} = :timer.tc(fn -> for _ <- 1..n, do: fun.() end)
      us / n
    end
  )
end

{:ok, env} = ErlangPython.Context.process()
list = Enum.to_list(1..1_000)

rows = [
  {"ErlangPython.call(:operator, :add, [1, 2])",
   fn -> {:ok, 3} = ErlangPython.call(:operator, :add, [1, 2]) end},
  {"  same, context: Context.process()",
   fn -> {:ok, 3} = ErlangPython.call(:operator, :add, [1, 2], context: env) end},
  {":py.call(:operator, :add, [1, 2])", fn -> {:ok, 3} = :py.call(:operator, :add, [1, 2]) end},
  {"ErlangPython.call(:builtins, :list, [1..1000 list])",
   fn -> {:ok, _} = ErlangPython.call(:builtins, :list, [list]) end},
  {":py.call(:builtins, :list, [1..1000 list])",
   fn -> {:ok, _} = :py.call(:builtins, :list, [list]) end}
]

IO.puts("| call | us/call |\n|------|---------|")

for {name, fun} <- rows do
  IO.puts("| #{name} | #{:erlang.float_to_binary(per_call.(fun), decimals: 2)} |")
end
