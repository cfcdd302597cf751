# What memory accounting costs: mix run bench/memory.exs
#
# The allocator hooks (guides/memory.md) are always installed, so their cost
# is measured against a build without them: run this script in both
# checkouts, alternately (farm-bench --vs). Within one run, the "context"
# rows run in a context process with its own account (`memory_limit:
# :infinity`), the others in the default namespace (interpreter account
# only): their difference is what per-context accounting adds.
#
# Each row: the median of 7 runs, microseconds per operation.
defmodule MemoryBench do
  @runs 7

  def median(values), do: values |> Enum.sort() |> Enum.at(div(length(values), 2))

  def per_op_us(n, fun) do
    fun.()

    median(
      for _ <- 1..@runs do
        {us, _} = :timer.tc(fn -> for _ <- 1..n, do: fun.() end)
        us / n
      end
    )
  end

  def rows(opts) do
    list = Enum.to_list(1..1_000_000)
    {:ok, _} = ErlangPython.eval("1", %{}, opts)

    [
      {"call math.sqrt(2)", per_op_us(5_000, fn -> ErlangPython.call(:math, :sqrt, [2], opts) end)},
      {"1M-int list, Elixir -> Python -> Elixir",
       per_op_us(5, fn -> {:ok, _} = ErlangPython.eval("xs", %{xs: list}, opts) end)},
      {"Python: 1M small strs ([str(i) ...])",
       per_op_us(5, fn ->
         {:ok, _} = ErlangPython.eval("len([str(i) for i in range(10**6)])", %{}, opts)
       end)},
      {"Python: 100k 4 KiB bytes objects",
       per_op_us(5, fn ->
         {:ok, _} = ErlangPython.eval("sum(len(b'x' * 4096) for _ in range(10**5))", %{}, opts)
       end)},
      {"Python: bytearray grown to 64 MiB",
       per_op_us(5, fn ->
         {:ok, _} =
           ErlangPython.eval(
             "len((lambda b: [b.extend(b'z' * 65536) for _ in range(1024)] and b)(bytearray()))",
             %{},
             opts
           )
       end)}
    ]
  end
end

{:ok, _} = Application.ensure_all_started(:erlang_python)
load = "/proc/loadavg" |> File.read!() |> String.split() |> Enum.take(3) |> Enum.join(" ")

counted? = function_exported?(ErlangPython.Memory, :usage, 1)

IO.puts(
  "memory bench: accounting hooks #{if counted?, do: "on", else: "absent (baseline build)"}; loadavg #{load}"
)

main = MemoryBench.rows([])

context =
  if counted? do
    {:ok, ctx} = ErlangPython.ContextServer.start_link(memory_limit: :infinity)
    MemoryBench.rows(context: ctx)
  end

for {{name, us}, index} <- Enum.with_index(main) do
  extra =
    case context do
      nil -> ""
      rows -> "   context: #{:erlang.float_to_binary(elem(Enum.at(rows, index), 1), decimals: 2)}"
    end

  IO.puts(
    String.pad_trailing(name, 45) <> :erlang.float_to_binary(us, decimals: 2) <> " us" <> extra
  )
end
