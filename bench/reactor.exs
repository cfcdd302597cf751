# Reactor and event-loop socket figures: mix run bench/reactor.exs
#
# Every server runs on loopback and every client is a :gen_tcp socket in
# this VM, so each figure includes Erlang's side of the exchange too.
#
#   round trip     one connection, 64-byte messages sent and echoed one
#                  after the other (median of 3 runs of N)
#   100 conns      100 connections at once, each doing M round trips:
#                  round trips per second over all of them
#   connections/s  accept in Erlang, hand over (or connect to asyncio),
#                  one 64-byte echo, close; one after the other
#
# Servers: an ErlangPython.Reactor (Python protocol, Erlang's poller), an
# asyncio server on the interpreter's ErlangEventLoop accepting on a
# duplicate of Erlang's listening socket, and, as the floor, a process per
# connection in plain Erlang. BENCH_QUICK=1 for a smoke run.
Code.require_file("machine.exs", __DIR__)
alias ErlangPython.Reactor

quick = System.get_env("BENCH_QUICK") in ["1", "true"]
scale = fn n -> if quick, do: max(div(n, 20), 1), else: n end
median = &Bench.Machine.median/1
Bench.Machine.start("#{ErlangPython.Runtime.workers()} Python workers")

echo = """
import erlang.reactor as reactor

class Echo(reactor.Protocol):
    def data_received(self, data):
        self.write_buffer.extend(data)
        return "write_pending"

reactor.set_protocol_factory(Echo)
"""

:ok =
  ErlangPython.exec("""
  import asyncio, socket

  async def _bench_echo(reader, writer):
      while data := await reader.read(65536):
          writer.write(data)
      writer.close()

  _bench_servers = []

  async def bench_serve(fd):
      sock = socket.socket(fileno=fd)
      sock.setblocking(False)
      _bench_servers.append(await asyncio.start_server(_bench_echo, sock=sock))

  async def bench_stop():
      for server in _bench_servers:
          server.close()
      _bench_servers.clear()
  """)

defmodule Bench.ReactorServers do
  # Each server: {name, start(listen) -> handle, on_accept(handle, socket), stop(handle)}.
  def erlang_echo(socket) do
    case :gen_tcp.recv(socket, 0) do
      {:ok, data} ->
        :ok = :gen_tcp.send(socket, data)
        erlang_echo(socket)

      {:error, _} ->
        :gen_tcp.close(socket)
    end
  end

  # Accepts forever, giving each connection to `serve`.
  def acceptor(listen, serve) do
    spawn_link(fn -> accept_loop(listen, serve) end)
  end

  defp accept_loop(listen, serve) do
    case :gen_tcp.accept(listen) do
      {:ok, socket} ->
        serve.(socket)
        accept_loop(listen, serve)

      {:error, _} ->
        :ok
    end
  end
end

servers = [
  {"reactor (Python protocol)",
   fn listen ->
     {:ok, reactor} = Reactor.start_link(setup: echo)

     Bench.ReactorServers.acceptor(listen, fn socket ->
       :ok = Reactor.handoff(reactor, socket)
       :ok = :gen_tcp.close(socket)
     end)

     reactor
   end, &Reactor.stop/1},
  {"asyncio on ErlangEventLoop",
   fn listen ->
     {:ok, fd} = ErlangPython.dup_fd(listen)
     {:ok, nil} = ErlangPython.call(:__main__, :bench_serve, [fd])
     nil
   end, fn _ -> {:ok, nil} = ErlangPython.call(:__main__, :bench_stop, []) end},
  {"plain Erlang (floor)",
   fn listen ->
     Bench.ReactorServers.acceptor(listen, fn socket ->
       pid = spawn(fn -> receive(do: (:go -> Bench.ReactorServers.erlang_echo(socket))) end)
       :ok = :gen_tcp.controlling_process(socket, pid)
       send(pid, :go)
     end)
   end, fn _ -> :ok end}
]

payload = :binary.copy("x", 64)

connect = fn port ->
  :gen_tcp.connect(~c"127.0.0.1", port, [:binary, active: false, nodelay: true])
end

round_trips = fn client, n ->
  for _ <- 1..n do
    :ok = :gen_tcp.send(client, payload)
    {:ok, ^payload} = :gen_tcp.recv(client, 64, 10_000)
  end
end

n = scale.(5_000)
m = scale.(500)
c = scale.(2_000)

IO.puts(
  "\n#{String.pad_trailing("server", 28)} #{String.pad_leading("round trip", 12)} " <>
    "#{String.pad_leading("100 conns", 14)} #{String.pad_leading("connections/s", 14)}"
)

for {name, start, stop} <- servers do
  {:ok, listen} = :gen_tcp.listen(0, [:binary, active: false, backlog: 1024, reuseaddr: true])
  {:ok, port} = :inet.port(listen)
  handle = start.(listen)

  # Round trip, one connection.
  {:ok, client} = connect.(port)
  round_trips.(client, 50)

  rtt =
    median.(
      for _ <- 1..3 do
        {us, _} = :timer.tc(fn -> round_trips.(client, n) end)
        us / n
      end
    )

  :gen_tcp.close(client)

  # 100 concurrent connections.
  clients = for _ <- 1..100, do: elem(connect.(port), 1)
  Enum.each(clients, &round_trips.(&1, 1))

  {us, _} =
    :timer.tc(fn ->
      clients
      |> Enum.map(fn client -> Task.async(fn -> round_trips.(client, m) end) end)
      |> Task.await_many(:infinity)
    end)

  concurrent = 100 * m / (us / 1_000_000)
  Enum.each(clients, &:gen_tcp.close/1)

  # Connections per second: connect, one echo, close.
  {us, _} =
    :timer.tc(fn ->
      for _ <- 1..c do
        {:ok, client} = connect.(port)
        round_trips.(client, 1)
        :gen_tcp.close(client)
      end
    end)

  per_second = c / (us / 1_000_000)
  stop.(handle)
  :gen_tcp.close(listen)

  IO.puts(
    "#{String.pad_trailing(name, 28)} #{String.pad_leading(:erlang.float_to_binary(rtt, decimals: 1) <> " us", 12)} " <>
      "#{String.pad_leading("#{round(concurrent)} rt/s", 14)} #{String.pad_leading("#{round(per_second)}", 14)}"
  )
end

IO.puts("\nload average at end #{Bench.Machine.loadavg()}")
