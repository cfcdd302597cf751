defmodule ErlangPython.OwnGilPriorityTest do
  # `:thread_priority` (a context and pool option; `config :erlang_python,
  # own_gil_thread_priority:` and the older `own_gil_nice:` set the
  # default): how an own-GIL context's thread, and the threads Python starts
  # from it, are scheduled against the VM's. Each thread's policy and
  # niceness are read by Python from its own /proc/thread-self/stat, so no
  # thread names are involved (the VM names its schedulers differently from
  # one OTP release to the next). Own-GIL contexts need Python 3.12+:
  # test_helper.exs excludes the :own_gil tag, saying why, on older ones;
  # the option's validation runs on every Python.
  use ExUnit.Case, async: false

  alias ErlangPython.ContextServer
  alias ErlangPython.ThreadScheduling
  import ErlangPython.ThreadScheduling, only: [vm_niceness: 0]

  # Linux's scheduling policies, as stat's field 41 gives them.
  @sched_other 0
  @sched_idle 5

  setup do
    on_exit(fn ->
      Application.delete_env(:erlang_python, :own_gil_nice)
      Application.delete_env(:erlang_python, :own_gil_thread_priority)
    end)
  end

  defp scheduling_of(ctx) do
    :ok = ErlangPython.exec(ThreadScheduling.python(), context: ctx)
    {:ok, [_tid, own, started_by_python]} = ErlangPython.eval("scheduling()", %{}, context: ctx)
    # The thread Python started is scheduled as the context's thread is.
    assert started_by_python == own
    own
  end

  defp scheduling_in_new_context(opts \\ []) do
    {:ok, ctx} = ContextServer.start_link([own_gil: true] ++ opts)
    scheduling = scheduling_of(ctx)
    GenServer.stop(ctx)
    scheduling
  end

  describe "own-GIL contexts" do
    @describetag :own_gil

    test "run 19 steps nicer than the schedulers by default, as do the threads Python starts" do
      assert scheduling_in_new_context() == [@sched_other, 19]
    end

    test "thread_priority: :idle runs them as SCHED_IDLE" do
      assert [@sched_idle, _nice] = scheduling_in_new_context(thread_priority: :idle)
    end

    test "thread_priority: :normal runs them as the schedulers run" do
      assert scheduling_in_new_context(thread_priority: :normal) == [@sched_other, vm_niceness()]
    end

    test "thread_priority: {:nice, n} runs them n steps nicer than the schedulers" do
      nicer = [@sched_other, min(vm_niceness() + 5, 19)]
      assert scheduling_in_new_context(thread_priority: {:nice, 5}) == nicer
      assert scheduling_in_new_context(thread_priority: {:nice, 19}) == [@sched_other, 19]
    end

    test "a pool passes thread_priority to each of its contexts" do
      opts = [own_gil: true, thread_priority: {:nice, 3}]
      {:ok, contexts} = ErlangPython.Pool.start(:own_gil_priority, 2, opts)
      on_exit(fn -> ErlangPython.Pool.stop(:own_gil_priority) end)
      expected = [@sched_other, min(vm_niceness() + 3, 19)]
      assert Enum.map(contexts, &scheduling_of/1) == [expected, expected]
    end

    test "config own_gil_thread_priority sets the default; the option still wins" do
      Application.put_env(:erlang_python, :own_gil_thread_priority, :normal)
      assert scheduling_in_new_context() == [@sched_other, vm_niceness()]
      assert [@sched_idle, _nice] = scheduling_in_new_context(thread_priority: :idle)
    end

    test "the older config own_gil_nice still sets the default: 0 is :normal, n is {:nice, n}" do
      Application.put_env(:erlang_python, :own_gil_nice, 0)
      assert scheduling_in_new_context() == [@sched_other, vm_niceness()]
      Application.put_env(:erlang_python, :own_gil_nice, 4)
      assert scheduling_in_new_context() == [@sched_other, min(vm_niceness() + 4, 19)]
      # own_gil_thread_priority, when set, is the one read.
      Application.put_env(:erlang_python, :own_gil_thread_priority, :idle)
      assert [@sched_idle, _nice] = scheduling_in_new_context()
    end

    test "a bad configured default refuses the context with a message naming the setting" do
      Process.flag(:trap_exit, true)

      for bad <- [20, -1, 2.5, :high] do
        Application.put_env(:erlang_python, :own_gil_nice, bad)

        assert {:error, {:context_start_failed, {:own_gil_start_failed, message}}} =
                 ContextServer.start_link(own_gil: true)

        assert message =~ ":own_gil_nice must be an integer from 0 to 19, got: #{inspect(bad)}"
      end

      Application.put_env(:erlang_python, :own_gil_thread_priority, {:nice, 0})

      assert {:error, {:context_start_failed, {:own_gil_start_failed, message}}} =
               ContextServer.start_link(own_gil: true)

      assert message =~ ":own_gil_thread_priority must be :idle, :normal or {:nice, n}"
      assert message =~ "got: {:nice, 0}"
    end
  end

  describe "validation (every Python)" do
    test "a bad thread_priority is an ArgumentError that lists the values" do
      for bad <- [:high, {:nice, 0}, {:nice, 20}, {:nice, -1}, 10, "idle", false] do
        opts = [own_gil: true, thread_priority: bad]
        error = assert_raise ArgumentError, fn -> ContextServer.start(opts) end
        assert error.message =~ ":thread_priority must be :idle, :normal or {:nice, n}"
        assert error.message =~ "with n from 1 to 19"
        assert error.message =~ "got: #{inspect(bad)}"
      end
    end

    test "a pool raises the same ArgumentError before it starts anything" do
      opts = [own_gil: true, thread_priority: {:nice, 20}]
      error = assert_raise ArgumentError, fn -> ErlangPython.Pool.start(:bad_priority, 1, opts) end
      assert error.message =~ "got: {:nice, 20}"
      refute ErlangPython.Pool.started?(:bad_priority)
    end

    test "thread_priority without own_gil is an ArgumentError" do
      error = assert_raise ArgumentError, fn -> ContextServer.start(thread_priority: :idle) end
      assert error.message =~ ":thread_priority applies to own-GIL contexts (own_gil: true)"
    end
  end
end
