# The behaviour every kind of context shares, run against each kind: an
# embedded context process and an isolated one (Python in its own OS
# process). A difference between them is a bug in one of the two.
for {kind, options} <- [embedded: [], isolated: [isolated: true]] do
  defmodule Module.concat(ErlangPython.ContextBehaviourTest, Macro.camelize(to_string(kind))) do
    use ExUnit.Case, async: true

    import ExUnit.CaptureIO

    alias ErlangPython.{ContextServer, Error, Object}

    @options options
    @moduletag context_kind: kind

    setup do
      {:ok, ctx} = ContextServer.start_link(@options)
      on_exit(fn -> ContextServer.stop(ctx) end)
      %{ctx: ctx}
    end

    test "call, with positional and keyword arguments", %{ctx: ctx} do
      assert {:ok, 4.0} = ErlangPython.call(:math, :sqrt, [16], context: ctx)

      assert {:ok, [3, 2, 1]} =
               ErlangPython.call(:builtins, :sorted, [[1, 3, 2]],
                 kwargs: [reverse: true],
                 context: ctx
               )

      assert {:ok, "a/b"} = ErlangPython.call("os.path", :join, ["a", "b"], context: ctx)
    end

    test "eval sees locals in nested scopes, and globals() is the namespace", %{ctx: ctx} do
      assert {:ok, [0, 10, 20]} =
               ErlangPython.eval("[n * k for n in range(3)]", %{k: 10}, context: ctx)

      assert {:ok, nil} =
               ErlangPython.eval("globals().__setitem__('kept', v)", %{v: 7}, context: ctx)

      assert {:ok, 7} = ErlangPython.eval("kept", %{}, context: ctx)
    end

    test "exec defines names that call(:__main__) and eval find", %{ctx: ctx} do
      :ok = ErlangPython.exec("def double(x):\n    return x * 2", context: ctx)
      assert {:ok, 42} = ErlangPython.call(:__main__, :double, [21], context: ctx)
      assert {:ok, 8} = ErlangPython.eval("double(4)", %{}, context: ctx)
    end

    test "values convert exactly, both ways", %{ctx: ctx} do
      values = [2 ** 100, -(2 ** 70), 1.5, -0.0, true, nil, "text", <<255>>, [1, [2]], {1, "a"}]
      values = values ++ [%{"a" => 1, 2 => [3]}, MapSet.new([1, 2]), :atom, 255, 256, -1, 2 ** 63]
      assert {:ok, back} = ErlangPython.eval("v", %{v: values}, context: ctx)

      assert back ==
               Enum.map(values, fn
                 :atom -> "atom"
                 other -> other
               end)

      assert {:ok, [:nan, :infinity, :neg_infinity]} =
               ErlangPython.eval("[float(x) for x in ('nan', 'inf', '-inf')]", %{}, context: ctx)

      assert {:ok, "bytes"} =
               ErlangPython.eval("type(v).__name__", %{v: {:bytes, "utf-8"}}, context: ctx)

      ref = make_ref()
      fun = fn x -> x * 2 end

      assert {:ok, {^ref, back_fun, pid}} =
               ErlangPython.eval("(r, f, p)", %{r: ref, f: fun, p: self()}, context: ctx)

      assert back_fun.(2) == 4
      assert pid == self()
    end

    test "a Python exception is an error tuple", %{ctx: ctx} do
      assert {:error, %Error{type: "ZeroDivisionError", message: "division by zero"}} =
               ErlangPython.eval("1/0", %{}, context: ctx)

      assert {:error, %Error{type: "NameError"}} = ErlangPython.eval("missing", %{}, context: ctx)
    end

    test "the sandbox refuses subprocesses with the contract's message", %{ctx: ctx} do
      assert {:error, {:sandbox_blocked, "subprocess.Popen", message}} =
               ErlangPython.exec("import subprocess; subprocess.run(['/bin/true'])", context: ctx)

      assert message =~ "subprocess.Popen is blocked in Erlang VM context."
      assert {:ok, true} = ErlangPython.eval("erlang.is_sandboxed()", %{}, context: ctx)
    end

    test "handles: objects with no Elixir form stay in Python", %{ctx: ctx} do
      assert {:ok, %Object{type: "collections.Counter"} = counter} =
               ErlangPython.call(:collections, :Counter, ["hello"], decode: false, context: ctx)

      assert {:ok, [{"l", 2}]} = ErlangPython.call_method(counter, :most_common, [1], context: ctx)

      # (A Decimal converts since issue 15; a Fraction still has no Elixir form.)
      assert {:ok, %Object{type: "fractions.Fraction"} = fraction} =
               ErlangPython.eval("__import__('fractions').Fraction(3, 2)", %{}, context: ctx)

      assert {:ok, {3, 2}} = ErlangPython.call_method(fraction, :as_integer_ratio, [], context: ctx)

      assert {:ok, "Fraction"} = ErlangPython.eval("type(d).__name__", %{d: fraction}, context: ctx)

      {:ok, path} =
        ErlangPython.call(:pathlib, :PurePosixPath, ["/srv/main.py"], decode: false, context: ctx)

      assert {:ok, ".py"} = ErlangPython.getattr(path, :suffix, context: ctx)
      assert {:ok, "/srv/main.py"} = ErlangPython.call(:builtins, :str, [path], context: ctx)
    end

    test "a handle Elixir drops is released in Python once garbage-collected", %{ctx: ctx} do
      :ok =
        ErlangPython.exec(
          """
          import weakref
          class Tracked: pass
          alive = weakref.WeakSet()
          def make():
              t = Tracked()
              alive.add(t)
              return t
          """,
          context: ctx
        )

      {:ok, kept} = ErlangPython.call(:__main__, :make, [], context: ctx)

      # Made and dropped in a process of its own: its heap goes when it exits.
      Task.async(fn ->
        made =
          for _ <- 1..200 do
            {:ok, %Object{} = object} = ErlangPython.call(:__main__, :make, [], context: ctx)
            object
          end

        {:ok, nested} = ErlangPython.eval("[make() for _ in range(50)]", %{}, context: ctx)
        assert {:ok, 251} = ErlangPython.eval("len(alive)", %{}, context: ctx)
        # Held until here.
        assert length(made) + length(nested) == 250
      end)
      |> Task.await(60_000)

      :erlang.garbage_collect()

      # Released asynchronously: ask until the count falls (embedded
      # contexts drop at their next request, isolated workers on a message).
      assert Enum.find_value(1..100, fn _ ->
               {:ok, n} = ErlangPython.eval("len(alive)", %{}, context: ctx)
               if n == 1, do: n, else: Process.sleep(50) && nil
             end) == 1

      # The one still held lives on.
      :erlang.garbage_collect()
      assert {:ok, true} = ErlangPython.eval("k in alive", %{k: kept}, context: ctx)
    end

    test "erlang.call and erlang.send from a thread Python started", %{ctx: ctx} do
      name = "behaviour_thread_#{System.unique_integer([:positive])}"

      # (Reentrant calls from a thread's callback while the request that
      # started it is blocked work in isolated contexts only: see
      # isolated_test.exs.)
      :ok = ErlangPython.register_function(name, fn [x] -> x * 2 end)

      on_exit(fn -> ErlangPython.unregister_function(name) end)

      :ok =
        ErlangPython.exec(
          """
          import threading
          def in_threads(name, me, n):
              results = [None] * n
              def work(i):
                  results[i] = erlang.call(name, i)
                  erlang.send(me, ('from thread', i))
              threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
              for t in threads: t.start()
              for t in threads: t.join()
              return results
          """,
          context: ctx
        )

      assert {:ok, [0, 2, 4, 6]} =
               ErlangPython.call(:__main__, :in_threads, [name, self(), 4], context: ctx)

      for i <- 0..3, do: assert_receive({"from thread", ^i})
    end

    test "callbacks into Elixir, reentrant into the same context", %{ctx: ctx} do
      name = "behaviour_#{System.unique_integer([:positive])}"

      :ok =
        ErlangPython.register_function(name, fn [x] ->
          ErlangPython.eval!("x + 1", %{x: x}, context: ctx)
        end)

      on_exit(fn -> ErlangPython.unregister_function(name) end)
      assert {:ok, 42} = ErlangPython.eval("erlang.call(n, 41)", %{n: name}, context: ctx)
      assert {:ok, true} = ErlangPython.eval("erlang.is_registered(n)", %{n: name}, context: ctx)

      failing = name <> "_raises"
      :ok = ErlangPython.register_function(failing, fn _ -> raise "boom" end)
      on_exit(fn -> ErlangPython.unregister_function(failing) end)

      assert {:error, %Error{type: "CallbackError", message: message}} =
               ErlangPython.eval("erlang.call(n)", %{n: failing}, context: ctx)

      assert message =~ "boom"
    end

    # The request that started the threads waits in join() while their
    # callbacks call back into this same context: those nested requests
    # must be served meanwhile (before, an embedded context timed out).
    test "callbacks from Python threads reenter the context while the request joins them", %{
      ctx: ctx
    } do
      name = "behaviour_threads_#{System.unique_integer([:positive])}"

      :ok =
        ErlangPython.register_function(name, fn [x] ->
          ErlangPython.eval!("x * 2", %{x: x}, context: ctx)
        end)

      on_exit(fn -> ErlangPython.unregister_function(name) end)

      code = """
      import threading
      def joined(name, n, rounds):
          results = [[] for _ in range(n)]
          def work(i):
              for r in range(rounds):
                  results[i].append(erlang.call(name, i * 100 + r))
          threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
          for t in threads: t.start()
          for t in threads: t.join()
          return results
      """

      :ok = ErlangPython.exec(code, context: ctx)
      expected = for i <- 0..3, do: for(r <- 0..9, do: (i * 100 + r) * 2)
      opts = [context: ctx, timeout: 50_000]
      assert {:ok, ^expected} = ErlangPython.call(:__main__, :joined, [name, 4, 10], opts)

      # A thread left running after its request answered still calls in.
      code = "threading.Thread(target=lambda: erlang.send(me, erlang.call(n, 21))).start()"
      assert {:ok, nil} = ErlangPython.eval(code, %{me: self(), n: name}, context: ctx)
      assert_receive 42, 10_000
    end

    test "erlang.send and erlang.self reach the caller", %{ctx: ctx} do
      assert {:ok, nil} =
               ErlangPython.eval("erlang.send(erlang.self(), ('hi', 1))", %{}, context: ctx)

      assert_receive {"hi", 1}
    end

    test "print goes to the caller's group leader", %{ctx: ctx} do
      assert capture_io(fn ->
               {:ok, nil} = ErlangPython.eval("print('from python')", %{}, context: ctx)
             end) ==
               "from python\n"
    end

    test "streams pull a generator in chunks", %{ctx: ctx} do
      assert [0, 1, 4, 9] =
               ErlangPython.stream_eval("(x * x for x in range(n))", %{n: 4},
                 context: ctx,
                 chunk_size: 3
               )
               |> Enum.to_list()
    end

    test "interrupt/1 interrupts the running call", %{ctx: ctx} do
      assert :not_running = ContextServer.interrupt(ctx)

      task =
        Task.async(fn -> ErlangPython.exec("while True: pass", context: ctx, timeout: 30_000) end)

      # :not_running until the call has reached Python.
      assert Enum.find(1..200, fn _ ->
               Process.sleep(25)
               ContextServer.interrupt(ctx) == :ok
             end)

      assert {:error, %Error{type: "Interrupted"}} = Task.await(task)
    end

    test "a timed-out call is interrupted and the context answers again", %{ctx: ctx} do
      assert {:error, :timeout} = ErlangPython.exec("while True: pass", context: ctx, timeout: 200)
      assert {:ok, 2} = ErlangPython.eval("1 + 1", %{}, context: ctx, timeout: 5_000)
    end
  end
end
