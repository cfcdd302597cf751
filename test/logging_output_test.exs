defmodule ErlangPython.LoggingOutputTest do
  # Changes Python's root logger level and Logger's: runs alone.
  use ExUnit.Case, async: false

  import ExUnit.CaptureIO
  import ExUnit.CaptureLog
  import ErlangPython.TestHelpers

  require Logger

  setup do
    level = Logger.level()

    on_exit(fn ->
      Logger.configure(level: level)
      ErlangPython.Logging.sync_level()
    end)

    :ok
  end

  describe "Logger metadata" do
    test "the caller's metadata reaches the Python record and comes back on the Logger event" do
      Logger.metadata(request_id: "req-42", user: 7)
      test = self()
      handler = unique("ep_meta_handler") |> String.to_atom()

      :ok = :logger.add_handler(handler, __MODULE__.Forward, %{config: %{pid: test}, level: :all})

      on_exit(fn -> :logger.remove_handler(handler) end)

      {:ok, env} = ErlangPython.Context.new()

      capture_log(fn ->
        :ok =
          ErlangPython.exec(
            """
            import logging

            class Keep(logging.Handler):
                def emit(self, record):
                    global kept
                    kept = (record.request_id, record.user, record.erlang_metadata)

            handler = Keep()
            logging.getLogger('ep.meta').addHandler(handler)
            logging.getLogger('ep.meta').warning('hello')
            logging.getLogger('ep.meta').removeHandler(handler)
            """,
            context: env
          )
      end)

      assert {:ok, {"req-42", 7, %{"request_id" => "req-42", "user" => 7}}} =
               ErlangPython.eval("kept", %{}, context: env)

      assert_receive {:log_event, %{msg: {:string, "hello"}, meta: meta}}, 5_000
      assert meta[:request_id] == "req-42"
      assert meta[:user] == 7
      assert meta[:python_logger] == "ep.meta"
    end

    test "a Python format can use the metadata; no metadata, no attribute" do
      :ok = ErlangPython.Logging.configure(level: :info, format: "[%(request_id)s] %(message)s")
      Logger.metadata(request_id: "abc")

      log =
        capture_log(fn ->
          :ok = ErlangPython.exec("import logging; logging.getLogger('ep.fmt').info('formatted')")
        end)

      assert log =~ "[abc] formatted"

      Logger.metadata(request_id: nil)
      :ok = ErlangPython.Logging.configure(level: :info)

      assert {:ok, false} =
               ErlangPython.eval(
                 "hasattr(__import__('logging').getLogger('x').makeRecord('n', 20, 'f', 1, 'm', (), None), 'request_id')"
               )
    end
  end

  describe "logging under a lock" do
    test "a record logged while Python holds a lock does not let a request that takes it in" do
      # While the log record travels to Logger, the worker must not serve
      # another request on its thread: one that takes the same
      # (non-reentrant) lock would wait forever for its own thread.
      {:ok, env} = ErlangPython.Context.new()
      :ok = ErlangPython.exec("import logging, threading\nlock = threading.Lock()", context: env)
      test = self()
      handler = unique("ep_hold_handler") |> String.to_atom()
      :ok = :logger.add_handler(handler, __MODULE__.Hold, %{config: %{pid: test}, level: :all})
      on_exit(fn -> :logger.remove_handler(handler) end)

      holder =
        Task.async(fn ->
          ErlangPython.exec("with lock:\n    logging.getLogger('ep.hold').warning('hold')",
            context: env,
            timeout: 20_000
          )
        end)

      assert_receive {:holding, logger_process}, 10_000

      taker =
        Task.async(fn ->
          ErlangPython.exec("with lock:\n    pass", context: env, timeout: 20_000)
        end)

      # Give the second request time to reach the worker, then let go.
      Process.sleep(200)
      send(logger_process, :go)
      assert Task.await(holder, 30_000) == :ok
      assert Task.await(taker, 30_000) == :ok
    end
  end

  describe "Python's level follows Logger's" do
    test "info records reach Logger when Logger is at :info, and stop at :warning" do
      Logger.configure(level: :info)
      :ok = ErlangPython.Logging.sync_level()

      log =
        capture_log(fn ->
          :ok = ErlangPython.exec("import logging; logging.getLogger('ep.lvl').info('shown')")
        end)

      assert log =~ "shown"
      assert {:ok, 20} = ErlangPython.eval("__import__('logging').getLogger().getEffectiveLevel()")

      Logger.configure(level: :warning)
      # The next record made during a call brings the level along.
      capture_log(fn ->
        ErlangPython.exec("import logging; logging.getLogger('ep.lvl').warning('sync')")
      end)

      assert {:ok, 30} = ErlangPython.eval("__import__('logging').getLogger().getEffectiveLevel()")

      log =
        capture_log(fn ->
          :ok = ErlangPython.exec("import logging; logging.getLogger('ep.lvl').info('hidden')")
        end)

      refute log =~ "hidden"
    end

    test "configure/1 sets a level of its own; sync_level/0 follows Logger again" do
      Logger.configure(level: :debug)
      :ok = ErlangPython.Logging.configure(level: :error)
      capture_log(fn -> ErlangPython.exec("import logging; logging.getLogger('x').error('e')") end)
      assert {:ok, 40} = ErlangPython.eval("__import__('logging').getLogger().getEffectiveLevel()")

      :ok = ErlangPython.Logging.sync_level()
      assert {:ok, 10} = ErlangPython.eval("__import__('logging').getLogger().getEffectiveLevel()")
    end
  end

  describe "output" do
    test "a print's text and newline arrive as one write" do
      test = self()
      {:ok, device} = StringIO.open("")
      gl = spawn(fn -> relay(test, device) end)
      Process.group_leader(self(), gl)
      on_exit(fn -> Process.exit(gl, :kill) end)

      :ok = ErlangPython.exec("print('one'); print('two', 'three')")
      Process.group_leader(self(), Process.whereis(:user) || self())

      assert_receive {:io_write, "one\n"}
      assert_receive {:io_write, "two three\n"}
      refute_received {:io_write, "\n"}
    end

    test "an unfinished line is flushed when the call ends, before it returns, to its own caller" do
      output =
        capture_io(fn ->
          :ok =
            ErlangPython.exec(
              "import sys; sys.stdout.write('no newline'); sys.stdout.write(' yet')"
            )
        end)

      assert output == "no newline yet"

      # Another caller's partial line never lands in this one's output.
      other = capture_io(fn -> :ok = ErlangPython.exec("print('mine', end='')") end)
      assert other == "mine"
    end

    test "output before an exception is delivered" do
      output =
        capture_io(fn ->
          assert {:error, %ErlangPython.Error{type: "ValueError"}} =
                   ErlangPython.exec("print('before', end=''); raise ValueError('x')")
        end)

      assert output == "before"
    end
  end

  # A group leader that reports each write, then passes it on.
  defp relay(test, device) do
    receive do
      {:io_request, from, ref, {:put_chars, :unicode, chars}} = request ->
        send(test, {:io_write, IO.chardata_to_string(chars)})
        send(device, put_elem(request, 1, self()))
        receive(do: ({:io_reply, ^ref, reply} -> send(from, {:io_reply, ref, reply})))
        relay(test, device)

      {:io_request, from, ref, _other} ->
        send(from, {:io_reply, ref, :ok})
        relay(test, device)
    end
  end

  defmodule Hold do
    @moduledoc false
    # Holds the process logging the "hold" record until told to go.
    def log(%{msg: {:string, msg}}, %{config: %{pid: pid}}) do
      if IO.chardata_to_string(msg) == "hold" do
        send(pid, {:holding, self()})
        receive(do: (:go -> :ok), after: (15_000 -> :ok))
      end
    end

    def log(_event, _config), do: :ok
  end

  defmodule Forward do
    @moduledoc false
    def log(event, %{config: %{pid: pid}}), do: send(pid, {:log_event, event})
  end
end
