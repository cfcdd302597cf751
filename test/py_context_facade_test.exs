defmodule PyContextFacadeTest do
  # Starts and stops the default pool: not async.
  use ExUnit.Case, async: false

  import ErlangPython.TestHelpers

  setup do
    on_exit(fn -> :py_context_router.start() end)
  end

  test "py_context: new, call/4,5,6, eval/2,3,4, exec, stop" do
    {:ok, ctx} = :py_context.new(%{mode: :worker})
    assert {:ok, 4.0} = :py_context.call(ctx, :math, :sqrt, [16])
    assert {:ok, "[1]"} = :py_context.call(ctx, :json, :dumps, [[1]], %{})
    assert {:error, :timeout} = :py_context.call(ctx, :time, :sleep, [1], %{}, 50)
    :ok = :py_context.exec(ctx, "x = 21")
    assert {:ok, 21} = :py_context.eval(ctx, "x")
    assert {:ok, 42} = :py_context.eval(ctx, ~c"x * n", %{n: 2})
    assert {:ok, :none} = :py_context.eval(ctx, "None", %{}, 1_000)
    assert {:error, {:NameError, _}} = :py_context.eval(ctx, "undefined_name")

    if ErlangPython.OwnGil.supported?() do
      assert {:ok, own} = :py_context.new(%{mode: :owngil})
      assert {:ok, 2} = :py_context.eval(own, "1 + 1")
      assert :py_context.is_subinterp(own)
      assert {:ok, id} = :py_context.get_interp_id(own)
      assert id > 0
      # A process's own environment in it is made in its interpreter too.
      assert {:ok, env} = :py_context.create_local_env(own)
      assert :ok = ErlangPython.exec("mine = 1", context: env)
      assert {:ok, 1} = ErlangPython.eval("mine", %{}, context: env)
      :ok = :py_context.destroy(own)
    else
      assert {:error, {:unsupported_mode, :owngil}} = :py_context.new(%{mode: :owngil})
    end

    # An id of its own, as the original's contexts have.
    assert {:ok, id} = :py_context.get_interp_id(ctx)
    {:ok, other} = :py_context.new(%{mode: :worker})
    assert {:ok, other_id} = :py_context.get_interp_id(other)
    assert is_integer(id) and id > 0 and other_id != id
    :ok = :py_context.stop(other)
    refute :py_context.is_subinterp(ctx)
    assert {:ok, %ErlangPython.Context{}} = :py_context.create_local_env(ctx)
    assert :ok = :py_context.destroy(ctx)
    assert :ok = :py_context.stop(ctx)
  end

  test "py_context: its own namespace, not the process's environment in it" do
    {:ok, ctx} = :py_context.start_link(1, :worker)
    :ok = :py_context.exec(ctx, "where = 'context'")
    :ok = :py.exec(ctx, "where = 'process'")
    assert {:ok, "context"} = :py_context.eval(ctx, "where")
    assert {:ok, "process"} = :py.eval(ctx, "where")
  end

  test "py_context: call_method and to_term on references" do
    {:ok, ctx} = :py_context.new(%{})
    {:ok, counter} = ErlangPython.call(:collections, :Counter, ["aab"], decode: false)
    assert {:ok, [{"a", 2}]} = :py_context.call_method(ctx, counter, :most_common, [1])
    assert {:ok, %{"a" => 2, "b" => 1}} = :py_context.to_term(counter)
  end

  test "py_context_router: start, contexts, get_context, bind, stop" do
    :ok = :py_context_router.stop()
    assert :py_context_router.num_contexts() == 0
    refute :py_context_router.is_started()
    {:ok, contexts} = :py_context_router.start(%{contexts: 4})
    assert :py_context_router.contexts() == contexts
    assert :py_context_router.num_contexts() == 4
    assert :py_context_router.get_context() == :py_context_router.get_context()
    assert :py_context_router.get_context(3) == Enum.at(contexts, 2)
    :ok = :py_context_router.bind_context(Enum.at(contexts, 1))
    assert :py_context_router.get_context() == Enum.at(contexts, 1)
    :ok = :py_context_router.unbind_context()
    :ok = :py_context_router.unbind_context()
    :ok = :py_context_router.stop()
    assert eventually(fn -> not Enum.any?(contexts, &Process.alive?/1) end)
  end

  test "py_context_router: pools and routes" do
    {:ok, io} = :py_context_router.start_pool(:facade_io, 3, :worker)
    on_exit(fn -> :py_context_router.stop_pool(:facade_io) end)
    assert :py_context_router.pool_started(:facade_io)
    assert :py_context_router.num_contexts(:facade_io) == 3
    assert :py_context_router.contexts(:facade_io) == io
    assert :py_context_router.get_context(:facade_io) in io
    assert {:ok, 9.0} = :py.call(:facade_io, :math, :sqrt, [81])

    :ok = :py_context_router.register_pool(:facade_io, :os, :getcwd)
    assert :py_context_router.lookup_pool(:os, :getcwd) == :facade_io
    assert {{"os", "getcwd"}, :facade_io} in :py_context_router.list_pool_registrations()
    :ok = :py_context_router.unregister_pool(:os, :getcwd)
    assert :py_context_router.lookup_pool(:os, :getcwd) == :default

    assert {:pool_not_started, :nope} = catch_error(:py_context_router.get_context(:nope))
    assert {:error, {:pool_not_started, :nope}} = :py.call(:nope, :math, :sqrt, [1])
  end

  test "py_context_sup: contexts started, listed and stopped under a supervisor" do
    {:ok, sup} = :py_context_sup.start_link()
    assert {:ok, ctx1} = :py_context_sup.start_context(1, :worker)
    assert {:ok, ctx2} = :py_context_sup.start_context(2, :worker)
    assert {:ok, 4.0} = :py_context.call(ctx1, :math, :sqrt, [16], %{})
    assert Enum.sort([ctx1, ctx2]) == Enum.sort(:py_context_sup.which_contexts())

    assert :ok = :py_context_sup.stop_context(ctx1)
    refute Process.alive?(ctx1)
    assert {:ok, 9.0} = :py_context.call(ctx2, :math, :sqrt, [81], %{})
    assert :ok = :py_context_sup.stop_context(ctx1)

    # A context that dies is not restarted.
    Process.exit(ctx2, :kill)
    Process.sleep(50)
    assert [] = :py_context_sup.which_contexts()
    Supervisor.stop(sup)
  end
end
