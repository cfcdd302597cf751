defmodule ErlangPython.NativeAttack do
  @moduledoc false
  # Helpers for the sandbox's attack tests: native addresses computed the
  # way hostile code would (from a harmless symbol plus offsets read from
  # the library's own symbol table, so no audited lookup names them), marker
  # files that only a spawned process would create, and the checks that the
  # VM survived.

  import ExUnit.Assertions

  @doc "The libc the VM has mapped."
  def libc_path do
    File.read!("/proc/self/maps")
    |> String.split("\n")
    |> Enum.find_value(fn line ->
      case Regex.run(~r{(/\S*/libc\.so\.6)$}, line) do
        [_, path] -> path
        nil -> nil
      end
    end)
  end

  @doc "Offsets of `names` in the dynamic symbol table of `library`."
  def symbol_offsets(library, names) do
    {symbols, 0} = System.cmd("nm", ["-D", "--defined-only", library])

    offsets =
      for line <- String.split(symbols, "\n"),
          [address, _type, symbol] <- [String.split(line)],
          name = symbol |> String.split("@") |> hd(),
          name in names,
          into: %{},
          do: {name, String.to_integer(address, 16)}

    for name <- names, do: assert(Map.has_key?(offsets, name), "#{name} not in #{library}")
    offsets
  end

  @doc """
  Python code binding `libc` (a ctypes CDLL) and, for each name, a variable
  `addr_<name>` holding the function's address, found without looking the
  name up.
  """
  def libc_addresses(names) do
    libc = libc_path()
    offsets = symbol_offsets(libc, Enum.uniq(["getpid" | names]))

    lines =
      for name <- names do
        "addr_#{name} = _base + #{offsets[name]}"
      end

    """
    import ctypes
    libc = ctypes.CDLL(#{inspect(libc)}, use_errno=True)
    _base = ctypes.cast(libc.getpid, ctypes.c_void_p).value - #{offsets["getpid"]}
    #{Enum.join(lines, "\n")}
    """
  end

  @doc "A fresh path that nothing has created."
  def marker do
    path =
      Path.join(System.tmp_dir!(), "erlang_python_marker_#{System.unique_integer([:positive])}")

    File.rm(path)
    path
  end

  @doc """
  The VM survived and nothing was spawned: the same OS process answers
  (Python agrees on its pid) and none of the markers appeared.
  """
  def assert_survived(os_pid, markers \\ []) do
    # Give a child that should not exist time to write its marker.
    Process.sleep(200)
    assert System.pid() == os_pid
    assert :pong = ErlangPython.ping()
    assert {:ok, pid} = ErlangPython.eval("__import__('os').getpid()")
    assert Integer.to_string(pid) == os_pid

    for marker <- markers do
      refute File.exists?(marker), "a spawned process created #{marker}"
    end
  end

  @doc "The OS pid of the VM's `erl_child_setup` (the VM's own OS pid is `os_pid`)."
  def child_setup_pid(os_pid) do
    pid =
      Path.wildcard("/proc/[0-9]*/stat")
      |> Enum.find_value(fn stat ->
        with {:ok, text} <- File.read(stat),
             [_, comm, rest] <- Regex.run(~r/^\d+ \((.*)\) (.*)$/s, text),
             "erl_child_setup" <- comm,
             [_state, ppid | _] <- String.split(rest),
             ^os_pid <- ppid do
          stat |> Path.dirname() |> Path.basename()
        else
          _ -> nil
        end
      end)

    assert pid, "erl_child_setup not found"
    pid
  end
end
