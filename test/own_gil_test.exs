defmodule ErlangPython.OwnGilTest do
  # Own-GIL contexts: sub-interpreters with their own GIL (Python 3.12+).
  # Which tests exist depends on the Python erlang_python runs on: on 3.11
  # the option is refused with a clear error; on 3.12+ every other test runs
  # (bin/test-trixie runs them on 3.13).
  use ExUnit.Case, async: false

  alias ErlangPython.{ContextServer, OwnGil}

  if not OwnGil.supported?() do
    test "own_gil: true is refused with an error naming the Python needed" do
      assert {:error, {:own_gil_unsupported, message}} = ContextServer.start(own_gil: true)
      assert message =~ "Python 3.12 or later"
      assert message =~ "Python 3.1"
      refute ErlangPython.Interpreter.subinterpreters_supported?()
      assert ErlangPython.Interpreter.execution_mode() == :worker
      assert OwnGil.running() == %{threads: 0, interpreters: 0}
    end

    test "a pool of own-GIL contexts is refused the same way" do
      assert {:error, {:own_gil_unsupported, _}} =
               ErlangPython.Pool.start(:own_gil_refused, 1, own_gil: true)
    end
  else
    @tail " is blocked in Erlang VM context.\nfork()/exec() would corrupt the Erlang runtime.\nUse Erlang ports (open_port/2) for subprocess management."

    setup do
      {:ok, ctx} = ContextServer.start_link(own_gil: true)
      on_exit(fn -> ContextServer.stop(ctx) end)
      %{ctx: ctx}
    end

    test "reports support", %{ctx: _ctx} do
      assert ErlangPython.Interpreter.subinterpreters_supported?()
      assert ErlangPython.Interpreter.own_gil_supported?()
      assert %{threads: threads, interpreters: interpreters} = OwnGil.running()
      assert threads >= 1 and interpreters >= 1
    end

    test "call, eval and exec run in the context's own interpreter", %{ctx: ctx} do
      assert :ok = ErlangPython.exec("total = 40", context: ctx)
      assert {:ok, 42} = ErlangPython.eval("total + n", %{n: 2}, context: ctx)
      assert {:ok, 4.0} = ErlangPython.call(:math, :sqrt, [16], context: ctx)

      assert {:ok, [1, "two", %{"k" => [3.5]}]} =
               ErlangPython.eval("[1, 'two', {'k': [3.5]}]", %{}, context: ctx)

      # Not the main interpreter: a sub-interpreter has an id of its own.
      assert {:ok, id} = ErlangPython.eval(interpreter_id(), %{}, context: ctx)
      assert id > 0
      assert {:ok, 0} = ErlangPython.eval(interpreter_id())
    end

    test "atoms and atom-keyed rows convert inside, as in the main interpreter", %{ctx: ctx} do
      # The main interpreter's threads remember atoms' objects; an own-GIL
      # thread must make its own, every time.
      rows = for i <- 1..50, do: %{id: i, tag: :"own_gil_tag_#{rem(i, 5)}", ok: true, missing: nil}
      code = "[(sorted(r), r['tag'], r['ok'], r['missing']) for r in v]"

      expected =
        for i <- 1..50,
            do: {["id", "missing", "ok", "tag"], "own_gil_tag_#{rem(i, 5)}", true, nil}

      for _ <- 1..3 do
        assert {:ok, ^expected} = ErlangPython.eval(code, %{v: rows}, context: ctx)
        assert {:ok, ^expected} = ErlangPython.eval(code, %{v: rows})
      end
    end

    test "dates, zoned datetimes, decimals and UUIDs convert as in the main one", %{ctx: ctx} do
      # Zones are read from the tzinfo's methods; timezone.utc is the main
      # interpreter's object, so inside UTC takes the general path.
      code = """
      [datetime.date(2024, 2, 29), datetime.datetime(2024, 1, 2, 3, 4, 5, 6),
       datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc),
       datetime.datetime(2024, 7, 1, 12, tzinfo=zoneinfo.ZoneInfo('Europe/Paris')),
       datetime.datetime(2024, 7, 1, 12, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))),
       datetime.timedelta(days=-1, microseconds=5), decimal.Decimal('-12.340'),
       decimal.Decimal('-Infinity'), uuid.UUID(int=2**127 + 5)]
      """

      imports = "import datetime, decimal, uuid, zoneinfo"
      :ok = ErlangPython.exec(imports, context: ctx)
      :ok = ErlangPython.exec(imports)
      assert {:ok, main} = ErlangPython.eval(code)
      assert {:ok, ^main} = ErlangPython.eval(code, %{}, context: ctx)

      assert [
               _,
               _,
               %DateTime{time_zone: "Etc/UTC"},
               %DateTime{time_zone: "Europe/Paris"} = paris | _
             ] = main

      assert DateTime.to_iso8601(paris) == "2024-07-01T12:00:00.000000+02:00"
      # A large result, written straight into the external format.
      assert {:ok, large} = ErlangPython.eval("(#{String.trim(code)}) * 2000", %{}, context: ctx)
      assert large == List.flatten(List.duplicate(main, 2000))
      # And back into the interpreter: the same values (the UUID came as its
      # text, and goes back as that text).
      values = String.trim(code)
      same = "v[:-1] == #{values}[:-1] and v[-1] == str(#{values}[-1])"
      assert {:ok, true} = ErlangPython.eval(same, %{v: main}, context: ctx)

      uuid = "(type(v) is uuid.UUID, v.int, v.is_safe is uuid.SafeUUID.unknown, hash(v) == hash(w))"
      made = %{v: {:uuid, <<5::128>>}, w: {:uuid, "00000000-0000-0000-0000-000000000005"}}
      assert {:ok, {true, 5, true, true}} = ErlangPython.eval(uuid, made, context: ctx)
    end

    test "modules are the interpreter's own: nothing leaks between interpreters", %{ctx: ctx} do
      {:ok, other} = ContextServer.start_link(own_gil: true)
      on_exit(fn -> ContextServer.stop(other) end)

      :ok = ErlangPython.exec("import json; json.own_gil_marker = 'set in ctx'", context: ctx)
      assert {:ok, "set in ctx"} = ErlangPython.eval("json.own_gil_marker", %{}, context: ctx)

      probe = "getattr(__import__('json'), 'own_gil_marker', None)"
      assert {:ok, nil} = ErlangPython.eval(probe, %{}, context: other)
      assert {:ok, nil} = ErlangPython.eval(probe)

      assert {:ok, a} = ErlangPython.eval(interpreter_id(), %{}, context: ctx)
      assert {:ok, b} = ErlangPython.eval(interpreter_id(), %{}, context: other)
      assert a != b
    end

    test "handles never cross interpreters", %{ctx: ctx} do
      {:ok, own} = ErlangPython.eval("object()", %{}, context: ctx, decode: false)
      {:ok, main} = ErlangPython.eval("object()", %{}, decode: false)

      assert {:error, %ErlangPython.Error{type: "TypeError", message: message}} =
               ErlangPython.call(:builtins, :repr, [own])

      assert message =~ "another interpreter"

      assert {:error, %ErlangPython.Error{type: "TypeError", message: message}} =
               ErlangPython.call(:builtins, :repr, [main], context: ctx)

      assert message =~ "another interpreter"
      assert {:ok, "<object" <> _} = ErlangPython.call(:builtins, :repr, [own], context: ctx)
    end

    test "references and other opaque terms are refused with a clear error", %{ctx: ctx} do
      assert {:error, %ErlangPython.Error{type: "TypeError", message: message}} =
               ErlangPython.call(:builtins, :repr, [make_ref()], context: ctx)

      assert message =~ "own-GIL context"
      assert {:ok, "[1]"} = ErlangPython.call(:builtins, :repr, [[1]], context: ctx)
    end

    test "the erlang module: pids, send, self", %{ctx: ctx} do
      me = self()
      # A pid goes in as the context's own erlang.Pid and comes back as itself.
      assert {:ok, ^me} = ErlangPython.eval("p", %{p: me}, context: ctx)
      assert {:ok, true} = ErlangPython.eval("erlang.self() == p", %{p: me}, context: ctx)

      assert {:ok, "<erlang.Pid <" <> _} =
               ErlangPython.eval("repr(erlang.self())", %{}, context: ctx)

      assert :ok = ErlangPython.exec("erlang.send(erlang.self(), ('hello', [1, 2]))", context: ctx)
      assert_receive {"hello", [1, 2]}
      assert {:ok, true} = ErlangPython.eval("erlang.is_sandboxed()", %{}, context: ctx)

      assert {:error, %ErlangPython.Error{type: "TypeError"}} =
               ErlangPython.exec("erlang.send('not a pid', 1)", context: ctx)

      dead = spawn(fn -> :ok end)
      Process.sleep(20)

      assert {:error, %ErlangPython.Error{type: "ProcessError"}} =
               ErlangPython.eval("erlang.send(p, 1)", %{p: dead}, context: ctx)
    end

    test "callbacks into Elixir, and from there back into the same context", %{ctx: ctx} do
      :ok = ErlangPython.register_function("own_gil_double", fn [x] -> x * 2 end)

      :ok =
        ErlangPython.register_function("own_gil_reenter", fn [code] ->
          {:ok, value} = ErlangPython.eval(code, %{}, context: ctx)
          value
        end)

      assert {:ok, 42} = ErlangPython.eval("erlang.call('own_gil_double', 21)", %{}, context: ctx)
      assert {:ok, 10} = ErlangPython.eval("erlang.own_gil_double(5)", %{}, context: ctx)

      assert {:ok, true} =
               ErlangPython.eval("erlang.is_registered('own_gil_double')", %{}, context: ctx)

      assert {:ok, 7} = ErlangPython.eval("erlang.own_gil_reenter('3 + 4')", %{}, context: ctx)

      :ok = ErlangPython.register_function("own_gil_fails", fn [] -> raise "boom" end)

      :ok =
        ErlangPython.exec(
          """
          try:
              erlang.own_gil_fails()
          except Exception as e:
              failed = [type(e).__name__, isinstance(e, erlang.CallbackError)]
          """,
          context: ctx
        )

      assert {:ok, ["CallbackError", true]} = ErlangPython.eval("failed", %{}, context: ctx)

      # A callback that never answers: the caller's timeout interrupts the wait.
      :ok = ErlangPython.register_function("own_gil_hangs", fn [] -> Process.sleep(:infinity) end)

      assert {:error, :timeout} =
               ErlangPython.eval("erlang.own_gil_hangs()", %{}, context: ctx, timeout: 300)

      assert {:ok, 1} = ErlangPython.eval("1", %{}, context: ctx)
    end

    test "the sandbox holds inside, with the contract's messages", %{ctx: ctx} do
      for {code, event} <- [
            {"import os; os.fork()", "os.fork"},
            {"import os; os.system('true')", "os.system"},
            {"import subprocess; subprocess.run(['true'])", "subprocess.Popen"},
            {"import os; os.execv('/bin/true', ['true'])", "os.exec"}
          ] do
        assert {:error, {:sandbox_blocked, ^event, message}} =
                 ErlangPython.exec(code, context: ctx),
               code

        assert message == event <> @tail
      end

      # Caught inside, it prints as the contract shows; a forged one with the
      # same text is not taken for a refusal.
      :ok =
        ErlangPython.exec(
          """
          import os
          try:
              os.fork()
          except RuntimeError as e:
              caught = [type(e).__name__, str(e)]
          """,
          context: ctx
        )

      assert {:ok, ["RuntimeError", "os.fork" <> @tail]} =
               ErlangPython.eval("caught", %{}, context: ctx)

      assert {:error, %ErlangPython.Error{type: "RuntimeError"}} =
               ErlangPython.exec(~s[raise RuntimeError("""os.fork#{@tail}""")], context: ctx)
    end

    test "the sandbox's Python-side wrappers are installed in each interpreter", %{ctx: ctx} do
      # os.popen runs through subprocess.Popen and os.spawnv through os.fork:
      # the wrappers name what the caller called.
      assert {:error, {:sandbox_blocked, "os.popen", message}} =
               ErlangPython.exec("import os; os.popen('true')", context: ctx)

      assert message == "os.popen" <> @tail

      assert {:error, {:sandbox_blocked, "os.spawnv", _}} =
               ErlangPython.exec("import os; os.spawnv(os.P_WAIT, '/bin/true', ['true'])",
                 context: ctx
               )

      assert {:ok, true} = ErlangPython.eval("erlang.is_sandboxed()", %{}, context: ctx)
    end

    test "output and logging reach Elixir", %{ctx: ctx} do
      output =
        ExUnit.CaptureIO.capture_io(fn ->
          :ok = ErlangPython.exec("print('from an own-GIL context')", context: ctx)
        end)

      assert output == "from an own-GIL context\n"

      log =
        ExUnit.CaptureLog.capture_log(fn ->
          :ok =
            ErlangPython.exec("import logging; logging.getLogger('own').error('logged inside')",
              context: ctx
            )
        end)

      assert log =~ "logged inside"
    end

    test "streams over generators made inside", %{ctx: ctx} do
      assert [0, 1, 4, 9] =
               ErlangPython.stream_eval("(x * x for x in range(4))", %{}, context: ctx)
               |> Enum.to_list()

      :ok =
        ErlangPython.exec(
          "def naturals():\n    n = 0\n    while True:\n        yield n\n        n += 1",
          context: ctx
        )

      assert [0, 1, 2] = ErlangPython.stream(:__main__, :naturals, [], context: ctx) |> Enum.take(3)
    end

    test "asyncio.run works inside, on Python's own event loop", %{ctx: ctx} do
      :ok =
        ErlangPython.exec(
          """
          import asyncio
          async def answer():
              await asyncio.sleep(0.01)
              return 42
          """,
          context: ctx
        )

      assert {:ok, 42} = ErlangPython.eval("asyncio.run(answer())", %{}, context: ctx)
    end

    test "the sandbox holds in every own-GIL interpreter at once", %{ctx: ctx} do
      {:ok, other} = ContextServer.start_link(own_gil: true)
      on_exit(fn -> ContextServer.stop(other) end)

      for context <- [ctx, other] do
        assert {:error, {:sandbox_blocked, "os.fork", _}} =
                 ErlangPython.exec("import os; os.fork()", context: context)
      end

      # And the main interpreter's is untouched.
      assert {:error, {:sandbox_blocked, "os.fork", _}} = ErlangPython.exec("import os; os.fork()")
    end

    test "a timeout interrupts the running code; the context lives on", %{ctx: ctx} do
      assert {:error, :timeout} = ErlangPython.exec("while True: pass", context: ctx, timeout: 300)

      assert {:ok, 2} = ErlangPython.eval("1 + 1", %{}, context: ctx)

      task =
        Task.async(fn ->
          ErlangPython.exec("import time\nwhile True: time.sleep(0.01)", context: ctx)
        end)

      Process.sleep(200)
      assert :ok = wait_interrupt(ctx, 50)

      assert {:error, %ErlangPython.Error{type: "Interrupted"}} = Task.await(task, 5_000)
      assert {:ok, 3} = ErlangPython.eval("1 + 2", %{}, context: ctx)
    end

    test "an extension module made for one interpreter says so and what to do", %{ctx: ctx} do
      # CPython's own single-phase-init test module, like numpy today.
      assert {:ok, _} = ErlangPython.eval("__import__('_testsinglephase').__name__")

      assert {:error, %ErlangPython.Error{type: "ImportError", message: message}} =
               ErlangPython.exec("import _testsinglephase", context: ctx)

      assert message =~ "does not support loading in subinterpreters"
      assert message =~ "import it in a context without own_gil"
    end

    test "preload code runs in the context's own interpreter" do
      ErlangPython.Preload.set("PRELOADED = 6 * 7")

      try do
        {:ok, ctx} = ContextServer.start_link(own_gil: true)
        assert {:ok, 42} = ErlangPython.eval("PRELOADED", %{}, context: ctx)
        ContextServer.stop(ctx)
      after
        ErlangPython.Preload.clear()
      end
    end

    test "a pool of own-GIL contexts" do
      {:ok, [a, b]} = ErlangPython.Pool.start(:own_gil_pool, 2, own_gil: true)

      try do
        ids =
          for ctx <- [a, b] do
            {:ok, id} = ErlangPython.eval(interpreter_id(), %{}, context: ctx)
            id
          end

        assert length(Enum.uniq(ids)) == 2
        assert Enum.all?(ids, &(&1 > 0))
      after
        ErlangPython.Pool.stop(:own_gil_pool)
      end
    end

    test "stopping a context ends its interpreter and thread" do
      before = OwnGil.running()

      for _ <- 1..25 do
        {:ok, ctx} = ContextServer.start(own_gil: true)
        {:ok, 1} = ErlangPython.eval("1", %{}, context: ctx)
        :ok = ContextServer.stop(ctx)
      end

      assert eventually(fn -> OwnGil.running() == before end)

      # A killed context's interpreter ends too (its resource is freed).
      {:ok, ctx} = ContextServer.start(own_gil: true)
      Process.exit(ctx, :kill)
      :erlang.garbage_collect()
      assert eventually(fn -> OwnGil.running() == before end)
    end

    @tag :slow
    # Each cycle starts an interpreter (imports included): minutes in all.
    @tag timeout: 900_000
    test "1,000 create/stop cycles: threads and interpreters come back; memory as CPython's own" do
      cycle = fn ->
        {:ok, ctx} = ContextServer.start(own_gil: true)
        {:ok, _} = ErlangPython.eval("sum(range(1000))", %{}, context: ctx)
        :ok = ContextServer.stop(ctx)
      end

      # The setup's context stays: back to that, not to zero.
      baseline = OwnGil.running()
      for _ <- 1..50, do: cycle.()
      assert eventually(fn -> OwnGil.running() == baseline end)
      {rss_before, threads_before} = process_figures()

      {micros, _} = :timer.tc(fn -> for _ <- 1..1_000, do: cycle.() end)
      assert eventually(fn -> OwnGil.running() == baseline end)
      {rss_after, threads_after} = process_figures()
      ours = (rss_after - rss_before) / 1_000

      # CPython (3.12, 3.13) keeps an isolated interpreter's allocator arenas
      # when it ends (python/cpython#110411), so the more an interpreter
      # imports, the more stays: measured here with CPython's own API,
      # nothing of ours, and the stdlib modules an own-GIL context imports
      # at start (asyncio, logging: _erlang_impl's), that is the floor.
      :ok =
        ErlangPython.exec("""
        import _interpreters
        def _own_gil_cpython_cycles(n):
            for _ in range(n):
                i = _interpreters.create('isolated')
                _interpreters.exec(i, 'import asyncio, logging, functools, struct; sum(range(1000))')
                _interpreters.destroy(i)
        _own_gil_cpython_cycles(20)
        """)

      {rss_cpython_before, _} = process_figures()
      :ok = ErlangPython.exec("_own_gil_cpython_cycles(200)", timeout: 120_000)
      {rss_cpython_after, _} = process_figures()
      cpython = (rss_cpython_after - rss_cpython_before) / 200

      IO.puts(
        "\nown-GIL cycles: #{div(micros, 1000)} us per start/call/stop (load #{File.read!("/proc/loadavg") |> String.split() |> hd()}); " <>
          "OS threads #{threads_before} -> #{threads_after}; RSS per cycle " <>
          "#{round(ours)} KiB (1,000 contexts), CPython's own per interpreter #{round(cpython)} KiB"
      )

      assert threads_after <= threads_before + 2
      # Nothing of ours on top of CPython's own cost (a handle, a thread
      # stack, a type per cycle would show): a loose bound for noise.
      assert ours <= cpython * 1.25 + 64
    end

    defp process_figures do
      status = File.read!("/proc/self/status")
      [_, rss] = Regex.run(~r/VmRSS:\s+(\d+) kB/, status)
      [_, threads] = Regex.run(~r/Threads:\s+(\d+)/, status)
      {String.to_integer(rss), String.to_integer(threads)}
    end

    defp interpreter_id do
      "int(__import__('_interpreters').get_current()[0]) if __import__('sys').version_info >= (3, 13) " <>
        "else int(__import__('_xxsubinterpreters').get_current())"
    end

    # The shared helper, fully qualified: an import inside this compile-time
    # `if` would be reported unused on Pythons without own-GIL contexts.
    defp eventually(check), do: ErlangPython.TestHelpers.eventually(check, interval: 50)

    defp wait_interrupt(ctx, tries) do
      case ContextServer.interrupt(ctx) do
        :ok -> :ok
        :not_running when tries > 0 -> Process.sleep(20) && wait_interrupt(ctx, tries - 1)
        other -> other
      end
    end
  end
end
