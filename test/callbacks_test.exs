defmodule ErlangPython.CallbacksTest do
  use ExUnit.Case, async: true

  import ExUnit.CaptureIO

  import ErlangPython.TestHelpers

  alias ErlangPython.Error

  # collect_output/2 of the security guide's Erlang example, in Elixir.
  def collect_output(port, acc) do
    receive do
      {^port, {:data, data}} -> collect_output(port, [data | acc])
      {^port, {:exit_status, status}} -> {status, IO.iodata_to_binary(Enum.reverse(acc))}
    after
      30_000 ->
        Port.close(port)
        {:error, :timeout}
    end
  end

  def triple([x]), do: x * 3

  describe "the security guide's alternatives to fork and exec" do
    test "run_shell: Python runs a command through an Erlang port" do
      name = unique("run_shell")

      :ok =
        ErlangPython.register_function(name, fn [cmd] ->
          port = Port.open({:spawn, cmd}, [:exit_status, :binary, :stderr_to_stdout])
          collect_output(port, [])
        end)

      assert {:ok, {0, "hi\n"}} = ErlangPython.eval("__import__('erlang').#{name}('echo hi')")

      assert :ok = ErlangPython.exec("from erlang import #{name}\nresult = #{name}('ls -la')")
      assert {:ok, {0, listing}} = ErlangPython.eval("result")
      assert listing =~ "mix.exs"
    end

    test "start_worker_via_erlang: a port started by a callback reaches the caller, alive" do
      dir = Path.join(System.tmp_dir!(), unique("worker"))
      File.rm_rf!(dir)
      File.mkdir_p!(dir)
      on_exit(fn -> File.rm_rf!(dir) end)
      worker = Path.join(dir, "worker.py")

      File.write!(worker, """
      import sys
      for line in sys.stdin:
          print(line.strip().upper(), flush=True)
      """)

      {python, _version} = ErlangPython.Native.build_info()

      :ok =
        :py.register_function(:start_worker_via_erlang, fn [] ->
          Port.open({:spawn, "#{python} #{worker}"}, [:binary, {:line, 1024}, :use_stdio])
        end)

      # Not defined in __main__: py:call finds the registered function.
      assert {:ok, port} = :py.call(:__main__, :start_worker_via_erlang, [])
      assert is_port(port)
      assert {:connected, pid} = Port.info(port, :connected)
      assert pid == self()

      Port.command(port, "hello worker\n")
      assert_receive {^port, {:data, {:eol, "HELLO WORKER"}}}, 10_000
      Port.close(port)
    end

    test "erlang.send(supervisor_pid, ('spawn_worker', worker_args))" do
      :ok =
        ErlangPython.exec("""
        import erlang
        def _cb_request_worker(supervisor_pid, worker_args):
            # Send a request to an Erlang process that manages subprocesses
            erlang.send(supervisor_pid, ('spawn_worker', worker_args))
        """)

      worker_args = %{"queue" => "emails", "concurrency" => 4}
      assert {:ok, nil} = ErlangPython.call(:__main__, :_cb_request_worker, [self(), worker_args])
      assert_receive {"spawn_worker", ^worker_args}, 5_000
    end
  end

  describe "registering" do
    test "a fun is reachable three ways from Python" do
      name = unique("double")
      :ok = ErlangPython.register_function(name, fn [x] -> x * 2 end)

      assert {:ok, 42} = ErlangPython.eval("__import__('erlang').#{name}(21)")
      assert {:ok, 42} = ErlangPython.eval("__import__('erlang').call('#{name}', 21)")
      assert :ok = ErlangPython.exec("from erlang import #{name}\n_cb_from_import = #{name}(21)")
      assert {:ok, 42} = ErlangPython.eval("_cb_from_import")
    end

    test "register_function/3 calls module.function(args)" do
      name = unique("triple")
      :ok = ErlangPython.register_function(name, __MODULE__, :triple)
      assert {:ok, 21} = ErlangPython.eval("__import__('erlang').#{name}(7)")
      assert name in ErlangPython.registered_functions()
    end

    test "names may be atoms or strings; :py has the same functions" do
      name = unique("named")
      :ok = :py.register_function(String.to_atom(name), fn [] -> :from_atom end)
      assert {:ok, "from_atom"} = ErlangPython.eval("__import__('erlang').#{name}()")
      :ok = :py.unregister_function(name)
      assert {:ok, false} = ErlangPython.eval("hasattr(__import__('erlang'), '#{name}')")
    end

    test "hasattr is False before registration and after unregistration" do
      name = unique("transient")
      probe = "hasattr(__import__('erlang'), '#{name}')"
      assert {:ok, false} = ErlangPython.eval(probe)
      :ok = ErlangPython.register_function(name, fn _ -> :ok end)
      assert {:ok, true} = ErlangPython.eval(probe)
      :ok = ErlangPython.unregister_function(name)
      assert {:ok, false} = ErlangPython.eval(probe)
      refute name in ErlangPython.registered_functions()
    end

    test "calling an unknown name says which name" do
      name = unique("missing")

      assert {:error, %Error{type: "AttributeError", message: message}} =
               ErlangPython.eval("__import__('erlang').#{name}()")

      assert message =~ name

      assert {:error, %Error{type: "NameError", message: message}} =
               ErlangPython.eval("__import__('erlang').call('#{name}')")

      assert message =~ name
    end

    test "a function kept by Python raises NameError once unregistered" do
      name = unique("kept")
      :ok = ErlangPython.register_function(name, fn _ -> 1 end)
      :ok = ErlangPython.exec("import erlang\n_cb_kept = erlang.#{name}")
      :ok = ErlangPython.unregister_function(name)
      assert {:error, %Error{type: "NameError", message: message}} = ErlangPython.eval("_cb_kept()")
      assert message =~ name
    end

    test "bad registrations raise ArgumentError" do
      assert_raise ArgumentError, ~r/arity 1/, fn ->
        ErlangPython.register_function(:f, fn -> 1 end)
      end

      assert_raise ArgumentError, ~r/non-empty string/, fn ->
        ErlangPython.register_function("", fn [_] -> 1 end)
      end

      assert_raise ArgumentError, ~r/NUL byte/, fn ->
        ErlangPython.register_function("a\0b", fn [_] -> 1 end)
      end

      assert_raise ArgumentError, ~r/module and a function name/, fn ->
        ErlangPython.register_function(:f, "Mod", :fun)
      end
    end
  end

  describe "arguments and results" do
    test "keyword arguments arrive as a trailing map with string keys" do
      name = unique("args")
      :ok = ErlangPython.register_function(name, fn args -> args end)

      assert {:ok, [1, 2, %{"x" => 3, "y" => [4]}]} =
               ErlangPython.eval("__import__('erlang').#{name}(1, 2, x=3, y=[4])")

      assert {:ok, [1]} = ErlangPython.eval("__import__('erlang').#{name}(1)")
      assert {:ok, []} = ErlangPython.eval("__import__('erlang').#{name}()")
    end

    test "refs and funs returned by a callback are opaque in Python and identical back in Elixir" do
      name = unique("opaque")
      ref = make_ref()
      fun = fn x -> x + 1 end
      :ok = ErlangPython.register_function(name, fn [] -> {ref, fun} end)

      assert {:ok, ["Term", "Term"]} =
               ErlangPython.eval("[type(v).__name__ for v in __import__('erlang').#{name}()]")

      assert {:ok, {^ref, back}} = ErlangPython.eval("__import__('erlang').#{name}()")
      assert back === fun
    end

    test "values Python cannot take back are a Python error, the runtime carries on" do
      name = unique("too_deep")
      deep = Enum.reduce(1..20_000, [], fn _, acc -> [acc] end)
      :ok = ErlangPython.register_function(name, fn [] -> deep end)

      assert {:error, %Error{type: "TypeError"}} =
               ErlangPython.eval("__import__('erlang').#{name}()")

      assert :pong = ErlangPython.ping()
    end
  end

  describe "failures in callbacks" do
    test "a raise becomes erlang.CallbackError, which Python can catch" do
      name = unique("raises")

      :ok =
        ErlangPython.register_function(name, fn _ -> raise ArgumentError, "boom from elixir" end)

      :ok =
        ErlangPython.exec("""
        import erlang
        try:
            erlang.#{name}()
        except erlang.CallbackError as e:
            _cb_caught = (isinstance(e, Exception), str(e))
        """)

      assert {:ok, {true, message}} = ErlangPython.eval("_cb_caught")
      assert message =~ "ArgumentError"
      assert message =~ "boom from elixir"
    end

    test "uncaught, it reaches Elixir as an ErlangPython.Error" do
      name = unique("raises")
      :ok = ErlangPython.register_function(name, fn _ -> raise "boom" end)

      assert {:error, %Error{type: "CallbackError", message: message}} =
               ErlangPython.eval("__import__('erlang').#{name}()")

      assert message =~ "boom"
    end

    test "an exit, a throw and a kill are CallbackErrors; the caller and runtime live on" do
      for {label, body} <- [
            exit: fn _ -> exit(:bye) end,
            throw: fn _ -> throw(:ball) end,
            kill: fn _ -> Process.exit(self(), :kill) end
          ] do
        name = unique("#{label}s")
        :ok = ErlangPython.register_function(name, body)

        assert {:error, %Error{type: "CallbackError", message: message}} =
                 ErlangPython.eval("__import__('erlang').#{name}()")

        assert message =~ ~r/bye|ball|killed/, "#{label}: #{message}"
      end

      assert Process.alive?(self())
      assert :pong = ErlangPython.ping()
    end
  end

  describe "reentrancy" do
    test "Python -> Elixir -> Python ... 50 levels each way" do
      elixir_name = unique("descend")
      python_name = unique("py_descend")

      :ok =
        ErlangPython.register_function(elixir_name, fn [n] ->
          if n == 0, do: 0, else: 1 + ErlangPython.call!(:__main__, python_name, [n - 1])
        end)

      :ok =
        ErlangPython.exec("""
        import erlang
        def #{python_name}(n):
            return 0 if n == 0 else 1 + erlang.#{elixir_name}(n - 1)
        """)

      assert {:ok, 100} = ErlangPython.call(:__main__, python_name, [100])
    end

    test "the GIL is released while a callback waits: Python threads keep running" do
      name = unique("wait_for_thread")
      key = unique("gil_probe")

      # The callback waits until a Python thread reaches it. Were the GIL held
      # during the wait, that thread could never run, and the callback would
      # give up after 10 s.
      :ok =
        ErlangPython.register_function(name, fn [] ->
          ErlangPython.State.put(key, self())

          receive do
            "thread ran" -> "thread ran"
          after
            10_000 -> "thread never ran"
          end
        end)

      :ok =
        ErlangPython.exec("""
        import threading, time, erlang
        def _cb_probe(key):
            while True:
                pid = erlang.state_get(key)
                if pid is not None:
                    erlang.send(pid, 'thread ran')
                    return
                time.sleep(0.001)
        threading.Thread(target=_cb_probe, args=('#{key}',), daemon=True).start()
        """)

      assert {:ok, "thread ran"} = ErlangPython.eval("__import__('erlang').#{name}()")
    end
  end

  describe "erlang.send and erlang.self" do
    test "send delivers any term to a live pid" do
      assert {:ok, nil} =
               ErlangPython.eval(
                 "__import__('erlang').send(p, {'k': [1, 2.5, None], 't': (1,)})",
                 %{p: self()}
               )

      assert_receive %{"k" => [1, 2.5, nil], "t" => {1}}, 5_000
    end

    test "a dead pid raises erlang.ProcessError; a non-pid raises TypeError" do
      dead = spawn(fn -> :ok end)
      ref = Process.monitor(dead)
      assert_receive {:DOWN, ^ref, _, _, _}, 5_000

      assert {:error, %Error{type: "ProcessError", message: message}} =
               ErlangPython.eval("__import__('erlang').send(p, 1)", %{p: dead})

      assert message =~ "not alive"

      assert {:error, %Error{type: "TypeError", message: message}} =
               ErlangPython.eval("__import__('erlang').send('not a pid', 1)")

      assert message =~ "erlang.Pid"
    end

    test "erlang.self() is the calling process" do
      assert {:ok, pid} = ErlangPython.eval("__import__('erlang').self()")
      assert pid == self()
      assert {:ok, true} = ErlangPython.eval("__import__('erlang').self() == p", %{p: self()})
    end
  end

  describe "Python threads" do
    test "8 threads x 200 calls, each a chain of 5 callbacks, all correct" do
      step = unique("step")
      py_step = unique("py_step")

      # One link of the chain: Elixir calls back into Python with one less to go.
      :ok =
        ErlangPython.register_function(step, fn [value, remaining] ->
          if remaining == 1,
            do: value + 1,
            else: ErlangPython.call!(:__main__, py_step, [value + 1, remaining - 1])
        end)

      :ok =
        ErlangPython.exec("""
        import erlang
        from concurrent.futures import ThreadPoolExecutor
        def #{py_step}(value, remaining):
            return erlang.#{step}(value, remaining)

        def _cb_pool_job(reply_to, threads, calls):
            def worker(t):
                return [erlang.#{step}(t * 1000 + i, 5) for i in range(calls)]
            def run():
                with ThreadPoolExecutor(max_workers=threads) as pool:
                    results = list(pool.map(worker, range(threads)))
                erlang.send(reply_to, ('pool_done', results))
            # The runtime thread must stay free to serve the chains' nested
            # calls, so the pool runs in the background and reports by message.
            __import__('threading').Thread(target=run, daemon=True).start()
        """)

      {:ok, nil} = ErlangPython.call(:__main__, :_cb_pool_job, [self(), 8, 200])

      assert_receive {"pool_done", results}, 60_000
      assert length(results) == 8

      for {per_thread, t} <- Enum.with_index(results) do
        assert per_thread == Enum.map(0..199, &(t * 1000 + &1 + 5))
      end
    end

    test "a callback waiting in one thread does not block others" do
      slow = unique("slow")
      fast = unique("fast")
      test = self()

      # The slow callback waits until the test releases it: no timing involved.
      :ok =
        ErlangPython.register_function(slow, fn [] ->
          send(test, {:slow_waiting, self()})

          receive do
            :release -> :slow
          end
        end)

      :ok = ErlangPython.register_function(fast, fn [i] -> i end)

      :ok =
        ErlangPython.exec("""
        import erlang, threading
        def _cb_race(reply_to):
            def slow():
                erlang.send(reply_to, ('slow', erlang.#{slow}()))
            def fast():
                erlang.send(reply_to, ('fast', [erlang.#{fast}(i) for i in range(20)]))
            threading.Thread(target=slow, daemon=True).start()
            threading.Thread(target=fast, daemon=True).start()
        """)

      {:ok, nil} = ErlangPython.call(:__main__, :_cb_race, [self()])

      assert_receive {:slow_waiting, slow_callback}, 10_000
      # The fast thread completes while the slow one's callback still waits.
      assert_receive {"fast", fast_results}, 10_000
      assert fast_results == Enum.to_list(0..19)
      refute_received {"slow", _}
      send(slow_callback, :release)
      assert_receive {"slow", "slow"}, 10_000
    end
  end

  describe "output" do
    test "a callback writes to the caller's group leader" do
      name = unique("talk")
      :ok = ErlangPython.register_function(name, fn [text] -> IO.puts("callback says #{text}") end)

      output =
        capture_io(fn ->
          assert {:ok, "ok"} = ErlangPython.eval("__import__('erlang').#{name}('hi')")
        end)

      assert output == "callback says hi\n"
    end
  end
end
