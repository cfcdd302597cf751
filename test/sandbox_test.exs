defmodule ErlangPython.SandboxTest do
  use ExUnit.Case, async: true

  @tail " is blocked in Erlang VM context.\nfork()/exec() would corrupt the Erlang runtime.\nUse Erlang ports (open_port/2) for subprocess management."

  # Every row of the contract's "Blocked Operations" table, with the audit
  # event the error names.
  @rows [
    {"fork()", "import os; os.fork()", "os.fork"},
    {"forkpty()", "import os; os.forkpty()", "os.forkpty"},
    {"system()", "import os; os.system('true')", "os.system"},
    {"popen()", "import os; os.popen('true')", "os.popen"},
    {"execv()", "import os; os.execv('/bin/true', ['true'])", "os.exec"},
    {"execve()", "import os; os.execve('/bin/true', ['true'], {})", "os.exec"},
    {"execl()", "import os; os.execl('/bin/true', 'true')", "os.exec"},
    {"execlp()", "import os; os.execlp('true', 'true')", "os.exec"},
    {"execvp()", "import os; os.execvp('true', ['true'])", "os.exec"},
    {"spawnv()", "import os; os.spawnv(os.P_WAIT, '/bin/true', ['true'])", "os.spawnv"},
    {"spawnl()", "import os; os.spawnl(os.P_WAIT, '/bin/true', 'true')", "os.spawnl"},
    {"spawnlp()", "import os; os.spawnlp(os.P_WAIT, 'true', 'true')", "os.spawnlp"},
    {"spawnvpe()", "import os; os.spawnvpe(os.P_WAIT, 'true', ['true'], {})", "os.spawnvpe"},
    {"posix_spawn()", "import os; os.posix_spawn('/bin/true', ['true'], {})", "os.posix_spawn"},
    {"posix_spawnp()", "import os; os.posix_spawnp('true', ['true'], {})", "os.posix_spawnp"},
    {"Popen", "import subprocess; subprocess.Popen(['true'])", "subprocess.Popen"},
    {"run()", "import subprocess; subprocess.run(['true'])", "subprocess.Popen"},
    {"call()", "import subprocess; subprocess.call(['true'])", "subprocess.Popen"},
    {"check_output()", "import subprocess; subprocess.check_output(['true'])", "subprocess.Popen"}
  ]

  for {operation, code, event} <- @rows do
    test "#{operation} is blocked as #{event} with the exact message" do
      os_pid = System.pid()

      assert {:error, {:sandbox_blocked, unquote(event), message}} =
               ErlangPython.exec(unquote(code))

      assert message == unquote(event) <> @tail
      # Still the same VM, still answering.
      assert System.pid() == os_pid
      assert :pong = ErlangPython.ping()
    end
  end

  test "the Python exception is a RuntimeError with the same text" do
    :ok =
      ErlangPython.exec("""
      import os
      try:
          os.fork()
      except RuntimeError as e:
          _sandbox_test_caught = [type(e).__name__, str(e)]
      """)

    assert {:ok, ["RuntimeError", "os.fork" <> @tail]} = ErlangPython.eval("_sandbox_test_caught")
  end

  test "Python code that catches the error keeps running normally" do
    :ok =
      ErlangPython.exec("""
      import subprocess
      _sandbox_test_steps = []
      try:
          subprocess.run(['ls'])
      except RuntimeError:
          _sandbox_test_steps.append('caught')
      _sandbox_test_steps.append('continued')
      """)

    assert {:ok, ["caught", "continued"]} = ErlangPython.eval("_sandbox_test_steps")
  end

  test "is_sandboxed() is True inside the VM, from both modules" do
    assert {:ok, true} =
             ErlangPython.eval("__import__('_erlang_impl._sandbox', fromlist=['x']).is_sandboxed()")

    assert {:ok, true} = ErlangPython.eval("__import__('erlang').is_sandboxed()")
  end

  test "removing the Python-side wrappers does not remove the block" do
    on_exit(fn ->
      :ok = ErlangPython.exec("import _erlang_impl._sandbox as s; s.install_named_events()")
    end)

    # The wrappers only give errors their names; the C hook does the blocking.
    :ok =
      ErlangPython.exec("""
      import os
      for _name in ('popen', 'spawnv', 'posix_spawnp'):
          setattr(os, _name, getattr(os, _name).__wrapped__)
      """)

    assert {:error, {:sandbox_blocked, "subprocess.Popen", _}} =
             ErlangPython.exec("import os; os.popen('true')")

    assert {:error, {:sandbox_blocked, "os.fork", _}} =
             ErlangPython.exec("import os; os.spawnv(os.P_WAIT, '/bin/true', ['true'])")

    assert {:error, {:sandbox_blocked, "os.posix_spawn", _}} =
             ErlangPython.exec("import os; os.posix_spawnp('true', ['true'], {})")
  end

  test "audit hooks added from Python cannot undo the sandbox" do
    # sys.addaudithook only appends; our hook runs first and still refuses.
    :ok = ErlangPython.exec("import sys; sys.addaudithook(lambda event, args: None)")

    assert {:error, {:sandbox_blocked, "os.system", _}} =
             ErlangPython.exec("import os; os.system('true')")
  end

  test "harmless os functions still work" do
    assert {:ok, pid} = ErlangPython.eval("__import__('os').getpid()")
    assert Integer.to_string(pid) == System.pid()
    assert {:ok, true} = ErlangPython.eval("__import__('os').path.isdir('/')")
  end
end
