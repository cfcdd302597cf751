# Mid-size payloads, sequential, with their CPU cost: MIX_ENV=prod mix run bench/payload.exs
#
# What one call costs when it carries the data Elixir apps send Python
# every day: an embedding-sized vector (1,536 floats or integers), 1,000
# atoms, 1,000 rows of four atom-keyed fields, and the same vectors made
# in Python and returned. bench/run.exs and bench/data.exs time tiny calls
# and million-item conversions; between the two, a call's time is the
# conversions plus the hand-offs, and the worker and the caller's
# scheduler wait for each other more often than they spin.
#
# Each row runs for PAYLOAD_SECONDS (default 2) in blocks of 100 calls,
# PAYLOAD_RUNS times (default 5), through the Elixir API and through the
# Erlang facade (`:py.call/3`, `:py.eval/1`: what erlang_python's users
# call, and what its own benchmark times). Printed per row: us per call
# (the mean over the run), the process's CPU per call (every thread,
# exact: `Bench.Machine.cpu_us/1`), CPU/wall, and how the worker's waits
# for a request ended (spun / parked); then min / median / max over the
# runs. BENCH_MODE (idle by default; busy, pinned: bench/machine.exs)
# sets up the machine. PAYLOAD_ROWS (comma-separated names) picks rows.
#
# On Debian 13: bin/test-trixie --exec env MIX_ENV=prod mix run bench/payload.exs
Code.require_file("machine.exs", __DIR__)

defmodule Bench.Payload do
  @block 100

  defdelegate median(values), to: Bench.Machine

  # One run of `fun` for `seconds`: %{us:, cpu:, share:, spun:, parked:}.
  def run(fun, seconds) do
    run = Bench.Machine.timed_run(fun, seconds, @block)

    %{
      us: run.wall / run.calls,
      cpu: run.cpu / run.calls,
      share: run.cpu / run.wall,
      spun: run.spun,
      parked: run.parked
    }
  end

  def fmt(value, width, decimals \\ 1),
    do: value |> :erlang.float_to_binary(decimals: decimals) |> String.pad_leading(width)
end

ints = Enum.to_list(1..1_536)
floats = Enum.map(ints, &(&1 * 0.5))
atoms = for i <- 1..1_000, do: Enum.at([:a, :b, :c, :ok, :error], rem(i, 5))

rows = for i <- 1..1_000, do: %{id: i, name: "user#{i}", score: i * 1.5, active: rem(i, 2) == 0}

ret_ints = "list(range(1536))"
ret_floats = "[i * 0.5 for i in range(1536)]"

all = [
  {"call", fn -> {:ok, 3} = ErlangPython.call(:operator, :add, [1, 2]) end,
   fn -> {:ok, 3} = :py.call(:operator, :add, [1, 2]) end},
  {"len_ints", fn -> {:ok, 1_536} = ErlangPython.call(:builtins, :len, [ints]) end,
   fn -> {:ok, 1_536} = :py.call(:builtins, :len, [ints]) end},
  {"len_floats", fn -> {:ok, 1_536} = ErlangPython.call(:builtins, :len, [floats]) end,
   fn -> {:ok, 1_536} = :py.call(:builtins, :len, [floats]) end},
  {"len_atoms", fn -> {:ok, 1_000} = ErlangPython.call(:builtins, :len, [atoms]) end,
   fn -> {:ok, 1_000} = :py.call(:builtins, :len, [atoms]) end},
  {"len_rows", fn -> {:ok, 1_000} = ErlangPython.call(:builtins, :len, [rows]) end,
   fn -> {:ok, 1_000} = :py.call(:builtins, :len, [rows]) end},
  {"ret_ints", fn -> {:ok, [_ | _]} = ErlangPython.eval(ret_ints) end,
   fn -> {:ok, [_ | _]} = :py.eval(ret_ints) end},
  {"ret_floats", fn -> {:ok, [_ | _]} = ErlangPython.eval(ret_floats) end,
   fn -> {:ok, [_ | _]} = :py.eval(ret_floats) end}
]

picked =
  case System.get_env("PAYLOAD_ROWS") do
    nil -> all
    names -> Enum.filter(all, fn {name, _, _} -> name in String.split(names, ",") end)
  end

runs = String.to_integer(System.get_env("PAYLOAD_RUNS", "5"))
seconds = String.to_integer(System.get_env("PAYLOAD_SECONDS", "2"))
{:ok, version} = ErlangPython.eval("__import__('sys').version.split()[0]")

Bench.Machine.start(
  "OTP #{System.otp_release()}, Elixir #{System.version()}, Python #{version}; " <>
    "#{runs} runs of #{seconds} s per row"
)

IO.puts(
  "#{String.pad_trailing("row", 22)}#{String.pad_leading("run", 4)}#{String.pad_leading("us/call", 10)}" <>
    "#{String.pad_leading("cpu us", 10)}#{String.pad_leading("cpu/wall", 10)}" <>
    "#{String.pad_leading("spun", 8)}#{String.pad_leading("parked", 8)}"
)

results =
  for {name, elixir, facade} <- picked, {api, fun} <- [{"", elixir}, {" :py", facade}] do
    label = name <> api
    Enum.each(1..20, fn _ -> fun.() end)

    per_run =
      for i <- 1..runs do
        r = Bench.Payload.run(fun, seconds)

        IO.puts(
          "#{String.pad_trailing(label, 22)}#{String.pad_leading(to_string(i), 4)}" <>
            "#{Bench.Payload.fmt(r.us, 10)}#{Bench.Payload.fmt(r.cpu, 10)}" <>
            "#{Bench.Payload.fmt(r.share, 10, 2)}" <>
            "#{String.pad_leading(to_string(r.spun), 8)}#{String.pad_leading(to_string(r.parked), 8)}"
        )

        r
      end

    {label, per_run}
  end

IO.puts("\n# over #{runs} runs, min / median / max; load average at end #{Bench.Machine.loadavg()}")
IO.puts("| row | us/call | cpu us/call | cpu/wall |\n|---|---|---|---|")

for {label, per_run} <- results do
  spread = fn key, decimals ->
    values = Enum.map(per_run, & &1[key])

    [Enum.min(values), Bench.Payload.median(values), Enum.max(values)]
    |> Enum.map_join(" / ", &:erlang.float_to_binary(&1, decimals: decimals))
  end

  IO.puts("| #{label} | #{spread.(:us, 1)} | #{spread.(:cpu, 1)} | #{spread.(:share, 2)} |")
end
