defmodule ErlangPython.SandboxAttacksTest do
  # Not async: a few tests change process-wide state (a guard's table entry)
  # for a moment and put it back.
  use ExUnit.Case, async: false

  import ErlangPython.NativeAttack

  # Each attack below was seen to get through the sandbox's first version.
  # Every test proves the VM survived (the same OS process answers) and,
  # where the attack would start a process, that nothing was started: a
  # marker file only a child could create never appears, and exec targets
  # are /bin/false (had one run, this test run would be gone).

  @x86_64 :erlang.system_info(:system_architecture) |> to_string() |> String.starts_with?("x86_64")

  setup do
    {:ok, os_pid: System.pid()}
  end

  defp run(code, bindings \\ %{}) do
    case ErlangPython.exec(code) do
      :ok -> ErlangPython.eval("result", bindings)
      other -> other
    end
  end

  describe "spawning a process without an audited call" do
    test "a byte copy of _posixsubprocess loaded with ExtensionFileLoader", %{os_pid: os_pid} do
      copy = Path.join(System.tmp_dir!(), "ps_copy_#{System.unique_integer([:positive])}.so")
      on_exit(fn -> File.rm(copy) end)

      # Built into libpython on some Pythons (Debian's): then the copy is
      # of libpython, whose PyInit__posixsubprocess makes the module.
      code = """
      import _posixsubprocess, shutil, importlib.machinery, importlib.util
      shutil.copy(#{inspect(file_holding("_posixsubprocess", "fork_exec"))}, #{inspect(copy)})
      loader = importlib.machinery.ExtensionFileLoader('_posixsubprocess', #{inspect(copy)})
      module = loader.create_module(importlib.util.spec_from_loader('_posixsubprocess', loader))
      """

      assert {:error, {:sandbox_blocked, "_imp.create_dynamic", message}} = ErlangPython.exec(code)

      assert message =~ "get around the guards"
      assert_survived(os_pid)
    end

    test "wordexp with $(...) and popen, called by address", %{os_pid: os_pid} do
      marker1 = marker()
      marker2 = marker()

      code =
        libc_addresses(["wordexp", "popen"]) <>
          """
          wordexp = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int)(addr_wordexp)
          words = ctypes.create_string_buffer(256)
          popen = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p)(addr_popen)
          result = [wordexp(b"$(touch #{marker1})", words, 0), popen(b"touch #{marker2}", b"r")]
          """

      assert {:ok, [wordexp_rc, popen_file]} = run(code)
      assert wordexp_rc != 0
      assert popen_file == nil
      assert_survived(os_pid, [marker1, marker2])
    end

    test "the libc functions missing from the first name list, by name" do
      for name <- ["wordexp", "_IO_proc_open", "sigqueue", "gsignal", "ualarm", "pthread_exit"] do
        assert {:error, {:sandbox_blocked, event, _}} =
                 ErlangPython.exec("import ctypes\nctypes.CDLL(None)['#{name}']")

        assert event == "ctypes.#{name}"
      end
    end

    test "dlsym called as a plain function, its result a thread's start routine",
         %{os_pid: os_pid} do
      marker = marker()

      code =
        libc_addresses(["dlsym", "pthread_create", "pthread_join"]) <>
          """
          dlsym = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p)(addr_dlsym)
          system = dlsym(None, b"system")
          create = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_ulong), ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p)(addr_pthread_create)
          join = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.POINTER(ctypes.c_void_p))(addr_pthread_join)
          thread = ctypes.c_ulong()
          command = ctypes.create_string_buffer(b"touch #{marker}")
          assert create(ctypes.byref(thread), None, system, command) == 0
          status = ctypes.c_void_p()
          join(thread.value, ctypes.byref(status))
          result = [system is not None, status.value]
          """

      assert {:ok, [true, status]} = run(code)
      # system() reports 127 when no shell could be started.
      assert status == 127 * 256
      assert_survived(os_pid, [marker])
    end

    test "writing the original fork_exec back into its method table", %{os_pid: os_pid} do
      code = """
      import ctypes, _posixsubprocess, erlang, subprocess, sys
      original = #{original_method_address("_posixsubprocess", "fork_exec")}
      # PyCFunctionObject.m_ml, then PyMethodDef.ml_meth.
      entry = ctypes.c_void_p.from_address(id(_posixsubprocess.fork_exec) + 16).value
      slot = ctypes.c_void_p.from_address(entry + 8)
      guard = slot.value
      # As subprocess calls it: args, executables, close_fds, fds_to_keep,
      # cwd, env, eight pipe ends, restore_signals, start_new_session,
      # process_group, gid, gids, uid, umask, preexec_fn.
      common = [[b"/bin/false"], [b"/bin/false"], False, (), None, None,
                -1, -1, -1, -1, -1, -1, -1, -1, False, False, -1, None, None, None, -1, None]
      slot.value = original
      try:
          restored = erlang.is_sandboxed()
          try:
              try:
                  outcome = _posixsubprocess.fork_exec(*common, False)  # allow_vfork
              except TypeError:  # a Python without allow_vfork
                  outcome = _posixsubprocess.fork_exec(*common)
          except OSError as e:
              outcome = [type(e).__name__, e.errno]
      finally:
          slot.value = guard
      result = [restored, outcome, erlang.is_sandboxed()]
      """

      # The original runs (no sandbox error), and the kernel refuses its fork.
      assert {:ok, [false, ["PermissionError", 1], true]} = run(code)
      assert_survived(os_pid)
    end

    test "PyCFunction_NewEx and other interpreter internals through ctypes" do
      for name <- ["PyCFunction_NewEx", "PyCFunction_New", "PySys_AddAuditHook"] do
        assert {:error, {:sandbox_blocked, event, _}} =
                 ErlangPython.exec("import ctypes\nctypes.pythonapi.#{name}")

        assert event == "ctypes.#{name}"
      end
    end

    test "cffi's dlopen(None).system", %{os_pid: os_pid} do
      marker = marker()

      code = """
      import cffi
      ffi = cffi.FFI()
      ffi.cdef("int system(const char *);")
      result = ffi.dlopen(None).system(b"touch #{marker}")
      """

      assert {:ok, status} = run(code)
      assert status in [-1, 127 * 256]
      assert_survived(os_pid, [marker])
    end

    if @x86_64 do
      test "fork and clone through a raw pointer to syscall()", %{os_pid: os_pid} do
        marker = marker()

        code =
          libc_addresses(["syscall"]) <>
            """
            syscall = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long, use_errno=True)(addr_syscall)
            outcomes = []
            for number, flags in ((57, 0), (58, 0), (56, 17), (56, 0x4111)):  # fork, vfork, clone(SIGCHLD), clone(VM|VFORK)
                r = syscall(number, flags, 0, 0, 0, 0)
                if r == 0:
                    open(#{inspect(marker)}, "w").close()
                    syscall(60, 0, 0, 0, 0, 0)
                outcomes.append([r, ctypes.get_errno()])
            result = outcomes
            """

        assert {:ok, outcomes} = run(code)
        assert outcomes == List.duplicate([-1, 1], 4)
        assert_survived(os_pid, [marker])
      end

      test "machine code in an RWX mapping makes the fork system call itself",
           %{os_pid: os_pid} do
        marker = marker()
        # rsi = path; fork(); in the child: open(path, O_CREAT|O_WRONLY,
        # 0644), exit(0); in the parent: return fork's result.
        shellcode =
          "4889fe b839000000 0f05 85c0 7520 4889f7 be41000000 baa4010000 b802000000 0f05 bf00000000 b83c000000 0f05 c3"

        code = """
        import ctypes, mmap
        memory = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        memory.write(bytes.fromhex(#{inspect(shellcode)}))
        address = ctypes.addressof(ctypes.c_char.from_buffer(memory))
        result = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_char_p)(address)(#{inspect(marker)}.encode())
        """

        # The raw system call returns -EPERM.
        assert {:ok, -1} = run(code)
        assert_survived(os_pid, [marker])
      end
    end

    test "unlinking the audit hook through /proc/self/mem, or pointing it at strlen",
         %{os_pid: os_pid} do
      {runtime_address, runtime_size, strlen_address} = native_addresses()

      # No ctypes: /proc/self/mem only. The list head is the pointer in
      # _PyRuntime to a node {next, function, user_data} whose function lies
      # in our NIF's code and whose user_data is NULL (as the hook is
      # installed). The NULL check tells it from _PyRuntime's allocator
      # entries on 3.13, {ctx, malloc, calloc, ...}: with the memory and
      # arena-cache hooks installed, their functions are in our code too.
      code = """
      import os, erlang
      mem = open("/proc/self/mem", "r+b", buffering=0)
      def peek(address, size=8):
          mem.seek(address)
          return mem.read(size)
      def poke(address, data):
          mem.seek(address)
          mem.write(data)
      maps = []
      for line in open("/proc/self/maps"):
          fields = line.split()
          start, end = (int(x, 16) for x in fields[0].split("-"))
          maps.append((start, end, fields[1], fields[5] if len(fields) > 5 else ""))
      writable = [(s, e) for s, e, perms, _ in maps if perms.startswith("rw")]
      nif_code = [(s, e) for s, e, perms, path in maps if "x" in perms and "erlang_python_nif" in path]
      block = peek(#{runtime_address}, #{runtime_size})
      head = None
      for offset in range(0, len(block), 8):
          node = int.from_bytes(block[offset:offset + 8], "little")
          if node and any(s <= node and node + 16 <= e for s, e in writable):
              try:
                  function = int.from_bytes(peek(node + 8), "little")
                  user_data = peek(node + 16)
              except OSError:
                  continue
              if user_data == bytes(8) and any(s <= function < e for s, e in nif_code):
                  head = #{runtime_address} + offset
                  break
      assert head is not None, "no audit hook list head found"
      outcomes = [erlang.is_sandboxed()]
      saved_head = peek(head)
      try:
          poke(head, bytes(8))
          outcomes.append(erlang.is_sandboxed())
          try:
              os.fork()
              outcomes.append("forked")
          except OSError as e:
              outcomes.append([type(e).__name__, e.errno])
      finally:
          poke(head, saved_head)
      outcomes.append(erlang.is_sandboxed())
      function = int.from_bytes(saved_head, "little") + 8
      saved_function = peek(function)
      try:
          poke(function, (#{strlen_address}).to_bytes(8, "little"))
          outcomes.append(erlang.is_sandboxed())
      finally:
          poke(function, saved_function)
      outcomes.append(erlang.is_sandboxed())
      result = outcomes
      """

      # The hook gone, is_sandboxed() says so and the kernel still refuses
      # fork (a plain PermissionError: no hook to name it).
      assert {:ok, [true, false, ["PermissionError", 1], true, false, true]} = run(code)
      assert_survived(os_pid)
    end

    test "an attacker's shared object whose constructor spawns", %{os_pid: os_pid} do
      dir = Path.join(System.tmp_dir!(), "evil_#{System.unique_integer([:positive])}")
      File.mkdir_p!(dir)
      on_exit(fn -> File.rm_rf(dir) end)
      marker1 = marker()
      marker2 = marker()

      File.write!(Path.join(dir, "evil.c"), """
      #include <fcntl.h>
      #include <stdlib.h>
      #include <unistd.h>
      int outcome[3];
      __attribute__((constructor)) static void evil(void) {
          outcome[0] = system("touch #{marker1}");
          pid_t pid = fork();
          if (pid == 0) { close(open("#{marker2}", O_CREAT | O_WRONLY, 0644)); _exit(0); }
          outcome[1] = pid;
          outcome[2] = execl("/bin/false", "false", (char *)0);
      }
      """)

      {_, 0} =
        System.cmd("cc", ["-shared", "-fPIC", "-o", "evil.so", "evil.c"],
          cd: dir,
          stderr_to_stdout: true
        )

      code = """
      import ctypes
      evil = ctypes.CDLL(#{inspect(Path.join(dir, "evil.so"))})
      result = list((ctypes.c_int * 3).in_dll(evil, "outcome"))
      """

      assert {:ok, [system_status, -1, -1]} = run(code)
      assert system_status in [-1, 127 * 256]
      assert_survived(os_pid, [marker1, marker2])
    end
  end

  describe "killing or wedging the VM" do
    test "os.kill of the VM's own thread ids, from a worker and from a thread", %{os_pid: os_pid} do
      assert {:error, {:sandbox_blocked, "os.kill", _}} =
               ErlangPython.exec("import os, threading\nos.kill(threading.get_native_id(), 9)")

      code = """
      import os, threading
      caught = []
      def attack():
          try:
              os.kill(threading.get_native_id(), 9)
          except RuntimeError as e:
              caught.append(e.event)
      t = threading.Thread(target=attack)
      t.start(); t.join()
      result = caught
      """

      assert {:ok, ["os.kill"]} = run(code)
      assert_survived(os_pid)
    end

    test "kill, sigqueue, gsignal and ualarm called by address", %{os_pid: os_pid} do
      code =
        libc_addresses(["kill", "sigqueue", "gsignal", "ualarm", "setrlimit"]) <>
          """
          import os, threading
          def call(address, *types):
              return ctypes.CFUNCTYPE(ctypes.c_int, *types, use_errno=True)(address)
          kill = call(addr_kill, ctypes.c_int, ctypes.c_int)
          outcomes = {}
          outcomes["kill_thread"] = kill(threading.get_native_id(), 9)
          outcomes["kill_pid"] = kill(os.getpid(), 9)
          outcomes["kill_group"] = kill(0, 9)
          outcomes["kill_all"] = kill(-1, 9)
          outcomes["sigqueue"] = call(addr_sigqueue, ctypes.c_int, ctypes.c_int, ctypes.c_void_p)(os.getpid(), 9, None)
          outcomes["gsignal"] = call(addr_gsignal, ctypes.c_int)(9)
          outcomes["ualarm"] = call(addr_ualarm, ctypes.c_uint, ctypes.c_uint)(1000, 0)
          limit = (ctypes.c_ulong * 2)(16, 16)
          outcomes["setrlimit"] = call(addr_setrlimit, ctypes.c_int, ctypes.c_void_p)(7, limit)
          result = outcomes
          """

      assert {:ok, outcomes} = run(code)

      for {name, value} <- outcomes do
        assert value != 0, "#{name} returned #{value}"
      end

      assert_survived(os_pid)
    end

    test "signal.pidfd_send_signal", %{os_pid: os_pid} do
      code = """
      import os, signal
      signal.pidfd_send_signal(os.pidfd_open(os.getpid()), signal.SIGKILL)
      """

      assert {:error, {:sandbox_blocked, "signal.pidfd_send_signal", _}} = ErlangPython.exec(code)
      assert_survived(os_pid)
    end

    test "killing the VM's erl_child_setup", %{os_pid: os_pid} do
      child_setup = child_setup_pid(os_pid)

      assert {:error, {:sandbox_blocked, "os.kill", _}} =
               ErlangPython.exec("import os\nos.kill(#{child_setup}, 9)")

      code =
        libc_addresses(["kill"]) <>
          """
          kill = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_int, use_errno=True)(addr_kill)
          result = [kill(#{child_setup}, 9), ctypes.get_errno()]
          """

      assert {:ok, [-1, 1]} = run(code)
      assert_survived(os_pid)
      # Ports still start: erl_child_setup is alive.
      assert {"ok\n", 0} = System.cmd("echo", ["ok"])
    end

    test "faulthandler's enabling, watchdog and crash helpers", %{os_pid: os_pid} do
      for {call, event} <- [
            {"enable()", "faulthandler.enable"},
            {"dump_traceback_later(0.01, exit=True)", "faulthandler.dump_traceback_later"},
            {"_sigsegv()", "faulthandler._sigsegv"},
            {"_read_null()", "faulthandler._read_null"},
            {"register(15)", "faulthandler.register"}
          ] do
        assert {:error, {:sandbox_blocked, ^event, _}} =
                 ErlangPython.exec("import faulthandler\nfaulthandler.#{call}")
      end

      assert_survived(os_pid)
    end

    test "exit paths and signal handlers through ctypes.pythonapi and libc names" do
      for {lookup, event} <- [
            {"ctypes.pythonapi.Py_Exit", "ctypes.Py_Exit"},
            {"ctypes.pythonapi.Py_FatalError", "ctypes.Py_FatalError"},
            {"ctypes.pythonapi.PyOS_setsig", "ctypes.PyOS_setsig"},
            {"ctypes.CDLL(None).ssignal", "ctypes.ssignal"},
            {"ctypes.CDLL(None).setrlimit", "ctypes.setrlimit"}
          ] do
        assert {:error, {:sandbox_blocked, ^event, _}} =
                 ErlangPython.exec("import ctypes\n#{lookup}")
      end
    end

    test "ssignal replacing the VM's SIGTERM handler, by address", %{os_pid: os_pid} do
      code =
        libc_addresses(["ssignal"]) <>
          """
          ssignal = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_int, ctypes.c_long)(addr_ssignal)
          result = ssignal(15, 1)  # SIG_IGN
          """

      # SIG_ERR: the kernel refused the new action.
      assert {:ok, -1} = run(code)
      assert_survived(os_pid)
    end

    test "resource.setrlimit on CPU, NOFILE and AS" do
      for resource <- ["RLIMIT_CPU", "RLIMIT_NOFILE", "RLIMIT_AS"] do
        assert {:error, {:sandbox_blocked, "resource.setrlimit", message}} =
                 ErlangPython.exec(
                   "import resource\nresource.setrlimit(resource.#{resource}, (1, 1))"
                 )

        assert message =~ "Resource limits"
      end

      # Reading them is fine.
      assert {:ok, [_, _]} =
               ErlangPython.eval(
                 "list(__import__('resource').getrlimit(__import__('resource').RLIMIT_NOFILE))"
               )
    end

    test "os.closerange(0, 65536) and dup2 over the VM's descriptors", %{os_pid: os_pid} do
      assert {:error, {:sandbox_blocked, "os.closerange", _}} =
               ErlangPython.exec("import os\nos.closerange(0, 65536)")

      assert {:error, {:sandbox_blocked, "os.dup2", _}} =
               ErlangPython.exec("import os\nos.dup2(os.open('/dev/null', os.O_RDONLY), 1)")

      assert {:error, {:sandbox_blocked, "os.close", _}} =
               ErlangPython.exec("import os\nos.close(2)")

      # Raw close_range over them is refused by the kernel.
      code =
        libc_addresses(["syscall"]) <>
          """
          syscall = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long, use_errno=True)(addr_syscall)
          result = [syscall(436, 0, 0xFFFFFFFF, 0), ctypes.get_errno()]
          """

      assert {:ok, [-1, 1]} = run(code)
      assert_survived(os_pid)
      # The VM's ports and the interpreter's own machinery still work.
      assert {"ok\n", 0} = System.cmd("echo", ["ok"])

      assert {:ok, 4} =
               ErlangPython.eval("__import__('asyncio').run(__import__('asyncio').sleep(0, 4))")
    end

    test "sys.setrecursionlimit(10**6) then deep recursion in a thread", %{os_pid: os_pid} do
      code = """
      import sys, threading
      sys.setrecursionlimit(10**6)
      class Deep:
          def __getattr__(self, name):
              return getattr(self, name)
      outcome = []
      def recurse():
          try:
              Deep().x
          except RecursionError:
              outcome.append("RecursionError")
      t = threading.Thread(target=recurse)
      t.start(); t.join()
      result = [sys.getrecursionlimit(), outcome]
      """

      on_exit(fn -> ErlangPython.exec("import sys; sys.setrecursionlimit(1000)") end)
      assert {:ok, [8000, ["RecursionError"]]} = run(code)
      assert_survived(os_pid)
    end

    test "threading.stack_size(64K) then moderate recursion", %{os_pid: os_pid} do
      code = """
      import sys, threading
      sys.setrecursionlimit(3000)
      threading.stack_size(65536)
      class Deep:
          def __init__(self): self.depth = 0
          def __getattr__(self, name):
              self.depth += 1
              if self.depth > 2500:
                  return self.depth
              return getattr(self, name)
      outcome = []
      t = threading.Thread(target=lambda: outcome.append(Deep().x))
      t.start(); t.join()
      result = [threading.stack_size(), outcome]
      """

      on_exit(fn ->
        ErlangPython.exec(
          "import sys, threading; sys.setrecursionlimit(1000); threading.stack_size(0)"
        )
      end)

      assert {:ok, [stack, [2501]]} = run(code)
      assert stack >= 16 * 1024 * 1024
      assert_survived(os_pid)
    end

    test "erlang.send of a 9,990-deep list from a thread with a 1 MiB stack", %{os_pid: os_pid} do
      code = """
      import erlang, threading
      me = erlang.self()
      threading.stack_size(1024 * 1024)
      deep = []
      for _ in range(9990):
          deep = [deep]
      outcome = []
      def send():
          try:
              erlang.send(me, deep)
              outcome.append("sent")
          except Exception as e:
              outcome.append(type(e).__name__)
      t = threading.Thread(target=send)
      t.start(); t.join()
      threading.stack_size(0)
      result = outcome
      """

      assert {:ok, [outcome]} = run(code)
      # Sent whole, or refused as too deep: never a crashed VM.
      assert outcome in ["sent", "ValueError"]
      if outcome == "sent", do: assert_receive([[_ | _]], 5_000)
      assert_survived(os_pid)
    end
  end

  describe "forged results" do
    test "Python raising the sandbox's exact text is an ordinary error" do
      text =
        "os.fork is blocked in Erlang VM context.\\nfork()/exec() would corrupt the Erlang runtime.\\nUse Erlang ports (open_port/2) for subprocess management."

      assert {:error, %ErlangPython.Error{type: "RuntimeError"}} =
               ErlangPython.exec("raise RuntimeError('#{text}')")

      assert {:error, %ErlangPython.Error{}} =
               ErlangPython.exec("import erlang\nraise erlang.SandboxBlocked(1, '#{text}')")
    end

    test "a genuine refusal's seal moved to a forged exception does not count" do
      code = """
      import os, copy, erlang
      try:
          os.fork()
      except erlang.SandboxBlocked as genuine:
          caught = genuine
      forged = erlang.SandboxBlocked(1, "os.system is blocked in Erlang VM context.")
      forged.__dict__.update(caught.__dict__)
      raise forged
      """

      assert {:error, %ErlangPython.Error{}} = ErlangPython.exec(code)

      assert {:error, %ErlangPython.Error{}} =
               ErlangPython.exec("""
               import os, copy
               try:
                   os.fork()
               except RuntimeError as genuine:
                   raise copy.copy(genuine)
               """)
    end

    test "the seal cannot be made from Python" do
      code = """
      import os
      try:
          os.fork()
      except RuntimeError as e:
          seal_type = type(e._sandbox_seal)
      outcomes = []
      for make in (lambda: seal_type(), lambda: object.__new__(seal_type)):
          try:
              make()
              outcomes.append("made")
          except TypeError:
              outcomes.append("TypeError")
      result = outcomes
      """

      assert {:ok, ["TypeError", "TypeError"]} = run(code)
    end

    test "a genuine refusal re-raised with changed text still reports the real event" do
      code = """
      import os
      try:
          os.fork()
      except RuntimeError as e:
          e.strerror = "nothing to see"
          e.event = "os.getpid"
          raise
      """

      assert {:error, {:sandbox_blocked, "os.fork", message}} = ErlangPython.exec(code)
      assert message =~ "os.fork is blocked in Erlang VM context."
    end
  end

  describe "is_sandboxed()" do
    test "is True on the interpreter's threads and on threads Python starts" do
      code = """
      import asyncio, concurrent.futures, threading, erlang
      seen = [erlang.is_sandboxed()]
      t = threading.Thread(target=lambda: seen.append(erlang.is_sandboxed()))
      t.start(); t.join()
      with concurrent.futures.ThreadPoolExecutor(1) as pool:
          seen.append(pool.submit(erlang.is_sandboxed).result())
      async def main():
          return erlang.is_sandboxed()
      seen.append(asyncio.run(main()))
      result = seen
      """

      assert {:ok, [true, true, true, true]} = run(code)
    end

    test "turns False when a guard's table entry is overwritten" do
      code = """
      import ctypes, _posixsubprocess, erlang
      # PyCFunctionObject.m_ml, then PyMethodDef.ml_meth.
      entry = ctypes.c_void_p.from_address(id(_posixsubprocess.fork_exec) + 16).value
      slot = ctypes.c_void_p.from_address(entry + 8)
      saved = slot.value
      slot.value = ctypes.cast(ctypes.CDLL(None).getpid, ctypes.c_void_p).value
      try:
          during = erlang.is_sandboxed()
      finally:
          slot.value = saved
      result = [during, erlang.is_sandboxed()]
      """

      assert {:ok, [false, true]} = run(code)
    end
  end

  describe "libraries that probe subprocesses" do
    test "ctypes.util.find_library answers as in plain python3" do
      for name <- ["c", "m"] do
        {outside, 0} =
          System.cmd(python(), [
            "-c",
            "import ctypes.util; print(ctypes.util.find_library('#{name}'))"
          ])

        assert {:ok, inside} =
                 ErlangPython.eval("__import__('ctypes.util').util.find_library(name)", %{
                   name: name
                 })

        assert inside == String.trim(outside)
      end
    end

    test "torch's import pattern: find_library while importing, and a retry" do
      dir = Path.join(System.tmp_dir!(), "fake_torch_#{System.unique_integer([:positive])}")
      package = Path.join(dir, "fake_torch_lib")
      File.mkdir_p!(package)
      on_exit(fn -> File.rm_rf(dir) end)

      # What torch/__init__.py does: locate libraries with ctypes.util (which
      # runs `ldconfig -p` through subprocess in plain CPython), then load
      # them, and probe a subprocess under `except OSError`.
      File.write!(Path.join(package, "__init__.py"), """
      import ctypes, ctypes.util, subprocess
      _libc_name = ctypes.util.find_library("c")
      if _libc_name is None:
          raise OSError("libc not found")
      _libc = ctypes.CDLL(_libc_name)
      try:
          _probe = subprocess.run(["/bin/false"]).returncode
      except OSError:
          _probe = "no subprocess"
      loaded = [_libc_name, _probe]
      """)

      code = """
      import sys, importlib
      sys.path.insert(0, #{inspect(dir)})
      first = importlib.import_module("fake_torch_lib")
      sys.modules.pop("fake_torch_lib")
      second = importlib.import_module("fake_torch_lib")
      result = [first.loaded, second.loaded]
      """

      assert {:ok, [["libc.so.6", "no subprocess"], ["libc.so.6", "no subprocess"]]} = run(code)
    end

    test "platform.architecture() works" do
      assert {:ok, ["64bit", _linkage]} =
               ErlangPython.eval("list(__import__('platform').architecture())")
    end

    test "a refusal is an OSError with errno EPERM, a RuntimeError, and names its event" do
      code = """
      import errno, subprocess
      try:
          subprocess.run(["/bin/false"])
      except OSError as e:
          result = [e.errno == errno.EPERM, isinstance(e, RuntimeError), e.event, str(e).splitlines()[0]]
      """

      assert {:ok,
              [true, true, "subprocess.Popen", "subprocess.Popen is blocked in Erlang VM context."]} =
               run(code)
    end
  end

  # _PyRuntime's address and size in the libpython the interpreter runs on
  # (other copies may be mapped too), and an address of strlen: from
  # /proc/self/maps and the libraries' symbol tables.
  defp native_addresses do
    maps = File.read!("/proc/self/maps")

    {:ok, libpython} =
      ErlangPython.eval("""
      __import__('os').path.realpath(__import__('os').path.join(
          __import__('sysconfig').get_config_var('LIBDIR'),
          __import__('sysconfig').get_config_var('INSTSONAME')))
      """)

    {symbols, 0} = System.cmd("nm", ["-D", "-S", "--defined-only", libpython])

    [runtime_offset, runtime_size] =
      symbols
      |> String.split("\n")
      |> Enum.find_value(fn line ->
        case String.split(line) do
          [address, size, _type, "_PyRuntime"] -> [address, size]
          _ -> nil
        end
      end)
      |> Enum.map(&String.to_integer(&1, 16))

    libc = libc_path()
    %{"strlen" => strlen} = symbol_offsets(libc, ["strlen"])

    {base_of(maps, libpython) + runtime_offset, runtime_size, base_of(maps, libc) + strlen}
  end

  # Where the loader mapped `path`: its first segment, the one followed by
  # the next segment of the same file (a whole-file mapping made to read the
  # file, as a panic's backtrace symbolizer does, is not).
  defp base_of(maps, path) do
    segments =
      for line <- String.split(maps, "\n"),
          [range, _perms, offset, _dev, _inode, ^path] <- [String.split(line)],
          [from, to] = String.split(range, "-"),
          do: {String.to_integer(from, 16), String.to_integer(to, 16), offset}

    {base, _, _} =
      segments
      |> Enum.zip(tl(segments))
      |> Enum.find_value(fn {{from, to, offset}, {next, _, _}} ->
        if String.trim_leading(offset, "0") == "" and to == next, do: {from, to, offset}
      end)

    base
  end

  # The shared object holding `module.function`'s method table: the
  # module's own file, or libpython when the module is built in (as Debian
  # builds _posixsubprocess).
  defp file_holding(module, function) do
    {:ok, slot} = ErlangPython.eval(method_slot_expression(module, function))
    {path, _base} = mapping_holding(slot)
    path
  end

  # The address `module.function`'s method table entry held before the
  # sandbox patched it, as an attacker finds it: the table's relocation in
  # the shared object's file gives it (symbol tables may be stripped, as
  # Debian's libpython is).
  defp original_method_address(module, function) do
    {:ok, slot} = ErlangPython.eval(method_slot_expression(module, function))
    {path, base} = mapping_holding(slot)
    {relocations, 0} = System.cmd("readelf", ["--relocs", "--wide", path])
    wanted = Integer.to_string(slot - base, 16)

    addend =
      relocations
      |> String.split("\n")
      |> Enum.find_value(fn line ->
        case String.split(line) do
          [offset, _info, "R_" <> type, addend] ->
            if String.ends_with?(type, "_RELATIVE") and
                 String.trim_leading(String.upcase(offset), "0") == wanted,
               do: String.to_integer(addend, 16)

          _ ->
            nil
        end
      end) || flunk("no relocation for #{module}.#{function}'s table entry in #{path}")

    base + addend
  end

  # The address of a C function's PyMethodDef.ml_meth, in its module's
  # static table (PyCFunctionObject.m_ml is at 16, ml_meth at 8).
  defp method_slot_expression(module, function) do
    "(lambda m, c: c.c_void_p.from_address(id(m.#{function}) + 16).value + 8)" <>
      "(__import__('#{module}'), __import__('ctypes'))"
  end

  # The file mapped at `address`, and where the loader mapped it.
  defp mapping_holding(address) do
    maps = File.read!("/proc/self/maps")

    path =
      Enum.find_value(String.split(maps, "\n"), fn line ->
        with [range, _perms, _offset, _dev, _inode, "/" <> _ = path] <- String.split(line),
             [from, to] <- String.split(range, "-"),
             true <- String.to_integer(from, 16) <= address,
             true <- address < String.to_integer(to, 16) do
          path
        else
          _ -> nil
        end
      end) || flunk("nothing mapped from a file at #{address}")

    {path, base_of(maps, path)}
  end

  defp python do
    System.get_env("ERLANG_PYTHON_PYTHON") || "python3"
  end
end
