defmodule ErlangPython.TelemetryTest do
  # Not async: one test sets the application's environment, another
  # defines a stand-in for the :telemetry library.
  use ExUnit.Case, async: false

  import ExUnit.CaptureLog

  alias ErlangPython.Telemetry
  alias ErlangPython.Telemetry.Poller

  doctest ErlangPython.Telemetry

  @pool [:erlang_python, :pool, :stats]
  @worker [:erlang_python, :worker, :stats]

  # A handler that sends each event to `test`, tagged with `tag`.
  defp forward(test, tag) do
    fn event, measurements, metadata, config ->
      send(test, {tag, event, measurements, metadata, config})
    end
  end

  defp attached(events, tag \\ :got) do
    id = {__MODULE__, make_ref()}
    :ok = Telemetry.attach_many(id, events, forward(self(), tag), :the_config)
    on_exit(fn -> Telemetry.detach(id) end)
    id
  end

  test "the pool's events carry pool_stats/0's figures, and a call shows in them" do
    attached([@pool, @worker])
    {:ok, 3} = ErlangPython.call(:operator, :add, [1, 2])
    :ok = Telemetry.emit_pool_stats()

    assert_received {:got, @pool, pool, %{}, :the_config}
    assert %{shared_queue: shared, queued: queued, busy_workers: busy, workers: 1} = pool
    assert is_integer(shared) and queued >= shared and busy in [0, 1]

    assert_received {:got, @worker, first, %{index: 0}, :the_config}
    refute Map.has_key?(first, :index)
    assert first.busy in [0, 1]
    assert first.completed >= 1

    # Every figure is a number, as telemetry reporters expect.
    assert Enum.all?(Map.values(first), &is_integer/1)

    expected_keys = ErlangPython.pool_stats().workers |> hd() |> Map.delete(:index) |> Map.keys()
    assert Enum.sort(Map.keys(first)) == Enum.sort(expected_keys)

    {:ok, 3} = ErlangPython.call(:operator, :add, [1, 2])
    :ok = Telemetry.emit_pool_stats()
    assert_received {:got, @worker, later, %{index: 0}, _}
    assert later.completed > first.completed
  end

  test "a handler sees only the events it was attached to, until detached" do
    id = attached([@pool])
    :ok = Telemetry.emit_pool_stats()
    assert_received {:got, @pool, _, _, _}
    refute_received {:got, @worker, _, _, _}

    assert Telemetry.detach(id) == :ok
    :ok = Telemetry.emit_pool_stats()
    refute_received {:got, @pool, _, _, _}
    assert Telemetry.detach(id) == {:error, :not_found}
  end

  test "an id is attached once" do
    id = attached([@pool])
    assert Telemetry.attach(id, @worker, forward(self(), :again), nil) == {:error, :already_exists}
    :ok = Telemetry.emit_pool_stats()
    refute_received {:again, _, _, _, _}
  end

  test "bad handlers and event names are refused" do
    assert_raise ArgumentError, ~r/function of 4 arguments/, fn ->
      Telemetry.attach(:bad, @pool, fn _ -> :ok end, nil)
    end

    assert_raise ArgumentError, ~r/non-empty list of atoms/, fn ->
      Telemetry.attach(:bad, ["erlang_python"], forward(self(), :bad), nil)
    end

    assert_raise ArgumentError, ~r/non-empty list of atoms/, fn ->
      Telemetry.attach(:bad, [], forward(self(), :bad), nil)
    end

    assert Telemetry.detach(:bad) == {:error, :not_found}
  end

  test "a handler that fails is detached and logged; the others still get the event" do
    test = self()
    failing = {__MODULE__, :failing}

    :ok = Telemetry.attach(failing, @pool, fn _, _, _, _ -> raise "handler broke" end, nil)

    on_exit(fn -> Telemetry.detach(failing) end)
    attached([@pool])

    log = capture_log(fn -> send(test, {:emitted, Telemetry.emit_pool_stats()}) end)

    assert_received {:emitted, :ok}
    assert_received {:got, @pool, _, _, _}
    assert log =~ "handler broke"
    assert log =~ "detached"
    assert Telemetry.detach(failing) == {:error, :not_found}
  end

  test "events go to the :telemetry library when it is loaded" do
    Process.register(self(), :erlang_python_telemetry_test)

    # A stand-in with :telemetry's execute/3, removed afterwards.
    {:module, :telemetry, beam, _} =
      defmodule :telemetry do
        def execute(event, measurements, metadata),
          do: send(:erlang_python_telemetry_test, {:library, event, measurements, metadata})
      end

    assert is_binary(beam)

    on_exit(fn ->
      :code.purge(:telemetry)
      :code.delete(:telemetry)
      :code.purge(:telemetry)
    end)

    :ok = Telemetry.emit_pool_stats()
    assert_received {:library, @pool, %{workers: 1}, %{}}
    assert_received {:library, @worker, %{completed: _}, %{index: 0}}

    # Unloaded, the library gets nothing and emitting still works.
    :code.purge(:telemetry)
    :code.delete(:telemetry)
    :code.purge(:telemetry)
    refute :erlang.module_loaded(:telemetry)
    :ok = Telemetry.emit_pool_stats()
    refute_received {:library, _, _, _}
  end

  describe "the poller" do
    test "emits at its interval" do
      attached([@pool])
      poller = start_supervised!({Poller, interval: 20})
      assert_receive {:got, @pool, _, _, _}, 1_000
      assert_receive {:got, @pool, _, _, _}, 1_000
      assert Process.alive?(poller)
    end

    test "refuses a bad interval or an unknown option" do
      for bad <- [0, -5, 1.5, nil, :soon] do
        assert_raise ArgumentError, ~r/must be a positive integer/, fn ->
          Poller.start_link(interval: bad)
        end
      end

      assert_raise ArgumentError, ~r/unknown keys \[:every\]/, fn ->
        Poller.start_link(interval: 10, every: 10)
      end
    end

    test "configured, the application emits the pool's events by itself" do
      {peer, node} =
        ErlangPython.PeerNode.start!([~c"-erlang_python", ~c"pool_stats_interval", ~c"20"])

      on_exit(fn -> ErlangPython.PeerNode.stop(peer) end)

      :ok =
        :erpc.call(node, Telemetry, :attach, [
          :peer_test,
          @worker,
          &ErlangPython.TestRemote.forward_event/4,
          self()
        ])

      assert_receive {:event, ^node, @worker, %{completed: _}, %{index: 0}}, 5_000
      assert_receive {:event, ^node, @worker, _, _}, 5_000
    end

    test "the application starts one only when :pool_stats_interval is set" do
      on_exit(fn -> Application.delete_env(:erlang_python, :pool_stats_interval) end)

      Application.delete_env(:erlang_python, :pool_stats_interval)
      assert Poller.configured_child() == []

      Application.put_env(:erlang_python, :pool_stats_interval, 5_000)
      assert [{Poller, [interval: 5_000, name: Poller]}] = Poller.configured_child()

      Application.put_env(:erlang_python, :pool_stats_interval, "5s")

      assert_raise ArgumentError, ~r/:pool_stats_interval must be a positive integer/, fn ->
        Poller.configured_child()
      end
    end
  end
end
