defmodule ErlangPython.IsolatedTest do
  # What only an isolated context can contain: crashes, kills and kernel
  # limits end its worker process, never the VM; its callers get an error
  # tuple and the context answers again from a fresh worker. And what only
  # it may allow: subprocesses and process pools, when asked for.
  use ExUnit.Case, async: true

  alias ErlangPython.{ContextServer, Error, Isolated}

  doctest ErlangPython.Isolated

  # A context that stops for good logs its exit, as any GenServer does.
  @moduletag :capture_log

  @vm System.pid()

  defp start!(opts \\ []) do
    {:ok, ctx} = ContextServer.start_link([isolated: true] ++ opts)
    on_exit(fn -> ContextServer.stop(ctx) end)
    ctx
  end

  # Runs `code`; then the VM is the same OS process, and the context answers
  # again (from a new worker when the old one died). Gives the call's result
  # and the worker's OS pid before and after.
  defp run_contained(ctx, code, opts \\ []) do
    {:ok, before} = Isolated.os_pid(ctx)
    result = ErlangPython.exec(code, Keyword.merge([context: ctx, timeout: 30_000], opts))
    assert System.pid() == @vm
    assert {:ok, 2} = ErlangPython.eval("1 + 1", %{}, context: ctx, timeout: 30_000)
    {:ok, now} = Isolated.os_pid(ctx)
    {result, before, now}
  end

  describe "a crash ends the worker only" do
    test "ctypes.string_at(0): SIGSEGV, then a fresh worker" do
      ctx = start!()
      {result, before, now} = run_contained(ctx, "import ctypes; ctypes.string_at(0)")
      assert {:error, {:python_exited, {:signal, :SIGSEGV}}} = result
      assert before != now
    end

    test "faulthandler._sigsegv(): refused by the sandbox, a SIGSEGV without it" do
      blocked = start!()

      assert {:error, {:sandbox_blocked, "faulthandler._sigsegv", _}} =
               ErlangPython.exec("import faulthandler; faulthandler._sigsegv()", context: blocked)

      ctx = start!(allow_subprocess: true)
      {result, before, now} = run_contained(ctx, "import faulthandler; faulthandler._sigsegv()")
      assert {:error, {:python_exited, {:signal, :SIGSEGV}}} = result
      assert before != now
    end

    test "os._exit(3): refused by the sandbox, exit status 3 without it" do
      blocked = start!()

      assert {:error, {:sandbox_blocked, "os._exit", _}} =
               ErlangPython.exec("import os; os._exit(3)", context: blocked)

      ctx = start!(allow_subprocess: true)
      {result, before, now} = run_contained(ctx, "import os; os._exit(3)")
      assert {:error, {:python_exited, {:exit_status, 3}}} = result
      assert before != now
    end

    test "every pending caller gets the error, queued ones run on the fresh worker" do
      ctx = start!()
      parent = self()

      crash =
        Task.async(fn ->
          ErlangPython.exec("import time, ctypes; time.sleep(0.3); ctypes.string_at(0)",
            context: ctx
          )
        end)

      Process.sleep(50)

      queued =
        Task.async(fn ->
          send(parent, :queued)
          ErlangPython.eval("'after'", %{}, context: ctx)
        end)

      assert_receive :queued
      assert {:error, {:python_exited, {:signal, :SIGSEGV}}} = Task.await(crash)
      assert {:ok, "after"} = Task.await(queued)
    end

    test "a fresh worker starts from a fresh namespace, and old handles are refused" do
      ctx = start!()
      :ok = ErlangPython.exec("kept = 1", context: ctx)
      {:ok, handle} = ErlangPython.eval("object()", %{}, context: ctx)

      {:error, {:python_exited, _}} =
        ErlangPython.exec("import ctypes; ctypes.string_at(0)", context: ctx)

      assert {:error, %Error{type: "NameError"}} = ErlangPython.eval("kept", %{}, context: ctx)

      assert {:error, %Error{type: "ValueError", message: message}} =
               ErlangPython.eval("h", %{h: handle}, context: ctx)

      assert message =~ "exited"
    end

    test "other contexts, embedded and isolated, are unaffected" do
      crashing = start!()
      other = start!()
      {:ok, embedded} = ContextServer.start_link()
      :ok = ErlangPython.exec("mine = 'kept'", context: other)

      {:error, {:python_exited, _}} =
        ErlangPython.exec("import ctypes; ctypes.string_at(0)", context: crashing)

      assert {:ok, "kept"} = ErlangPython.eval("mine", %{}, context: other)
      assert {:ok, 3} = ErlangPython.eval("1 + 2", %{}, context: embedded)
    end

    test "a context that keeps crashing stops, for its supervisor to restart" do
      Process.flag(:trap_exit, true)
      {:ok, ctx} = ContextServer.start_link(isolated: true, max_restarts: 1)

      for _ <- 1..2 do
        ErlangPython.exec("import ctypes; ctypes.string_at(0)", context: ctx)
      end

      assert_receive {:EXIT, ^ctx, {:python_exited, {:signal, :SIGSEGV}}}, 10_000
    end

    test "a pool of isolated contexts restarts its members under supervision" do
      name = :"isolated_pool_#{System.unique_integer([:positive])}"
      {:ok, [ctx]} = ErlangPython.Pool.start(name, 1, isolated: true, max_restarts: 0)
      on_exit(fn -> ErlangPython.Pool.stop(name) end)

      {:error, {:python_exited, _}} =
        ErlangPython.exec("import ctypes; ctypes.string_at(0)", context: ctx)

      restarted =
        Enum.find_value(1..100, fn _ ->
          Process.sleep(50)

          match?({:ok, [pid]} when pid != ctx, {:ok, ErlangPython.Pool.contexts(name)}) &&
            hd(ErlangPython.Pool.contexts(name))
        end)

      assert is_pid(restarted)
      assert {:ok, 2} = ErlangPython.eval("1 + 1", %{}, context: restarted)
    end
  end

  describe "kernel limits per context" do
    test "a 50 GB allocation under a 1 GB address-space limit is a MemoryError" do
      ctx = start!(memory_limit: 1_000_000_000)
      {result, before, now} = run_contained(ctx, "x = bytearray(50 * 2**30)")
      assert {:error, %Error{type: "MemoryError"}} = result
      assert before == now
    end

    test "CPU time: a loop in C past the limit ends with SIGXCPU" do
      ctx = start!(cpu_limit: 1)
      # sum() over an endless C iterator never returns to the eval loop.
      {result, before, now} = run_contained(ctx, "import itertools; sum(itertools.repeat(1))")
      assert {:error, {:python_exited, {:signal, :SIGXCPU}}} = result
      assert before != now
    end

    test "open files: past the limit, open() fails with EMFILE" do
      ctx = start!(open_files: 32)
      {result, _before, _now} = run_contained(ctx, "files = [open('/dev/null') for _ in range(64)]")
      assert {:error, %Error{type: "OSError", message: "[Errno 24]" <> _}} = result
    end
  end

  describe "timeouts" do
    test "Python code is interrupted: the worker survives" do
      ctx = start!()
      {result, before, now} = run_contained(ctx, "while True: pass", timeout: 300)
      assert {:error, :timeout} = result
      assert before == now
    end

    test "a loop in C ignores the interrupt: killed after the grace period, restarted" do
      ctx = start!(interrupt_grace: 200)
      code = "import itertools; sum(itertools.repeat(1))"
      {result, before, now} = run_contained(ctx, code, timeout: 300)
      assert {:error, :timeout} = result
      assert before != now
    end
  end

  describe "subprocesses and process pools" do
    setup do
      %{venv: joblib_venv()}
    end

    test "subprocess.run works when allowed", %{venv: venv} do
      ctx = start!(allow_subprocess: true, venv: venv)

      assert {:ok, 0} =
               ErlangPython.eval("__import__('subprocess').run(['/bin/true']).returncode", %{},
                 context: ctx
               )
    end

    test "joblib's process backend works when allowed", %{venv: venv} do
      ctx = start!(allow_subprocess: true, venv: venv)
      {:ok, worker} = Isolated.os_pid(ctx)

      code = """
      from joblib import Parallel, delayed
      import os
      pids = Parallel(n_jobs=2, backend='loky')(delayed(os.getpid)() for _ in range(8))
      squares = Parallel(n_jobs=2, backend='multiprocessing')(delayed(pow)(n, 2) for n in range(5))
      """

      assert :ok = ErlangPython.exec(code, context: ctx, timeout: 120_000)
      assert {:ok, pids} = ErlangPython.eval("sorted(set(pids))", %{}, context: ctx)
      assert pids != [] and worker not in pids
      assert {:ok, [0, 1, 4, 9, 16]} = ErlangPython.eval("squares", %{}, context: ctx)
    end

    test "both are refused by the sandbox with the contract's messages", %{venv: venv} do
      ctx = start!(venv: venv)

      assert {:error,
              {:sandbox_blocked, "subprocess.Popen",
               "subprocess.Popen is blocked in Erlang VM context." <> _}} =
               ErlangPython.exec("import subprocess; subprocess.run(['/bin/true'])", context: ctx)

      code =
        "from joblib import Parallel, delayed\nParallel(n_jobs=2, backend='loky')(delayed(abs)(-n) for n in range(4))"

      assert {:error, {:sandbox_blocked, event, message}} =
               ErlangPython.exec(code, context: ctx, timeout: 60_000)

      assert message ==
               "#{event} is blocked in Erlang VM context.\nfork()/exec() would corrupt the Erlang runtime.\nUse Erlang ports (open_port/2) for subprocess management."
    end
  end

  # A venv with joblib: the CI venv when it has it (scikit-learn brings it),
  # else this checkout's cached one (bin/isolated-venv makes it on first use).
  defp joblib_venv do
    ci = System.get_env("ERLANG_PYTHON_TEST_VENV")

    if ci && File.exists?(Path.join(ci, "bin/python")) &&
         match?(
           {_, 0},
           System.cmd(Path.join(ci, "bin/python"), ["-c", "import joblib"], stderr_to_stdout: true)
         ) do
      ci
    else
      script = Path.expand("../bin/isolated-venv", __DIR__)
      {out, 0} = System.cmd(script, [])
      out |> String.split("\n", trim: true) |> List.last()
    end
  end
end
