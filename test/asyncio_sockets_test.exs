defmodule ErlangPython.AsyncioSocketsTest do
  # Sockets of asyncio code running under ErlangEventLoop: the interpreter's
  # loop (coroutines returned by calls run there) and loops made by
  # asyncio.run() on a worker thread.
  use ExUnit.Case, async: false

  @moduletag timeout: 120_000

  setup_all do
    :ok =
      ErlangPython.exec("""
      import asyncio, os, socket, tempfile

      # Elixir strings arrive as str, other binaries as bytes.
      def _as_bytes(payload):
          return payload.encode() if isinstance(payload, str) else payload

      async def _as_echo(reader, writer):
          while data := await reader.read(65536):
              writer.write(data)
              await writer.drain()
          writer.close()

      async def _as_tcp_round_trip(payload):
          payload = _as_bytes(payload)
          server = await asyncio.start_server(_as_echo, "127.0.0.1", 0)
          port = server.sockets[0].getsockname()[1]
          reader, writer = await asyncio.open_connection("127.0.0.1", port)
          writer.write(payload)
          await writer.drain()
          echoed = await reader.readexactly(len(payload))
          writer.close()
          await writer.wait_closed()
          server.close()
          await server.wait_closed()
          return [type(asyncio.get_running_loop()).__name__, echoed]

      class _AsUdpEcho(asyncio.DatagramProtocol):
          def connection_made(self, transport):
              self.transport = transport
          def datagram_received(self, data, addr):
              self.transport.sendto(data.upper(), addr)

      class _AsUdpClient(asyncio.DatagramProtocol):
          def __init__(self):
              self.reply = asyncio.get_running_loop().create_future()
          def datagram_received(self, data, addr):
              self.reply.set_result(data)

      async def _as_udp_round_trip(payload):
          payload = _as_bytes(payload)
          loop = asyncio.get_running_loop()
          server, _ = await loop.create_datagram_endpoint(_AsUdpEcho, local_addr=("127.0.0.1", 0))
          port = server.get_extra_info("sockname")[1]
          client, protocol = await loop.create_datagram_endpoint(
              _AsUdpClient, remote_addr=("127.0.0.1", port))
          client.sendto(payload)
          reply = await asyncio.wait_for(protocol.reply, 5)
          client.close()
          server.close()
          return reply

      async def _as_unix_round_trip(payload):
          payload = _as_bytes(payload)
          path = os.path.join(tempfile.mkdtemp(), "echo.sock")
          server = await asyncio.start_unix_server(_as_echo, path)
          reader, writer = await asyncio.open_unix_connection(path)
          writer.write(payload)
          await writer.drain()
          echoed = await reader.readexactly(len(payload))
          writer.close()
          server.close()
          await server.wait_closed()
          # Python 3.13 removes the socket file when the server closes.
          if os.path.exists(path):
              os.unlink(path)
          os.rmdir(os.path.dirname(path))
          return echoed

      async def _as_sock_methods(payload):
          payload = _as_bytes(payload)
          loop = asyncio.get_running_loop()
          listener = socket.socket()
          listener.bind(("127.0.0.1", 0))
          listener.listen()
          listener.setblocking(False)
          client = socket.socket()
          client.setblocking(False)
          await loop.sock_connect(client, listener.getsockname())
          conn, _ = await loop.sock_accept(listener)
          await loop.sock_sendall(client, payload)
          got = b""
          while len(got) < len(payload):
              got += await loop.sock_recv(conn, 65536)
          for s in (conn, client, listener):
              s.close()
          return got

      def _as_run_in_new_loop(payload):
          return asyncio.run(_as_tcp_round_trip(payload))

      _as_servers = {}

      async def _as_serve_fd(fd):
          # Python owns fd (a duplicate of Erlang's listening socket).
          sock = socket.socket(fileno=fd)
          sock.setblocking(False)
          server = await asyncio.start_server(_as_echo, sock=sock)
          _as_servers[fd] = server
          return "serving"

      async def _as_stop(fd):
          server = _as_servers.pop(fd)
          server.close()
          await server.wait_closed()
          return "stopped"
      """)

    :ok
  end

  test "TCP server and client on the interpreter's ErlangEventLoop" do
    payload = :crypto.strong_rand_bytes(200_000)

    assert {:ok, ["ErlangEventLoop", ^payload]} =
             ErlangPython.call(:__main__, :_as_tcp_round_trip, [payload])
  end

  test "asyncio.run() in a call makes an ErlangEventLoop whose sockets work" do
    assert {:ok, ["ErlangEventLoop", "ping"]} =
             ErlangPython.call(:__main__, :_as_run_in_new_loop, ["ping"])
  end

  test "UDP datagram endpoints" do
    assert {:ok, "HELLO UDP"} = ErlangPython.call(:__main__, :_as_udp_round_trip, ["hello udp"])
  end

  test "Unix socket server and client" do
    assert {:ok, "over a unix socket"} =
             ErlangPython.call(:__main__, :_as_unix_round_trip, ["over a unix socket"])
  end

  test "the loop's sock_* methods" do
    assert {:ok, "raw sockets"} = ErlangPython.call(:__main__, :_as_sock_methods, ["raw sockets"])
  end

  test "an asyncio server accepts on a duplicate of a socket Erlang listens on" do
    {:ok, listen} = :gen_tcp.listen(0, [:binary, active: false, reuseaddr: true])
    {:ok, port} = :inet.port(listen)
    {:ok, fd} = ErlangPython.dup_fd(listen)
    assert {:ok, "serving"} = ErlangPython.call(:__main__, :_as_serve_fd, [fd])

    for n <- 1..20 do
      {:ok, client} = :gen_tcp.connect(~c"127.0.0.1", port, [:binary, active: false])
      :ok = :gen_tcp.send(client, "n=#{n}")
      expected = "n=#{n}"
      assert {:ok, ^expected} = :gen_tcp.recv(client, byte_size(expected), 5_000)
      :gen_tcp.close(client)
    end

    assert {:ok, "stopped"} = ErlangPython.call(:__main__, :_as_stop, [fd])
    # Python closed its copy; Erlang's socket still listens.
    assert {:ok, ^port} = :inet.port(listen)
    :gen_tcp.close(listen)
  end

  test "py_context:submit_await serves a handed-over socket from the Erlang facade" do
    {:ok, ctx} = :py_context.new(%{mode: :worker})

    :ok =
      :py_context.exec(ctx, """
      import asyncio, socket

      async def serve(fd):
          async def echo(reader, writer):
              writer.write(b"ctx:" + await reader.read(100))
              await writer.drain()
              writer.close()
          sock = socket.socket(fileno=fd)
          sock.setblocking(False)
          global server
          server = await asyncio.start_server(echo, sock=sock)
          return "serving"

      async def stop():
          server.close()
          await server.wait_closed()
          return "stopped"

      def plain(x):
          return x * 2
      """)

    {:ok, listen} = :gen_tcp.listen(0, [:binary, active: false])
    {:ok, port} = :inet.port(listen)
    {:ok, lfd} = :inet.getfd(listen)
    {:ok, dup} = :py.dup_fd(lfd)
    assert {:ok, "serving"} = :py_context.submit_await(ctx, :__main__, :serve, [dup])
    {:ok, client} = :gen_tcp.connect(~c"127.0.0.1", port, [:binary, active: false])
    :ok = :gen_tcp.send(client, "hi")
    assert {:ok, "ctx:hi"} = :gen_tcp.recv(client, 6, 5_000)
    :gen_tcp.close(client)

    {:ok, ref} = :py_context.submit(ctx, :__main__, :plain, [21])
    assert {:ok, 42} = :py_event_loop.await(ref, 5_000)
    assert {:ok, "stopped"} = :py_context.submit_await(ctx, :__main__, :stop, [], %{}, 5_000)
    assert {:error, _} = :py_context.submit_await(ctx, :__main__, :missing, [])
    :gen_tcp.close(listen)
    :py_context.stop(ctx)
  end
end
