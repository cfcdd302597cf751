defmodule ErlangPython.PoolTest do
  # Starts and stops named pools and changes the routing table: not async.
  use ExUnit.Case, async: false

  import ErlangPython.TestHelpers

  alias ErlangPython.{ContextServer, Pool}

  doctest ErlangPython.Pool

  setup do
    on_exit(fn ->
      Pool.stop(:test_pool)
      Pool.unbind()
    end)
  end

  test "the default pool runs from the start, sized to the schedulers" do
    assert Pool.started?(:default)
    assert Pool.size(:default) == Pool.default_size()
    assert length(Pool.contexts(:default)) == Pool.size(:default)
  end

  test "a pool's contexts are distinct, alive, and isolated from each other" do
    {:ok, [a, b, c]} = Pool.start(:test_pool, 3)
    assert Enum.all?([a, b, c], &ContextServer.alive?/1)
    assert {:ok, ^b} = Pool.context_at(:test_pool, 2)
    :ok = ErlangPython.exec("slot = 'a'", context: a)
    assert {:error, _} = ErlangPython.eval("slot", %{}, context: b)
  end

  test "starting a running pool returns its contexts" do
    {:ok, contexts} = Pool.start(:test_pool, 2)
    assert {:ok, ^contexts} = Pool.start(:test_pool, 5)
  end

  test "a process gets the same context every time, unless it binds another" do
    {:ok, [first, second]} = Pool.start(:test_pool, 2)
    {:ok, mine} = Pool.context(:test_pool)
    assert {:ok, ^mine} = Pool.context(:test_pool)
    assert mine in [first, second]

    {:ok, default} = Pool.context()
    other = Enum.find(Pool.contexts(:default), default, &(&1 != default))
    :ok = Pool.bind(other)
    assert {:ok, ^other} = Pool.context()
    :ok = Pool.unbind()
    assert {:ok, ^default} = Pool.context()
  end

  test "a crashed context is replaced, with a clean namespace" do
    {:ok, [ctx]} = Pool.start(:test_pool, 1)
    :ok = ErlangPython.exec("leftover = 1", context: ctx)
    Process.exit(ctx, :kill)

    assert eventually(fn ->
             match?({:ok, pid} when pid != ctx, Pool.context_at(:test_pool, 1))
           end)

    {:ok, fresh} = Pool.context_at(:test_pool, 1)

    assert {:error, %ErlangPython.Error{type: "NameError"}} =
             ErlangPython.eval("leftover", %{}, context: fresh)
  end

  test "stop/1 stops every context; a stopped pool is an error to ask for" do
    {:ok, contexts} = Pool.start(:test_pool, 2)
    assert :ok = Pool.stop(:test_pool)
    refute Enum.any?(contexts, &Process.alive?/1)
    refute Pool.started?(:test_pool)
    assert Pool.size(:test_pool) == 0
    assert {:error, {:pool_not_started, :test_pool}} = Pool.context(:test_pool)
    assert :ok = Pool.stop(:test_pool)
  end

  test "routes: a function's registration beats its module's" do
    :ok = Pool.register(:test_pool, :json)
    :ok = Pool.register(:default, {:json, :dumps})
    assert Pool.lookup(:json, :loads) == :test_pool
    assert Pool.lookup("json", "dumps") == :default
    assert Pool.lookup(:math, :sqrt) == :default
    assert {{"json", :_}, :test_pool} in Pool.registrations()
    :ok = Pool.unregister(:json)
    :ok = Pool.unregister({:json, :dumps})
    assert Pool.lookup(:json, :loads) == :default
  end

  test "bad arguments are errors" do
    assert {:error, {:badarg, _}} = Pool.start(:test_pool, 0)
    assert {:error, {:badarg, _}} = Pool.register(:io, 42)
  end
end
