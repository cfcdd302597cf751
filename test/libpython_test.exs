defmodule ErlangPython.LibpythonTest do
  # One Python per OS process: the VM maps exactly one libpython, the one the
  # NIF was built against (its rpath), and C extension modules bind to it
  # rather than bringing a copy of their own. Two copies in one process would
  # mean two runtimes with separate state behind one set of objects: a crash
  # or silent corruption, never an error message.
  use ExUnit.Case, async: true

  # Every file of a libpython (shared library) or a python executable mapped
  # into this OS process, the VM's.
  defp mapped_pythons do
    "/proc/self/maps"
    |> File.read!()
    |> String.split("\n", trim: true)
    |> Enum.flat_map(fn line ->
      case String.split(line, ~r/\s+/, parts: 6) do
        [_, _, _, _, _, "/" <> _ = path] -> [path]
        _ -> []
      end
    end)
    |> Enum.filter(&(Path.basename(&1) =~ ~r/^(lib)?python\d/))
    |> Enum.uniq()
  end

  # The library the embedded interpreter says it runs on, symlinks resolved
  # (the kernel names mapped files by their real path); none for a Python
  # built without a shared library.
  defp own_libpython do
    {:ok, [shared, path]} =
      ErlangPython.eval("""
      [__import__('sysconfig').get_config_var('Py_ENABLE_SHARED'),
       __import__('os').path.realpath(__import__('os').path.join(
           __import__('sysconfig').get_config_var('LIBDIR'),
           __import__('sysconfig').get_config_var('INSTSONAME')))]
      """)

    if shared == 1, do: [path], else: []
  end

  test "exactly one libpython is mapped, the build's, also once C extensions are loaded" do
    expected = own_libpython()

    assert {:ok, _} =
             ErlangPython.eval(
               "[__import__(m).__name__ for m in ('_decimal', '_json', '_ctypes', 'math', 'select')]"
             )

    assert mapped_pythons() == expected
  end

  test "an own-GIL context's interpreter runs on the same libpython" do
    if ErlangPython.OwnGil.supported?() do
      expected = own_libpython()
      {:ok, ctx} = ErlangPython.ContextServer.start_link(own_gil: true)

      try do
        assert {:ok, "0.3333333333"} =
                 ErlangPython.eval(
                   "str(__import__('decimal').Context(prec=10).divide(1, 3))",
                   %{},
                   context: ctx
                 )

        assert mapped_pythons() == expected
      after
        ErlangPython.ContextServer.stop(ctx)
      end
    else
      assert {:error, {:own_gil_unsupported, _}} = ErlangPython.ContextServer.start(own_gil: true)
    end
  end
end
