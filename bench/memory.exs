# What memory accounting costs: mix run bench/memory.exs
#
# The allocator hooks (guides/memory.md) are always installed, so their cost
# is measured against a build without them: run this script in both
# checkouts, alternately (farm-bench --vs). Within one run, the columns
# compare a context process counted on its own (`memory_limit: :infinity`)
# with a plain one (counted in the interpreter's total only): their
# difference is what per-context accounting adds.
#
# Each figure: the median of 5 runs, microseconds per operation.
Code.require_file("machine.exs", __DIR__)

defmodule MemoryBench do
  @runs 7

  defdelegate median(values), to: Bench.Machine

  # Median microseconds per operation of `fun.(opts)`, `n` times in a row,
  # for each of `columns` (keyword lists of call options). The columns take
  # turns within every run, in alternating order, so a machine slowing
  # down or speeding up weighs on all of them alike.
  def per_op_us(columns, n, fun) do
    Enum.each(columns, fun)

    timings =
      for run <- 1..@runs,
          {opts, column} <- alternate(Enum.with_index(columns), run) do
        {us, _} = :timer.tc(fn -> for _ <- 1..n, do: fun.(opts) end)
        {column, us / n}
      end

    for column <- 0..(length(columns) - 1) do
      timings |> Enum.filter(&(elem(&1, 0) == column)) |> Enum.map(&elem(&1, 1)) |> median()
    end
  end

  defp alternate(columns, run), do: if(rem(run, 2) == 0, do: Enum.reverse(columns), else: columns)

  def rows(columns) do
    list = Enum.to_list(1..1_000_000)
    eval = fn code, opts -> {:ok, _} = ErlangPython.eval(code, %{}, opts) end

    [
      {"call math.sqrt(2)",
       per_op_us(columns, 2_000, fn opts ->
         {:ok, _} = ErlangPython.call(:math, :sqrt, [2], opts)
       end)},
      {"1M-int list, Elixir -> Python -> Elixir",
       per_op_us(columns, 1, fn opts -> {:ok, _} = ErlangPython.eval("xs", %{xs: list}, opts) end)},
      {"Python: 1M small strs ([str(i) ...])",
       per_op_us(columns, 1, &eval.("len([str(i) for i in range(10**6)])", &1))},
      {"Python: 100k 4 KiB bytes objects",
       per_op_us(columns, 2, &eval.("sum(len(b'x' * 4096) for _ in range(10**5))", &1))},
      {"Python: bytearray grown to 64 MiB",
       per_op_us(
         columns,
         2,
         &eval.(
           "len((lambda b: [b.extend(b'z' * 65536) for _ in range(1024)] and b)(bytearray()))",
           &1
         )
       )}
    ]
  end
end

{:ok, _} = Application.ensure_all_started(:erlang_python)
load = "/proc/loadavg" |> File.read!() |> String.split() |> Enum.take(3) |> Enum.join(" ")
counted? = function_exported?(ErlangPython.Memory, :usage, 1)

IO.puts(
  "memory bench: accounting hooks #{if counted?, do: "on", else: "absent (baseline build)"}; loadavg #{load}"
)

# BENCH_COLUMNS=plain measures the plain context only: the same work in
# both builds, for a whole-process A/B.
{:ok, plain} = ErlangPython.ContextServer.start_link()

columns =
  if counted? and System.get_env("BENCH_COLUMNS") != "plain" do
    {:ok, counted} = ErlangPython.ContextServer.start_link(memory_limit: :infinity)
    [[context: plain], [context: counted]]
  else
    [[context: plain]]
  end

format = fn us -> :erlang.float_to_binary(us, decimals: 2) end

for {name, [plain_us | counted]} <- MemoryBench.rows(columns) do
  counted =
    case counted do
      [us] -> "   counted context: #{format.(us)}  (x#{format.(us / plain_us)})"
      [] -> ""
    end

  IO.puts(String.pad_trailing(name, 42) <> "plain context: " <> format.(plain_us) <> counted)
end
