defmodule ErlangPython.ContextServerTest do
  use ExUnit.Case, async: true

  import ErlangPython.TestHelpers

  alias ErlangPython.{Context, ContextServer, Error}

  doctest ErlangPython.ContextServer

  @busy "sum(1 for _ in iter(int, 1))"

  describe "a context process" do
    test "keeps its own namespace, invisible to __main__ and other contexts" do
      {:ok, a} = ContextServer.start_link()
      {:ok, b} = ContextServer.start_link()
      :ok = ErlangPython.exec("def who():\n    return 'a'", context: a)
      assert {:ok, "a"} = ErlangPython.call(:__main__, :who, [], context: a)

      assert {:error, %Error{type: "AttributeError"}} =
               ErlangPython.call(:__main__, :who, [], context: b)

      assert {:error, %Error{type: "NameError"}} = ErlangPython.eval("who", %{}, context: b)
    end

    test "binds erlang without an import" do
      {:ok, ctx} = ContextServer.start_link()
      assert {:ok, true} = ErlangPython.eval("erlang.is_sandboxed()", %{}, context: ctx)
    end

    test "eval with locals writes through globals() into the namespace" do
      {:ok, ctx} = ContextServer.start_link()

      assert {:ok, nil} =
               ErlangPython.eval("globals().__setitem__('kept', v)", %{v: 7}, context: ctx)

      assert {:ok, 7} = ErlangPython.eval("kept", %{}, context: ctx)
    end

    test "dies with the process that started it" do
      parent = self()

      owner =
        spawn(fn ->
          {:ok, ctx} = ContextServer.start_link()
          send(parent, {:ctx, ctx})
          Process.sleep(:infinity)
        end)

      ctx = receive(do: ({:ctx, ctx} -> ctx))
      assert ContextServer.alive?(ctx)
      Process.exit(owner, :kill)
      assert eventually(fn -> not Process.alive?(ctx) end)
      assert {:error, {:context_down, ^ctx}} = ErlangPython.eval("1", %{}, context: ctx)
    end

    test "stop/1 is idempotent" do
      {:ok, ctx} = ContextServer.start_link()
      assert :ok = ContextServer.stop(ctx)
      assert :ok = ContextServer.stop(ctx)
      refute ContextServer.alive?(ctx)
    end

    test "modes: worker, and owngil where the Python has own-GIL interpreters" do
      assert {:error, {:unsupported_mode, :other}} = ContextServer.start(mode: :other)

      if ErlangPython.OwnGil.supported?() do
        assert {:ok, ctx} = ContextServer.start(mode: :owngil)
        ContextServer.stop(ctx)
      else
        assert {:error, {:unsupported_mode, :owngil}} = ContextServer.start(mode: :owngil)
      end
    end
  end

  describe "interrupting a context" do
    test "an idle context is :not_running, and stays usable" do
      {:ok, ctx} = ContextServer.start_link()
      assert :not_running = ContextServer.interrupt(ctx)
      assert {:ok, 4} = ErlangPython.eval("2 + 2", %{}, context: ctx)
    end

    test "a running call is interrupted and its caller gets Interrupted" do
      {:ok, ctx} = ContextServer.start_link()
      task = Task.async(fn -> ErlangPython.eval(@busy, %{}, context: ctx, timeout: :infinity) end)
      assert eventually(fn -> ContextServer.interrupt(ctx) == :ok end)
      assert {:error, %Error{type: "Interrupted"}} = Task.await(task)
      assert {:ok, 2} = ErlangPython.eval("1 + 1", %{}, context: ctx)
    end

    test "a process environment inside the context is interrupted with it" do
      {:ok, ctx} = ContextServer.start_link()

      test_pid = self()

      task =
        Task.async(fn ->
          {:ok, env} = Context.process(ctx)
          send(test_pid, :env_made)
          ErlangPython.eval(@busy, %{}, context: env, timeout: :infinity)
        end)

      # Making the environment is itself a request in the context's scope:
      # an interrupt that found it running would answer :ok and then find
      # nothing to interrupt. Only the busy loop may be running once it is made.
      assert_receive :env_made, 5_000
      assert eventually(fn -> ContextServer.interrupt(ctx) == :ok end)
      assert {:error, %Error{type: "Interrupted"}} = Task.await(task)
    end

    test "a timed-out call frees the context at once" do
      {:ok, ctx} = ContextServer.start_link()
      assert {:error, :timeout} = ErlangPython.eval(@busy, %{}, context: ctx, timeout: 100)
      assert {:ok, 4} = ErlangPython.eval("2 + 2", %{}, context: ctx, timeout: 5_000)
    end

    test "another context's interrupt does not touch this one" do
      {:ok, busy} = ContextServer.start_link()
      {:ok, other} = ContextServer.start_link()
      task = Task.async(fn -> ErlangPython.eval(@busy, %{}, context: busy, timeout: :infinity) end)
      assert eventually(fn -> ContextServer.interrupt(busy) == :ok end)
      assert {:error, %Error{type: "Interrupted"}} = Task.await(task)
      assert :not_running = ContextServer.interrupt(other)
    end
  end

  describe "process environments" do
    test "each process has its own, freed when it exits" do
      {:ok, mine} = Context.process()
      :ok = ErlangPython.exec("shared_name = 'mine'", context: mine)

      theirs =
        Task.async(fn ->
          {:ok, env} = Context.process()
          :ok = ErlangPython.exec("shared_name = 'theirs'", context: env)
          ErlangPython.eval("shared_name", %{}, context: env)
        end)
        |> Task.await()

      assert theirs == {:ok, "theirs"}
      assert {:ok, "mine"} = ErlangPython.eval("shared_name", %{}, context: mine)
      assert {:ok, ^mine} = Context.process()
    end

    test "an environment in a context starts as a copy of the context's namespace" do
      {:ok, ctx} = ContextServer.start_link()
      :ok = ErlangPython.exec("base = 1", context: ctx)
      {:ok, env} = Context.process(ctx)
      assert {:ok, 1} = ErlangPython.eval("base", %{}, context: env)
      :ok = ErlangPython.exec("base = 2\nmine = True", context: env)
      assert {:ok, 1} = ErlangPython.eval("base", %{}, context: ctx)
      assert {:error, %Error{type: "NameError"}} = ErlangPython.eval("mine", %{}, context: ctx)
      assert {:ok, ^env} = Context.process(ctx)
    end

    test "of a context that stopped, an error" do
      {:ok, ctx} = ContextServer.start_link()
      ContextServer.stop(ctx)
      assert {:error, {:context_down, ^ctx}} = Context.process(ctx)
    end
  end
end
