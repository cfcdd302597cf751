# Is the external-format route (src/convert/external.rs: results of 64
# items and more) worth it for maps on this VM? Times maps of 1,000, 20,000
# and 100,000 keys returned both ways in one run, alternating: the plain map takes the route; the same map plus one
# `datetime.date` value (which has no plain form) goes the direct way.
#   mix run bench/external_route.exs
runs = String.to_integer(System.get_env("BENCH_RUNS") || "11")

:ok =
  ErlangPython.exec("""
  import datetime
  def plain(n):
      return {f"key{i}": i for i in range(n)}
  def direct(n):
      d = plain(n)
      d["date"] = datetime.date(2020, 1, 1)
      return d
  """)

time = fn function, n ->
  {us, {:ok, map}} = :timer.tc(fn -> ErlangPython.call(:__main__, function, [n]) end)
  true = map_size(map) >= n
  us / 1000
end

median = fn values -> values |> Enum.sort() |> Enum.at(div(length(values), 2)) end
{:ok, load} = File.read("/proc/loadavg")
load = load |> String.split() |> Enum.take(3) |> Enum.join(" ")
IO.puts("OTP #{System.otp_release()}, load average #{load}")

for n <- [1_000, 20_000, 100_000] do
  pairs = for _ <- 1..runs, do: {time.(:plain, n), time.(:direct, n)}
  route = median.(Enum.map(pairs, &elem(&1, 0)))
  direct = median.(Enum.map(pairs, &elem(&1, 1)))
  ratio = median.(Enum.map(pairs, fn {a, b} -> a / b end))

  IO.puts(
    "#{n}-key map returned: route #{Float.round(route, 1)} ms, direct #{Float.round(direct, 1)} ms, " <>
      "route/direct (paired median) #{Float.round(ratio, 2)}"
  )
end
