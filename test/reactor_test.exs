defmodule ErlangPython.ReactorTest do
  # Counts the VM's open descriptors: nothing else may open or close any meanwhile.
  use ExUnit.Case, async: false

  alias ErlangPython.{Descriptor, Reactor}

  doctest ErlangPython.Descriptor

  @echo """
  import erlang.reactor as reactor

  class Echo(reactor.Protocol):
      def data_received(self, data):
          self.write_buffer.extend(data)
          return "write_pending"

  reactor.set_protocol_factory(Echo)
  """

  # Each connection's end reaches client_info["owner"] as {"lost", fd, tag}.
  @tracking """
  import erlang, erlang.reactor as reactor

  class Tracked(reactor.Protocol):
      def data_received(self, data):
          self.write_buffer.extend(bytes(data).upper())
          return "write_pending"

      def connection_lost(self):
          info = self.client_info
          erlang.send(info["owner"], ("lost", self.fd, info["tag"]))

  reactor.set_protocol_factory(Tracked)
  """

  defp open_fds, do: length(File.ls!("/proc/self/fd"))

  defp loopback_pair(listen) do
    {:ok, port} = :inet.port(listen)
    {:ok, client} = :gen_tcp.connect(~c"127.0.0.1", port, [:binary, active: false])
    {:ok, server} = :gen_tcp.accept(listen, 5_000)
    {client, server}
  end

  describe "a reactor serving connections Erlang accepted" do
    test "100 concurrent TCP connections echo, close, and leave no descriptor behind" do
      {:ok, listen} = :gen_tcp.listen(0, [:binary, active: false, backlog: 128])
      # Warm up: the interpreter, the reactor module, the poller.
      {:ok, warm} = Reactor.start_link(setup: @echo)
      Reactor.stop(warm)
      before = open_fds()

      {:ok, reactor} = Reactor.start_link(setup: @echo)

      clients =
        for n <- 1..100 do
          {client, server} = loopback_pair(listen)
          # The reactor takes a duplicate; Erlang closes its socket at once.
          assert :ok = Reactor.handoff(reactor, server, %{"n" => n})
          :ok = :gen_tcp.close(server)
          {n, client}
        end

      assert %{connections: 100, handed_off: 100} = Reactor.stats(reactor)

      replies =
        clients
        |> Task.async_stream(
          fn {n, client} ->
            message = "hello #{n} " <> String.duplicate("x", n * 100)
            :ok = :gen_tcp.send(client, message)
            {:ok, echoed} = :gen_tcp.recv(client, byte_size(message), 10_000)
            {message, echoed}
          end,
          max_concurrency: 100,
          timeout: 30_000
        )
        |> Enum.map(fn {:ok, pair} -> pair end)

      assert length(replies) == 100
      for {message, echoed} <- replies, do: assert(echoed == message)

      # Each client hangs up; the reactor sees end of stream and closes its copy.
      for {_, client} <- clients, do: :ok = :gen_tcp.close(client)
      wait_until(fn -> Reactor.stats(reactor).connections == 0 end)
      assert %{connections: 0, closed: 100} = Reactor.stats(reactor)

      :ok = Reactor.stop(reactor)
      :ok = :gen_tcp.close(listen)
      # Only the listen socket was opened outside the measured span. At most:
      # a descriptor an earlier test left (a worker's pipe) may close meanwhile.
      assert open_fds() <= before - 1
    end

    test "connection_lost runs when the peer closes, with the client info given" do
      {:ok, reactor} = Reactor.start_link(setup: @tracking)
      {:ok, listen} = :gen_tcp.listen(0, [:binary, active: false])
      {client, server} = loopback_pair(listen)
      {:ok, fd} = Descriptor.dup(server)
      :ok = :gen_tcp.close(server)

      assert :ok = Reactor.handoff(reactor, fd, %{"tag" => "first", "owner" => self()})
      :ok = :gen_tcp.send(client, "abc")
      assert {:ok, "ABC"} = :gen_tcp.recv(client, 3, 5_000)
      :ok = :gen_tcp.close(client)

      assert_receive {"lost", ^fd, "first"}, 5_000
      wait_until(fn -> Reactor.stats(reactor).connections == 0 end)
      # The reactor closed the descriptor it was given.
      assert {:error, :ebadf} = Descriptor.dup(fd)
      Reactor.stop(reactor)
      :gen_tcp.close(listen)
    end

    test "stopping the reactor closes its connections: the peer sees the end" do
      {:ok, reactor} = Reactor.start_link(setup: @echo)
      {:ok, listen} = :gen_tcp.listen(0, [:binary, active: false])
      {client, server} = loopback_pair(listen)
      :ok = Reactor.handoff(reactor, server)
      :ok = :gen_tcp.close(server)
      :ok = Reactor.stop(reactor)
      assert {:error, :closed} = :gen_tcp.recv(client, 0, 5_000)
      :gen_tcp.close(listen)
    end

    test "a reactor killed outright still closes its descriptors" do
      {:ok, reactor} = Reactor.start(setup: @echo)
      {:ok, listen} = :gen_tcp.listen(0, [:binary, active: false])
      {client, server} = loopback_pair(listen)
      :ok = Reactor.handoff(reactor, server)
      :ok = :gen_tcp.close(server)
      :ok = :gen_tcp.send(client, "a")
      {:ok, "a"} = :gen_tcp.recv(client, 1, 5_000)
      Process.exit(reactor, :kill)
      assert {:error, :closed} = :gen_tcp.recv(client, 0, 5_000)
      :gen_tcp.close(listen)
    end

    test "each reactor has its own protocol factory" do
      upper = String.replace(@echo, "extend(data)", "extend(bytes(data).upper())")
      {:ok, plain} = Reactor.start_link(setup: @echo)
      {:ok, shouting} = Reactor.start_link(setup: upper)
      {:ok, listen} = :gen_tcp.listen(0, [:binary, active: false])
      {c1, s1} = loopback_pair(listen)
      {c2, s2} = loopback_pair(listen)
      :ok = Reactor.handoff(plain, s1)
      :ok = Reactor.handoff(shouting, s2)
      :ok = :gen_tcp.send(c1, "hey")
      :ok = :gen_tcp.send(c2, "hey")
      assert {:ok, "hey"} = :gen_tcp.recv(c1, 3, 5_000)
      assert {:ok, "HEY"} = :gen_tcp.recv(c2, 3, 5_000)
      Enum.each([c1, c2, s1, s2, listen], &:gen_tcp.close/1)
      Reactor.stop(plain)
      Reactor.stop(shouting)
    end

    test "async_pending: the reply goes out when Python signals write readiness" do
      setup = """
      import threading, erlang.reactor as reactor

      class Later(reactor.Protocol):
          def data_received(self, data):
              fd, payload = self.fd, b"later:" + bytes(data)
              def finish():
                  self.write_buffer.extend(payload)
                  reactor.signal_write_ready(fd)
              threading.Timer(0.05, finish).start()
              return "async_pending"

      reactor.set_protocol_factory(Later)
      """

      {:ok, reactor} = Reactor.start_link(setup: setup)
      {:ok, listen} = :gen_tcp.listen(0, [:binary, active: false])
      {client, server} = loopback_pair(listen)
      :ok = Reactor.handoff(reactor, server)
      :ok = :gen_tcp.send(client, "x")
      assert {:ok, "later:x"} = :gen_tcp.recv(client, 7, 5_000)
      Enum.each([client, server, listen], &:gen_tcp.close/1)
      Reactor.stop(reactor)
    end

    test "a :socket socket is handed over like a gen_tcp one" do
      {:ok, reactor} = Reactor.start_link(setup: @echo)
      {:ok, listen} = :socket.open(:inet, :stream, :tcp)
      :ok = :socket.bind(listen, %{family: :inet, addr: {127, 0, 0, 1}, port: 0})
      :ok = :socket.listen(listen)
      {:ok, %{port: port}} = :socket.sockname(listen)
      {:ok, client} = :gen_tcp.connect(~c"127.0.0.1", port, [:binary, active: false])
      {:ok, server} = :socket.accept(listen, 5_000)
      :ok = Reactor.handoff(reactor, server)
      :ok = :socket.close(server)
      :ok = :gen_tcp.send(client, "via socket")
      assert {:ok, "via socket"} = :gen_tcp.recv(client, 10, 5_000)
      :gen_tcp.close(client)
      :socket.close(listen)
      Reactor.stop(reactor)
    end
  end

  describe "bad input gets clear errors" do
    test "handing over something that is not a descriptor raises" do
      {:ok, reactor} = Reactor.start_link(setup: @echo)

      assert_raise ArgumentError, ~r/expected a file descriptor/, fn ->
        Reactor.handoff(reactor, "not a socket")
      end

      assert_raise ArgumentError, ~r/expected a file descriptor/, fn ->
        ErlangPython.dup_fd(self())
      end

      Reactor.stop(reactor)
    end

    test "a closed descriptor or socket is :ebadf, and the reactor carries on" do
      {:ok, reactor} = Reactor.start_link(setup: @echo)
      {:ok, {a, b}} = :py_nif.socketpair()
      :ok = Descriptor.close(a)
      :ok = Descriptor.close(b)
      assert {:error, :ebadf} = Reactor.handoff(reactor, a)
      assert {:error, :ebadf} = Reactor.handoff(reactor, -1)

      {:ok, {c, d}} = :py_nif.socketpair()
      assert :ok = Reactor.handoff(reactor, c)
      assert {:error, :already_served} = Reactor.handoff(reactor, c)
      :ok = Descriptor.close(d)
      wait_until(fn -> Reactor.stats(reactor).connections == 0 end)

      {:ok, socket} = :gen_tcp.listen(0, [])
      :ok = :gen_tcp.close(socket)
      assert {:error, :ebadf} = Reactor.handoff(reactor, socket)
      assert {:error, :ebadf} = ErlangPython.dup_fd(socket)
      assert %{connections: 0} = Reactor.stats(reactor)
      Reactor.stop(reactor)
    end

    test "the VM's own descriptors cannot be closed" do
      assert {:error, :vm_descriptor} = Descriptor.close(0)
      assert {:error, :vm_descriptor} = :py_nif.fd_close(2)
      {:ok, reactor} = Reactor.start_link(setup: @echo)
      assert {:error, :vm_descriptor} = Reactor.handoff(reactor, 0)
      Reactor.stop(reactor)
      # Duplicating one is harmless: the copy is the caller's.
      assert {:ok, copy} = ErlangPython.dup_fd(1)
      assert :ok = Descriptor.close(copy)
    end

    test "setup code that raises fails the start; bad options raise" do
      Process.flag(:trap_exit, true)

      assert {:error, {:setup_failed, %ErlangPython.Error{type: "ZeroDivisionError"}}} =
               Reactor.start_link(setup: "1 / 0")

      assert_raise ArgumentError, fn -> Reactor.start_link(bogus: 1) end
      assert_raise ArgumentError, ~r/:setup/, fn -> Reactor.start_link(setup: 42) end

      assert_raise ArgumentError, ~r/callback_timeout/, fn ->
        Reactor.start_link(callback_timeout: 0)
      end
    end

    test "a protocol that raises or returns an unknown action loses its connection only" do
      setup = """
      import erlang.reactor as reactor

      class Picky(reactor.Protocol):
          def data_received(self, data):
              if data == b"boom":
                  raise RuntimeError("boom")
              if data == b"what":
                  return "dance"
              self.write_buffer.extend(data)
              return "write_pending"

      reactor.set_protocol_factory(Picky)
      """

      {:ok, reactor} = Reactor.start_link(setup: setup)
      {:ok, listen} = :gen_tcp.listen(0, [:binary, active: false])
      {c1, s1} = loopback_pair(listen)
      {c2, s2} = loopback_pair(listen)
      {c3, s3} = loopback_pair(listen)
      for s <- [s1, s2, s3], do: :ok = Reactor.handoff(reactor, s)

      ExUnit.CaptureLog.capture_log(fn ->
        :ok = :gen_tcp.send(c1, "boom")
        :ok = :gen_tcp.send(c2, "what")
        Enum.each([s1, s2], &:gen_tcp.close/1)
        assert {:error, :closed} = :gen_tcp.recv(c1, 0, 5_000)
        assert {:error, :closed} = :gen_tcp.recv(c2, 0, 5_000)
      end)

      :ok = :gen_tcp.send(c3, "fine")
      assert {:ok, "fine"} = :gen_tcp.recv(c3, 4, 5_000)
      assert %{connections: 1} = Reactor.stats(reactor)
      Enum.each([c1, c2, c3, s3, listen], &:gen_tcp.close/1)
      Reactor.stop(reactor)
    end
  end

  test "a callback that outlives :callback_timeout is interrupted and its connection closed" do
    setup = """
    import erlang.reactor as reactor

    class Slow(reactor.Protocol):
        def data_received(self, data):
            while data == b"slow":
                pass
            self.write_buffer.extend(data)
            return "write_pending"

    reactor.set_protocol_factory(Slow)
    """

    {:ok, reactor} = Reactor.start_link(setup: setup, callback_timeout: 300)
    {:ok, listen} = :gen_tcp.listen(0, [:binary, active: false])
    {c1, s1} = loopback_pair(listen)
    {c2, s2} = loopback_pair(listen)
    :ok = Reactor.handoff(reactor, s1)
    :ok = Reactor.handoff(reactor, s2)
    Enum.each([s1, s2], &:gen_tcp.close/1)

    ExUnit.CaptureLog.capture_log(fn ->
      :ok = :gen_tcp.send(c1, "slow")
      assert {:error, :closed} = :gen_tcp.recv(c1, 0, 10_000)
    end)

    :ok = :gen_tcp.send(c2, "quick")
    assert {:ok, "quick"} = :gen_tcp.recv(c2, 5, 5_000)
    Enum.each([c1, c2, listen], &:gen_tcp.close/1)
    Reactor.stop(reactor)
  end

  describe "Erlang facades" do
    test "py_reactor_context and py:dup_fd, as in the original" do
      {:ok, reactor} = :py_reactor_context.start_link(1, :worker, %{setup_code: @echo})
      {:ok, listen} = :gen_tcp.listen(0, [:binary, active: false])
      {client, server} = loopback_pair(listen)
      {:ok, fd} = :inet.getfd(server)
      {:ok, dup} = :py.dup_fd(fd)
      assert dup != fd
      :ok = :py_reactor_context.handoff(reactor, dup, %{type: :tcp})
      :ok = :gen_tcp.close(server)
      :ok = :gen_tcp.send(client, "erlang")
      assert {:ok, "erlang"} = :gen_tcp.recv(client, 6, 5_000)
      assert %{connections: 1} = :py_reactor_context.stats(reactor)

      assert {:error, {:unsupported_mode, :owngil}} =
               :py_reactor_context.start_link(2, :owngil, %{})

      :ok = :py_reactor_context.stop(reactor)
      Enum.each([client, listen], &:gen_tcp.close/1)
    end

    test "py_nif descriptor primitives: socketpair, read, write, select, close" do
      {:ok, {a, b}} = :py_nif.socketpair()
      {:ok, watch} = :py_nif.fd_select_read(b)
      {:ok, 5} = :py_nif.fd_write(a, "hello")
      assert_receive {:select, ^watch, :undefined, :ready_input}, 2_000
      assert {:ok, "hello"} = :py_nif.fd_read(b, 100)
      assert {:error, :eagain} = :py_nif.fd_read(b, 100)
      {:ok, wwatch} = :py_nif.fd_select_write(a)
      assert_receive {:select, ^wwatch, :undefined, :ready_output}, 2_000
      # A watched descriptor leaves the poller before it is closed.
      assert :ok = :py_nif.fd_close(b)
      assert :ok = :py_nif.fd_close(a)
      assert {:error, :ebadf} = :py_nif.fd_read(b, 1)
      assert {:error, :ebadf} = :py_nif.fd_close(a)
    end
  end

  describe "erlang.reactor from plain Python" do
    test "a protocol can be driven on a socketpair without Erlang" do
      assert {:ok, ["write_pending", "read_pending", "ping", true, true]} =
               ErlangPython.eval("""
               (lambda socket, reactor: (lambda s1, s2: (
                   reactor.set_protocol_factory(type("E", (reactor.Protocol,), {
                       "data_received": lambda self, d: (self.write_buffer.extend(d), "write_pending")[1]})),
                   reactor.init_connection(s1.fileno(), {}),
                   s2.send(b"ping"),
                   [reactor.on_read_ready(s1.fileno()),
                    reactor.on_write_ready(s1.fileno()),
                    s2.recv(10).decode(),
                    (reactor.close_connection(s1.fileno()), s1.close(), s2.close()) is not None,
                    isinstance(__import__("erlang").ReactorBuffer._test_create(b"x"), bytes)])[-1]
               )(*socket.socketpair()))(__import__("socket"), __import__("erlang.reactor").reactor)
               """)
    end
  end

  defp wait_until(fun, tries \\ 200) do
    cond do
      fun.() -> :ok
      tries == 0 -> flunk("condition not reached")
      true -> Process.sleep(25) && wait_until(fun, tries - 1)
    end
  end
end
