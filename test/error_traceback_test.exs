defmodule ErlangPython.ErrorTracebackTest do
  use ExUnit.Case, async: true

  import ErlangPython.TestHelpers

  alias ErlangPython.Error

  # A module in a file of its own, so its frames carry a path and source.
  setup do
    dir = Path.join(System.tmp_dir!(), unique("ep_tb"))
    File.mkdir_p!(dir)
    module = unique("ep_tb_mod")

    File.write!(Path.join(dir, module <> ".py"), """
    def lookup(table, key):
        return table[key]


    def price(key):
        return lookup({"a": 1}, key)


    def numbers():
        yield 1
        raise ValueError("no more")
    """)

    {:ok, nil} =
      ErlangPython.call(:builtins, :exec, ["import sys; sys.path.insert(0, d)", %{"d" => dir}])

    on_exit(fn -> File.rm_rf!(dir) end)
    %{module: module, dir: dir}
  end

  test "the message ends with the user's frames, most recent call last, with their source", %{
    module: module,
    dir: dir
  } do
    error = catch_error(ErlangPython.call!(module, :price, ["missing"]))
    message = Exception.message(error)
    file = Path.join(dir, module <> ".py")

    assert ["KeyError: 'missing'", "Traceback (most recent call last):" | lines] =
             String.split(message, "\n")

    # Each frame's line, then its source (Python 3.11+ may add a line of
    # carets under it).
    assert Enum.filter(lines, &String.starts_with?(&1, "  File ")) == [
             ~s(  File "#{file}", line 6, in price),
             ~s(  File "#{file}", line 2, in lookup)
           ]

    assert Enum.at(lines, 1) == ~s|    return lookup({"a": 1}, key)|
    assert "    return table[key]" in lines
    # Real newlines, not an escaped string; no frame of the library's own.
    refute message =~ "\\n"
    refute message =~ "_erlang_impl"
    assert length(Error.frames(error)) == 2
  end

  test "eval's own <string> and <lambda> wrappers are hidden; the whole traceback stays in the field" do
    {:error, error} = ErlangPython.eval("d['missing']", %{d: %{}})
    assert error.traceback =~ ~s(File "<string>")
    assert Error.frames(error) == []
    assert Exception.message(error) == "KeyError: 'missing'"

    {:error, error} = ErlangPython.eval("1/0")
    assert Exception.message(error) == "ZeroDivisionError: division by zero"
  end

  test "a raised error shows the frames under iex's ** (ErlangPython.Error) line", %{module: module} do
    formatted =
      try do
        ErlangPython.call!(module, :price, ["nope"])
      rescue
        error -> Exception.format(:error, error, [])
      end

    assert formatted =~ ~r/\*\* \(ErlangPython.Error\) KeyError: 'nope'\n/
    assert formatted =~ ~r/\n +File ".*", line 2, in lookup\n +return table\[key\]/
  end

  test "the library's own frames (a stream's puller) are hidden", %{module: module} do
    error = catch_error(Enum.to_list(ErlangPython.stream(module, :numbers, [])))
    assert error.traceback =~ "_erlang_impl"
    assert [frame] = Error.frames(error)
    assert frame =~ "in numbers"
    refute Exception.message(error) =~ "_erlang_impl"
  end

  test "inspect shows the traceback as lines (a heredoc), readable in iex", %{module: module} do
    {:error, error} = ErlangPython.call(module, :price, ["missing"])
    inspected = inspect(error)
    assert inspected =~ ~s|traceback: """\nTraceback (most recent call last):\n  File |
    assert inspected =~ ~s(KeyError: 'missing'\n"""})
    # It reads back as the same struct.
    {back, _} = Code.eval_string(inspected)
    assert back == error
  end

  test "a chained exception shows the frames of the one raised" do
    {:error, error} =
      ErlangPython.exec("""
      try:
          {}['a']
      except KeyError:
          raise ValueError('bad key')
      """)

    assert error.traceback =~ "During handling of the above exception"
    assert Exception.message(error) == "ValueError: bad key"
  end
end
