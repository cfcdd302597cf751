# What writing a large dict in the VM's map order saves the caller
# (native/erlang_python_nif/src/etf/map_order.rs), on the BEAM alone: the
# same 100,000-key map as one external-format binary, its pairs in the
# order a Python dict keeps them (insertion), in the VM's own map order (as
# the NIF writes them where it predicts that order), and shuffled; each
# decoded with `binary_to_term(bin, [:safe])` in a fresh process, the three
# alternated, median microseconds of 31 rounds:
#
#   MIX_ENV=prod mix run bench/data_map_order.exs
#
# Then the whole call, whose figures depend on the running OTP (the order
# is used on OTP 25 only: see convert/map_order.rs).
defmodule MapOrderBench do
  def external(pairs) do
    body = for {key, value} <- pairs, into: <<>>, do: form(key) <> form(value)
    <<131, 104, 2, 119, 2, "ok", 116, length(pairs)::32, body::binary>>
  end

  defp form(term),
    do: binary_part(:erlang.term_to_binary(term), 1, byte_size(:erlang.term_to_binary(term)) - 1)

  def decode_us(external) do
    parent = self()

    spawn(fn ->
      started = System.monotonic_time(:microsecond)
      {:ok, _} = :erlang.binary_to_term(external, [:safe])
      send(parent, {:took, System.monotonic_time(:microsecond) - started})
    end)

    receive do
      {:took, us} -> us
    end
  end

  def median(values), do: values |> Enum.sort() |> Enum.at(div(length(values), 2))

  def load, do: File.read!("/proc/loadavg") |> String.split() |> Enum.take(3) |> Enum.join(" ")
end

pairs = Enum.map(0..99_999, &{"key#{&1}", &1})
in_vm_order = pairs |> Map.new() |> Map.to_list()
shuffled = Enum.shuffle(pairs)
forms = Enum.map([pairs, in_vm_order, shuffled], &MapOrderBench.external/1)

IO.puts("load average: #{MapOrderBench.load()}  (OTP #{System.otp_release()})")

rounds = for _ <- 1..31, do: Enum.map(forms, &MapOrderBench.decode_us/1)

[insertion, vm_order, random] =
  Enum.map(0..2, fn column -> MapOrderBench.median(Enum.map(rounds, &Enum.at(&1, column))) end)

IO.puts("binary_to_term of a 100,000-key map, pairs in insertion order: #{insertion} us")
IO.puts("                                      in the VM's map order:    #{vm_order} us")
IO.puts("                                      shuffled:                 #{random} us")

File.write!(
  Path.expand("bench_map_order.py", __DIR__),
  "_M = {f'key{i}': i for i in range(100_000)}\ndef existing():\n    return _M\n"
)

:ok = ErlangPython.exec("import sys; sys.path.insert(0, #{inspect(Path.expand(".", __DIR__))})")
call = fn -> {:ok, _} = ErlangPython.call(:bench_map_order, :existing, []) end
call.()
times = for _ <- 1..31, do: elem(:timer.tc(call), 0)
IO.puts("an existing 100,000-key map returned (whole call): #{MapOrderBench.median(times)} us")
IO.puts("load average: #{MapOrderBench.load()}")
