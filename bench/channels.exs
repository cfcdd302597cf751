# Channel and buffer throughput: mix run bench/channels.exs
#
# Erlang -> Python: producers `put/3` items into a channel (bounded at
# 1 MB, so back-pressure is part of the figure) while one Python call
# drains it with `for item in channel`. Buffer: Elixir writes chunks, Python
# reads them with read() (copies into bytes) and through memoryview (no
# copy). Each row is the median of 3 runs. BENCH_QUICK=1 for a smoke run.
Code.require_file("machine.exs", __DIR__)
alias ErlangPython.{Buffer, Channel}

quick = System.get_env("BENCH_QUICK") in ["1", "true"]
runs = 3
scale = fn n -> if quick, do: max(div(n, 20), 1), else: n end
median = &Bench.Machine.median/1

:ok =
  ErlangPython.exec("""
  import erlang, hashlib

  def bench_drain(ref):
      n = 0
      size = 0
      for item in erlang.Channel(ref):
          n += 1
          size += len(item)
      return [n, size]

  def bench_read(buf, chunk):
      total = 0
      while True:
          data = buf.read(chunk)
          if not data:
              return total
          total += len(data)

  def bench_view(buf):
      view = memoryview(buf)
      digest = hashlib.sha1(view).digest()
      n = len(view)
      view.release()
      return n
  """)

channel_run = fn producers, total, payload, type ->
  per = div(total, producers)
  {:ok, ch} = Channel.new(max_size: 1024 * 1024, type: type)

  reader =
    Task.async(fn -> ErlangPython.call(:__main__, :bench_drain, [ch], timeout: :infinity) end)

  {us, _} =
    :timer.tc(fn ->
      1..producers
      |> Enum.map(fn _ ->
        Task.async(fn -> for _ <- 1..per, do: :ok = Channel.put(ch, payload) end)
      end)
      |> Task.await_many(:infinity)

      :ok = Channel.close(ch)
      {:ok, [n, _]} = Task.await(reader, :infinity)
      ^n = per * producers
    end)

  us
end

IO.puts("| channel (Erlang -> Python) | producers | item | items/s | MB/s |")
IO.puts("|---|---:|---:|---:|---:|")

for {type, size, total} <- [{:bytes, 64, 400_000}, {:bytes, 16_384, 40_000}, {:term, 64, 400_000}],
    producers <- [1, 100] do
  total = scale.(total)
  payload = :binary.copy("x", size)
  us = median.(for _ <- 1..runs, do: channel_run.(producers, total, payload, type))
  per_s = total / (us / 1_000_000)

  IO.puts(
    "| #{type} | #{producers} | #{size} B | #{round(per_s)} | #{Float.round(per_s * size / 1_048_576, 1)} |"
  )
end

mb = if quick, do: 10, else: 100
chunk = :binary.copy("y", 1024 * 1024)

fill = fn ->
  {:ok, buf} = Buffer.new(size: mb * 1024 * 1024)
  {us, _} = :timer.tc(fn -> for _ <- 1..mb, do: :ok = Buffer.write(buf, chunk) end)
  :ok = Buffer.close(buf)
  {buf, us}
end

write_us = median.(for _ <- 1..runs, do: elem(fill.(), 1))

read_us =
  median.(
    for _ <- 1..runs do
      {buf, _} = fill.()
      {us, {:ok, _}} = :timer.tc(fn -> ErlangPython.call(:__main__, :bench_read, [buf, 65_536]) end)
      us
    end
  )

view_us =
  median.(
    for _ <- 1..runs do
      {buf, _} = fill.()
      {us, {:ok, _}} = :timer.tc(fn -> ErlangPython.call(:__main__, :bench_view, [buf]) end)
      us
    end
  )

# sha1 over the same bytes held in Python, to separate hashing from access.
{:ok, _} = ErlangPython.eval("globals().__setitem__('_b', b'y' * #{mb * 1024 * 1024})")

hash_us =
  median.(
    for _ <- 1..runs do
      {us, {:ok, _}} =
        :timer.tc(fn -> ErlangPython.eval("len(__import__('hashlib').sha1(_b).digest())") end)

      us
    end
  )

mbps = fn us -> Float.round(mb / (us / 1_000_000), 1) end
IO.puts("\n| buffer (#{mb} MB) | MB/s |")
IO.puts("|---|---:|")
IO.puts("| Elixir write (1 MB chunks) | #{mbps.(write_us)} |")
IO.puts("| Python read(65536) into bytes (one copy) | #{mbps.(read_us)} |")
IO.puts("| Python sha1(memoryview(buf)) (no copy) | #{mbps.(view_us)} |")
IO.puts("| Python sha1(bytes already in Python), reference | #{mbps.(hash_us)} |")
