defmodule PyApiTest do
  # The :py facade's erlang_python API beyond call/eval/exec. Shares the
  # default pool, the semaphore and the tracer with other tests: not async.
  use ExUnit.Case, async: false

  import ErlangPython.TestHelpers

  @busy "sum(1 for _ in iter(int, 1))"

  describe "process-bound environments" do
    test "names one process defines are invisible to another" do
      :ok = :py.exec("x = 'parent'")

      assert {:error, {:NameError, _}} = Task.async(fn -> :py.eval("x") end) |> Task.await()
      assert {:ok, "parent"} = :py.eval("x")

      assert {:ok, "child"} =
               Task.async(fn ->
                 :ok = :py.exec("x = 'child'")
                 :py.eval("x")
               end)
               |> Task.await()

      assert {:ok, "parent"} = :py.eval("x")
    end

    test "functions the process defined are found through __main__" do
      :ok = :py.exec("def add(a, b): return a + b")
      assert {:ok, 7} = :py.call(:__main__, :add, [3, 4])
      assert {:ok, 7} = :py.eval("add(3, 4)")
    end

    test "the erlang module needs no import" do
      :ok = :py.register_function(:py_api_twice, fn [x] -> 2 * x end)
      assert {:ok, 10} = :py.eval("erlang.call('py_api_twice', 5)")
      assert {:ok, 12} = :py.eval("erlang.py_api_twice(6)")
      :py.unregister_function(:py_api_twice)
    end

    test "the environment in a context is the process's own" do
      ctx = :py.context(1)
      :ok = :py.exec(ctx, "owner = 'me'")
      assert {:ok, "me"} = :py.eval(ctx, "owner")

      assert {:error, {:NameError, _}} =
               Task.async(fn -> :py.eval(ctx, "owner") end) |> Task.await()

      assert %ErlangPython.Context{} = :py.get_local_env(ctx)
    end
  end

  describe "shapes" do
    test "None is none, nested too; none goes to Python as None" do
      assert {:ok, :none} = :py.eval("None")

      assert {:ok, [1, :none, %{"k" => :none}, {:none}]} =
               :py.eval("[1, None, {'k': None}, (None,)]")

      assert {:ok, true} = :py.eval("v is None", %{v: :none})
    end

    test "None is none wherever it is in a large result, and results without None are as they come" do
      # A None only at the end of 2,000 items, as a dict key, in a set, in
      # a tuple inside a map inside a list.
      assert {:ok, list} = :py.eval("list(range(1999)) + [None]")
      assert List.last(list) == :none and length(list) == 2_000
      assert {:ok, %{:none => 1, "k" => [:none]}} = :py.eval("{None: 1, 'k': [None]}")
      assert {:ok, set} = :py.eval("{1, None}")
      assert set == MapSet.new([1, :none])
      assert {:ok, [%{"t" => {1, :none}}]} = :py.eval("[{'t': (1, None)}]")

      expected = Enum.to_list(0..1_999)
      assert {:ok, ^expected} = :py.eval("list(range(2000))")
      rows = for i <- 1..300, do: %{"id" => i, "name" => "n#{i}"}
      assert {:ok, ^rows} = :py.eval("[{'id': i, 'name': f'n{i}'} for i in range(1, 301)]")
    end

    test "eval/3 takes a timeout" do
      assert {:error, :timeout} = :py.eval("__import__('time').sleep(1)", %{}, 100)
      assert {:ok, 45} = :py.eval("sum(range(10))", %{}, 5_000)
    end

    test "a context or a pool first" do
      ctx = :py.context()
      assert is_pid(ctx)
      assert {:ok, 4.0} = :py.call(ctx, :math, :sqrt, [16])
      assert {:ok, "[1]"} = :py.call(ctx, :json, :dumps, [[1]], %{kwargs: %{indent: nil}})
      assert {:ok, 6} = :py.eval(ctx, "2 + 4")
      assert {:ok, 15} = :py.eval(ctx, "x * 3", %{x: 5})
      assert {:ok, 4.0} = :py.call(:default, :math, :sqrt, [16])
      assert {:ok, "[\n 1\n]"} = :py.call(:default, :json, :dumps, [[1]], %{indent: 1})
    end
  end

  describe "asynchronous calls" do
    test "cast runs the call and returns ok at once" do
      me = self()
      assert :ok = :py.cast(:erlang, :send, [me, {"cast", 1}])
      assert :ok = :py.cast(:erlang, :send, [me, {"cast", 2}], %{})
      assert_receive {"cast", 1}, 5_000
      assert_receive {"cast", 2}, 5_000
    end

    test "spawn_call and await, in the caller's environment" do
      :ok = :py.exec("def triple(x): return 3 * x")
      ref = :py.spawn_call(:__main__, :triple, [5])
      assert is_reference(ref)
      assert {:ok, 15} = :py.await(ref)
      assert {:error, :timeout} = :py.await(make_ref(), 10)
    end

    test "async_call returns a reference; async_await its result" do
      ref = :py.async_call(:math, :sqrt, [16])
      assert is_reference(ref)
      assert {:ok, 4.0} = :py.async_await(ref, 5_000)
      assert {:error, :badarg} = :py.async_await(ref, 5_000)
    end

    test "async_gather and parallel keep the order; failures are named" do
      calls = [{:math, :sqrt, [16]}, {:math, :sqrt, [25]}]
      assert {:ok, [4.0, 5.0]} = :py.async_gather(calls)
      assert {:ok, [4.0, 5.0]} = :py.async_gather(calls, 5_000)
      assert {:ok, [4.0, 5.0]} = :py.parallel(calls)

      assert {:error, {:gather_failed, [{2, %ErlangPython.Error{type: "ValueError"}}]}} =
               :py.async_gather([{:math, :sqrt, [1]}, {:math, :sqrt, [-1]}])
    end
  end

  describe "streams" do
    test "stream/4 with kwargs, stream_eval/2 with locals" do
      assert {:ok, [{1, "a"}, {2, "b"}]} =
               :py.stream(:builtins, :enumerate, [["a", "b"]], %{start: 1})

      assert {:ok, [0, 2, 4]} = :py.stream_eval("(x * k for x in range(3))", %{k: 2})
    end

    test "names that are not identifiers are refused" do
      assert {:invalid_python_identifier, _} =
               catch_error(:py.stream("os'); evil('", :walk, [], %{k: 1}))

      assert {:invalid_python_identifier, _} = catch_error(:py.stream(:math, "sqrt(", [], %{}))

      assert {:invalid_python_identifier, _} =
               catch_error(:py.stream(:math, :sqrt, [], %{"a b" => 1}))
    end

    test "stream_start sends the items, stream_cancel stops it" do
      {:ok, ref} = :py.stream_start(:builtins, :range, [3])
      for i <- 0..2, do: assert_receive({:py_stream, ^ref, {:data, ^i}}, 5_000)
      assert_receive {:py_stream, ^ref, :done}, 5_000

      {:ok, ref} = :py.stream_start(:builtins, :range, [10_000_000])
      assert_receive {:py_stream, ^ref, {:data, 0}}, 5_000
      :ok = :py.stream_cancel(ref)
      assert_receive {:py_stream, ^ref, {:error, "cancelled"}}, 5_000
    end
  end

  describe "the interpreter" do
    test "version, execution mode, sub-interpreters" do
      assert {:ok, "3." <> _} = :py.version()
      assert :py.execution_mode() == :worker
      {:ok, version} = ErlangPython.eval("__import__('sys').version_info[:2]")
      assert :py.subinterp_supported() == version >= {3, 12}
      assert :py_nif.subinterp_supported() == version >= {3, 12}
      # The original's OWN_GIL mode needs 3.14; ours works from 3.12.
      assert :py_nif.owngil_supported() == version >= {3, 14}
    end

    test "memory_stats, gc, tracemalloc" do
      {:ok, stats} = :py.memory_stats()
      assert %{gc_stats: [_, _, _], gc_count: {_, _, _}, gc_threshold: {_, _, _}} = stats
      refute Map.has_key?(stats, :traced_memory_current)
      assert {:ok, collected} = :py.gc()
      assert collected >= 0
      assert {:ok, _} = :py.gc(0)
      assert :ok = :py.tracemalloc_start()
      {:ok, _} = :py.eval("[x ** 2 for x in range(1000)]")
      {:ok, traced} = :py.memory_stats()
      assert traced.traced_memory_peak > 0
      assert :ok = :py.tracemalloc_stop()
      assert :ok = :py.tracemalloc_start(5)
      assert :ok = :py.tracemalloc_stop()
    end

    test "reload/1 re-executes a module; a module never imported is fine" do
      dir = Path.join(System.tmp_dir!(), unique("py_api_reload"))
      File.mkdir_p!(dir)
      on_exit(fn -> File.rm_rf!(dir) end)
      File.write!(Path.join(dir, "py_api_reloaded.py"), "VALUE = 1\n")
      :ok = ErlangPython.Imports.add_path(dir)
      assert {:ok, 1} = :py.eval("__import__('py_api_reloaded').VALUE")
      File.write!(Path.join(dir, "py_api_reloaded.py"), "VALUE = 2 \n")
      assert :ok = :py.reload(:py_api_reloaded)
      assert {:ok, 2} = :py.eval("__import__('py_api_reloaded').VALUE")
      assert :ok = :py.reload("py_api_never_imported")
    end

    test "dup_fd returns a new descriptor" do
      {:ok, fd} = :py.eval("__import__('os').open('/dev/null', __import__('os').O_RDONLY)")
      assert {:ok, copy} = :py.dup_fd(fd)
      assert copy != fd
      {:ok, :none} = :py.call(:os, :close, [copy])
      {:ok, :none} = :py.call(:os, :close, [fd])
    end

    test "object references" do
      {:ok, path} = ErlangPython.call(:pathlib, :PurePosixPath, ["/a/b.py"], decode: false)
      assert :py.is_ref(path)
      refute :py.is_ref(42)
      assert {:ok, ".py"} = :py.getattr(path, :suffix)
      assert {:ok, ref} = :py.call_method(path, :with_suffix, [".txt"])
      assert {:ok, "/a/b.txt"} = :py.to_term(ref)
    end
  end

  describe "contexts and pools" do
    test "start_contexts, context/0,1, stop_contexts" do
      on_exit(fn -> :py.start_contexts() end)
      :ok = :py.stop_contexts()
      refute :py.contexts_started()
      {:ok, contexts} = :py.start_contexts(%{contexts: 3})
      assert :py.contexts_started()
      assert length(contexts) == 3
      assert :py.context() in contexts
      assert :py.context() == :py.context()
      assert Enum.map(1..3, &:py.context/1) == contexts
      assert {:ok, ^contexts} = :py.start_contexts()
      :ok = :py.stop_contexts()
      assert eventually(fn -> not Enum.any?(contexts, &Process.alive?/1) end)
    end

    test "interrupt/1: ok while running, not_running when idle" do
      {:ok, ctx} = :py_context.new(%{mode: :worker})
      assert :not_running = :py.interrupt(ctx)
      me = self()
      spawn(fn -> send(me, {:result, :py_context.eval(ctx, @busy, %{}, :infinity)}) end)
      assert eventually(fn -> :py.interrupt(ctx) == :ok end)
      assert_receive {:result, {:error, :interrupted}}, 5_000
    end

    test "register_pool routes implicit calls" do
      {:ok, _} = :py_context_router.start_pool(:py_api_pool, 1, :worker)
      on_exit(fn -> :py_context_router.stop_pool(:py_api_pool) end)
      :ok = :py.register_pool(:py_api_pool, {:json, :loads})
      assert :py_context_router.lookup_pool(:json, :loads) == :py_api_pool
      assert {:ok, %{"a" => 1}} = :py.call(:json, :loads, ["{\"a\": 1}"])
      :ok = :py.unregister_pool({:json, :loads})
      assert :py_context_router.lookup_pool(:json, :loads) == :default
    end
  end

  describe "the semaphore" do
    test "bounds concurrent calls; an exhausted one overloads py:call" do
      max = :py_semaphore.max_concurrent()
      on_exit(fn -> :py_semaphore.set_max_concurrent(max) end)
      :ok = :py_semaphore.set_max_concurrent(1)
      :ok = :py_semaphore.acquire(1_000)
      assert {:error, :max_concurrent} = :py_semaphore.acquire(50)
      assert {:error, {:overloaded, 1, 1}} = :py.call(:math, :sqrt, [4], %{}, 50)
      :ok = :py_semaphore.release()
      assert :py_semaphore.current() == 0
      assert {:ok, 2.0} = :py.call(:math, :sqrt, [4])
    end
  end

  describe "state" do
    setup do
      :py.state_clear()
      on_exit(fn -> :py.state_clear() end)
    end

    test "store, fetch, remove, keys, counters, shared with Python" do
      assert :ok = :py.state_store("k", %{v: 1})
      assert {:ok, %{v: 1}} = :py.state_fetch("k")
      :ok = :py.exec("erlang.state_set('from_py', [1, 2])")
      assert {:ok, [1, 2]} = :py.state_fetch("from_py")
      assert Enum.sort(:py.state_keys()) == ["from_py", "k"]
      assert :ok = :py.state_remove("k")
      assert {:error, :not_found} = :py.state_fetch("k")
      assert 1 = :py.state_incr("n")
      assert 11 = :py.state_incr("n", 10)
      assert 10 = :py.state_decr("n")
      assert 5 = :py.state_decr("n", 5)
      assert :ok = :py.state_clear()
      assert [] = :py.state_keys()
    end

    test "py_state: the entry cap refuses new keys, not overwrites" do
      Application.put_env(:erlang_python, :max_state_entries, 2)
      on_exit(fn -> Application.delete_env(:erlang_python, :max_state_entries) end)
      :ok = :py_state.store(:a, 1)
      :ok = :py_state.store(:b, 2)
      assert {:error, :full} = :py_state.store(:c, 3)
      assert :ok = :py_state.store(:a, 10)
      :ok = :py_state.remove(:missing)
      assert {:error, :full} = :py_state.store(:c, 3)
      :ok = :py_state.remove(:a)
      assert :ok = :py_state.store(:c, 3)
      assert {:error, :reserved_key} = :py_state.store(:"$py_state_size$", 1)
      refute :"$py_state_size$" in :py_state.keys()
      assert {:error, :not_found} = :py_state.fetch(:"$py_state_size$")
    end
  end

  describe "SharedDict" do
    test "set, get with defaults, keys, del, Python access, destroy" do
      {:ok, sd} = :py.shared_dict_new()
      assert [] = :py.shared_dict_keys(sd)
      :ok = :py.shared_dict_set(sd, "config", %{port: 8080})
      assert %{"port" => 8080} = :py.shared_dict_get(sd, "config")
      assert :undefined = :py.shared_dict_get(sd, "missing")
      assert :dflt = :py.shared_dict_get(sd, "missing", :dflt)

      {:ok, :none} = :py.eval("globals().__setitem__('_sd', h)", %{h: sd})
      :ok = :py.exec("sd = erlang.SharedDict(_sd)\nsd['seen'] = sd['config']['port'] + 1")
      assert 8081 = :py.shared_dict_get(sd, "seen")
      assert {:ok, true} = :py.eval("'seen' in sd")
      :ok = :py.shared_dict_del(sd, "seen")
      assert [_] = :py.shared_dict_keys(sd)

      :ok = :py.shared_dict_destroy(sd)
      :ok = :py.shared_dict_destroy(sd)
      assert :badarg = catch_error(:py.shared_dict_get(sd, "config"))
      assert :badarg = catch_error(:py.shared_dict_set(sd, "x", 1))
      assert :badarg = catch_error(:py.shared_dict_keys(sd))
    end
  end

  describe "logging and tracing" do
    test "configure_logging sends records at the level to Logger" do
      import ExUnit.CaptureLog
      :ok = :py.configure_logging(%{level: :warning, format: "%(levelname)s|%(message)s"})

      log =
        capture_log(fn ->
          :ok = :py.exec("import logging\nlogging.info('quiet')\nlogging.warning('loud')")
        end)

      assert log =~ "WARNING|loud"
      refute log =~ "quiet"
      :ok = :py.configure_logging(%{level: :warning})
    end

    test "spans: nesting, events, errors, the decorator" do
      :ok = :py.clear_traces()
      :ok = :py.enable_tracing()
      on_exit(fn -> :py.disable_tracing() end)

      :ok =
        :py.exec("""
        with erlang.Span('parent', k='v'):
            with erlang.Span('child') as s:
                s.event('one', n=1)
                s.event('two')
        try:
            with erlang.Span('failing'):
                raise ValueError('boom')
        except ValueError:
            pass
        @erlang.trace()
        def traced():
            return 1
        traced()
        """)

      {:ok, [child, parent, failing, traced]} = :py.get_traces()
      assert %{name: "child", status: :ok} = child
      assert child.parent_id == parent.span_id
      assert parent.parent_id == :undefined
      assert parent.attributes == %{"k" => "v"}
      assert [%{name: "two"}, %{name: "one", attrs: %{"n" => 1}}] = child.events
      assert %{status: :error, end_attrs: %{"exception" => "boom"}} = failing
      assert traced.name =~ "traced"
      assert traced.duration_us >= 0

      :ok = :py.disable_tracing()
      :ok = :py.exec("with erlang.Span('unrecorded'):\n    pass")
      assert {:ok, [_, _, _, _]} = :py.get_traces()
      :ok = :py.clear_traces()
      assert {:ok, []} = :py.get_traces()
    end
  end

  test "py_nif:get_debug_counters counts the requests run to the end" do
    %{complete_count: before, queued: queued} = :py_nif.get_debug_counters()
    assert is_integer(queued) and queued >= 0
    for _ <- 1..25, do: {:ok, 2} = :py.eval("1 + 1")
    %{complete_count: now} = :py_nif.get_debug_counters()
    assert now - before >= 25
  end
end
