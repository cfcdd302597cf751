# A tour of erlang_python: run with `bin/demo` (or `mix run examples/demo.exs`).
show = fn label, result -> IO.puts("#{String.pad_trailing(label, 44)} #{inspect(result)}") end

show.("call(:math, :sqrt, [16])", ErlangPython.call(:math, :sqrt, [16]))
show.("call(:builtins, :sorted, ..., kwargs: [reverse: true])",
  ErlangPython.call(:builtins, :sorted, [[1, 3, 2]], kwargs: [reverse: true]))
show.("call(:json, :dumps, [%{name: ...}], kwargs)",
  ErlangPython.call(:json, :dumps, [%{name: "Elixir", langs: ["python"]}], kwargs: %{sort_keys: true}))
show.("eval(\"sum(range(10))\")", ErlangPython.eval("sum(range(10))"))
show.("eval(\"x * y\", %{x: 5, y: 5})", ErlangPython.eval("x * y", %{x: 5, y: 5}))
show.("eval(\"2 ** 100\")", ErlangPython.eval("2 ** 100"))
show.("exec(def double) + call(:__main__, :double)",
  with(:ok <- ErlangPython.exec("def double(x):\n    return x * 2"),
    do: ErlangPython.call(:__main__, :double, [21])))
show.("eval(\"sys.version\")", ErlangPython.eval("__import__('sys').version.split()[0]"))

{:error, error} = ErlangPython.eval("1/0")
show.("eval(\"1/0\")", {:error, %{error | traceback: "..."}})
show.("exec(\"import os; os.fork()\")", ErlangPython.exec("import os; os.fork()"))
show.(":py.eval(\"1/0\")  (Erlang facade)", :py.eval("1/0"))

# Python calling back into Elixir.
:ok = ErlangPython.register_function(:greet, fn [name] -> "hello #{name}, from Elixir" end)
show.("Python -> erlang.greet('py') -> Elixir", ErlangPython.eval("__import__('erlang').greet('py')"))

# Coroutines run on the runtime's asyncio loop: 100 x sleep(0.1) at once.
:ok = ErlangPython.exec("import asyncio\nasync def slow_double(x):\n    await asyncio.sleep(0.1)\n    return 2 * x")
{us, results} =
  :timer.tc(fn ->
    1..100
    |> Enum.map(&ErlangPython.async_call(:__main__, :slow_double, [&1]))
    |> Enum.map(&ErlangPython.await/1)
  end)

show.("100 coroutines of 0.1 s, awaited", "#{length(results)} results in #{div(us, 1000)} ms")

# A Python generator as an Elixir Stream, and an object handle.
show.("stream_eval of an infinite generator", ErlangPython.stream_eval("__import__('itertools').count(1)") |> Enum.take(5))
{:ok, path} = ErlangPython.call(:pathlib, :PurePosixPath, ["/srv/app/main.py"])
show.("a Python object handle", {path, ErlangPython.getattr(path, :suffix)})
