defmodule ErlangPython.InterpreterTest do
  # tracemalloc and the tracer are interpreter-wide: not async.
  use ExUnit.Case, async: false

  import ExUnit.CaptureLog

  alias ErlangPython.{Interpreter, Logging, Memory, Tracing}

  doctest ErlangPython.Interpreter
  doctest ErlangPython.Memory
  doctest ErlangPython.Tracing
  doctest ErlangPython.Logging

  setup do
    on_exit(fn ->
      Tracing.disable()
      Tracing.clear()
      Logging.configure(level: :warning)
    end)
  end

  describe "Memory" do
    test "gc/1 collects garbage it reports" do
      :ok =
        ErlangPython.exec(
          "class _Cycle:\n    pass\ndef _make_cycles(n):\n    for _ in range(n):\n        a, b = _Cycle(), _Cycle()\n        a.b, b.a = b, a"
        )

      # The automatic collector would free some first: pause it meanwhile.
      {:ok, nil} = ErlangPython.call(:gc, :disable, [])
      {:ok, nil} = ErlangPython.call(:__main__, :_make_cycles, [500])
      assert {:ok, collected} = Memory.gc(2)
      {:ok, nil} = ErlangPython.call(:gc, :enable, [])
      assert collected >= 1000
      assert {:error, {:badarg, _}} = Memory.gc(3)
    end

    test "tracemalloc figures appear only while tracing" do
      :ok = Memory.tracemalloc_start(3)
      {:ok, stats} = Memory.stats()
      assert stats.tracemalloc
      assert is_integer(stats.traced_memory_current)
      :ok = Memory.tracemalloc_stop()
      {:ok, stats} = Memory.stats()
      refute stats.tracemalloc
      refute Map.has_key?(stats, :traced_memory_peak)
      assert {:error, {:badarg, _}} = Memory.tracemalloc_start(0)
    end
  end

  describe "Interpreter" do
    test "version is sys.version" do
      {:ok, version} = Interpreter.version()
      assert {:ok, ^version} = ErlangPython.eval("__import__('sys').version")
      {:ok, version_info} = ErlangPython.eval("__import__('sys').version_info[:2]")
      assert Interpreter.own_gil_supported?() == version_info >= {3, 12}
    end

    test "reload of a module that is not imported, or a bad fd" do
      assert :ok = Interpreter.reload(~c"ep_not_imported_anywhere")
      assert {:error, {:badarg, _}} = Interpreter.dup_fd(-1)
      assert {:error, %ErlangPython.Error{type: "OSError"}} = Interpreter.dup_fd(987_654)
    end
  end

  describe "Tracing" do
    test "spans in threads do not nest across threads" do
      :ok = Tracing.enable()

      :ok =
        ErlangPython.exec("""
        import threading, erlang
        def _work():
            with erlang.Span('in-thread'):
                pass
        with erlang.Span('outer'):
            t = threading.Thread(target=_work)
            t.start(); t.join()
        """)

      {:ok, spans} = Tracing.spans()
      assert %{parent_id: nil} = Enum.find(spans, &(&1.name == "in-thread"))
      assert Tracing.enabled?()
    end
  end

  describe "Logging" do
    test "the level filters; the format applies; records carry Python metadata" do
      :ok = Logging.configure(level: :error, format: "[%(name)s] %(message)s")

      log =
        capture_log([metadata: [:python_logger]], fn ->
          :ok =
            ErlangPython.exec(
              "import logging\nlogging.getLogger('ep.test').warning('w')\nlogging.getLogger('ep.test').error('e')"
            )
        end)

      assert log =~ "[ep.test] e"
      assert log =~ "python_logger=ep.test"
      refute log =~ "[ep.test] w"
    end

    test "erlang.setup_logging from Python" do
      log =
        capture_log(fn ->
          :ok =
            ErlangPython.exec(
              "import erlang, logging\nerlang.setup_logging(level=10)\nlogging.debug('from setup')"
            )
        end)

      assert log =~ "from setup"
    end

    test "bad options are errors" do
      assert {:error, {:badarg, _}} = Logging.configure(level: :loud)
      assert_raise ArgumentError, fn -> Logging.configure(colour: true) end
    end
  end
end
