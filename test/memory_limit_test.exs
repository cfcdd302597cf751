defmodule ErlangPython.MemoryLimitTest do
  # Sets the interpreter's ceiling in one test, which every other test
  # would feel: run alone.
  use ExUnit.Case, async: false

  alias ErlangPython.{ContextServer, Error, Memory}

  @mb 1024 * 1024

  defp context(opts) do
    {:ok, ctx} = ContextServer.start_link(opts)
    on_exit(fn -> ContextServer.stop(ctx) end)
    ctx
  end

  defp used(of) do
    {:ok, %{used: used}} = Memory.usage(of)
    used
  end

  defp settled_usage(of, tries \\ 50) do
    :erlang.garbage_collect()
    :ok = ErlangPython.exec("import gc; gc.collect()")
    first = used(of)
    Process.sleep(20)
    now = used(of)

    if abs(now - first) < @mb or tries == 0, do: now, else: settled_usage(of, tries - 1)
  end

  defp refused(of) do
    {:ok, %{refused: refused}} = Memory.usage(of)
    refused
  end

  # The VM's resident memory, from the kernel.
  defp rss_bytes do
    "/proc/self/status"
    |> File.read!()
    |> then(&Regex.run(~r/VmRSS:\s+(\d+) kB/, &1, capture: :all_but_first))
    |> then(fn [kb] -> String.to_integer(kb) * 1024 end)
  end

  test "a runaway bytes allocation is refused by the ceiling, before memory is touched" do
    ctx = context(memory_limit: 64 * @mb)
    os_pid = :os.getpid()
    rss = rss_bytes()

    # 2 GB: the kernel would grant it (this machine has the memory); the
    # ceiling refuses it.
    assert {:error, %Error{type: "MemoryError"}} =
             ErlangPython.eval("len(b'x' * (2 * 10**9))", %{}, context: ctx)

    assert refused(ctx) == 1
    assert rss_bytes() - rss < 100 * @mb

    assert {:error, %Error{type: "MemoryError"}} =
             ErlangPython.eval("len(b'x' * 10**11)", %{}, context: ctx)

    assert refused(ctx) == 2
    assert :os.getpid() == os_pid
    assert {:ok, 4} = ErlangPython.eval("2 + 2", %{}, context: ctx)
  end

  test "a list growing in a loop stops at the ceiling; the context recovers and usage drops" do
    ctx = context(memory_limit: 64 * @mb)

    assert {:error, %Error{type: "MemoryError"}} =
             ErlangPython.exec("grown = []\nwhile True: grown.append(b'y' * 1000)", context: ctx)

    # The list survives in the namespace, held at the ceiling.
    at_ceiling = used(ctx)
    assert at_ceiling > 48 * @mb and at_ceiling <= 65 * @mb
    assert {:ok, n} = ErlangPython.eval("len(grown)", %{}, context: ctx)
    assert n > 40_000

    # At its ceiling the context still runs code, and frees the list.
    assert :ok = ErlangPython.exec("del grown", context: ctx)
    assert used(ctx) < 4 * @mb
    assert {:ok, "ok"} = ErlangPython.eval("'o' + 'k'", %{}, context: ctx)
  end

  test "Python code sees MemoryError and can handle it (bytearray growth)" do
    ctx = context(memory_limit: 32 * @mb)

    code = """
    def grow():
        buf = bytearray()
        try:
            while True:
                buf += b'z' * 100_000
        except MemoryError:
            return len(buf)
    """

    assert :ok = ErlangPython.exec(code, context: ctx)
    assert {:ok, reached} = ErlangPython.eval("grow()", %{}, context: ctx)
    assert reached > 8 * @mb and reached <= 32 * @mb
    # buf was local: freed with the call.
    assert used(ctx) < 4 * @mb
  end

  test "a small-object graph (many empty lists) is stopped too" do
    ctx = context(memory_limit: 64 * @mb)

    assert {:error, %Error{type: "MemoryError"}} =
             ErlangPython.exec("_hog = [[] for _ in range(3_000_000)]", context: ctx)

    assert used(ctx) < 4 * @mb
    # Re-arms: the same allocation fails again.
    assert {:error, %Error{type: "MemoryError"}} =
             ErlangPython.exec("_hog = [[] for _ in range(3_000_000)]", context: ctx)
  end

  test "one context's ceiling does not affect another context" do
    capped = context(memory_limit: 32 * @mb)
    counted = context(memory_limit: :infinity)
    plain = context([])

    assert {:error, %Error{type: "MemoryError"}} =
             ErlangPython.eval("len(bytearray(100 * 2**20))", %{}, context: capped)

    before = used(counted)
    assert :ok = ErlangPython.exec("kept = bytearray(100 * 2**20)", context: counted)
    assert used(counted) - before >= 100 * @mb
    assert {:ok, %{limit: :infinity, refused: 0}} = Memory.usage(counted)

    assert {:ok, 104_857_600} =
             ErlangPython.eval("len(bytearray(100 * 2**20))", %{}, context: plain)

    assert {:error, :not_counted} = Memory.usage(plain)

    assert :ok = ErlangPython.exec("del kept", context: counted)
    assert used(counted) - before < @mb
  end

  test "memory is credited back to the context that allocated it, whoever frees it" do
    ctx = context(memory_limit: :infinity)
    base = used(ctx)

    # A process holds the only reference (a handle); when it exits, the
    # bytearray is freed on the worker's next request: here, one in the
    # default namespace, outside the context.
    Task.async(fn ->
      {:ok, %ErlangPython.Object{}} =
        ErlangPython.eval("bytearray(40 * 2**20)", %{}, context: ctx, decode: false)

      assert used(ctx) - base >= 40 * @mb
    end)
    |> Task.await()

    freed? =
      Enum.any?(1..50, fn _ ->
        {:ok, _} = ErlangPython.eval("0")
        used(ctx) - base < @mb or (Process.sleep(20) && false)
      end)

    assert freed?
  end

  test "a ceiling set on a running context applies from then on" do
    ctx = context([])
    assert {:ok, _} = ErlangPython.eval("len(bytearray(50 * 2**20))", %{}, context: ctx)
    assert :ok = Memory.set_limit(ctx, 16 * @mb)

    assert {:error, %Error{type: "MemoryError"}} =
             ErlangPython.eval("len(bytearray(50 * 2**20))", %{}, context: ctx)

    assert :ok = Memory.set_limit(ctx, :infinity)
    assert {:ok, _} = ErlangPython.eval("len(bytearray(50 * 2**20))", %{}, context: ctx)
    assert {:ok, %{limit: :infinity, peak: peak}} = Memory.usage(ctx)
    assert peak >= 50 * @mb
    assert :ok = Memory.reset_peak(ctx)
    assert {:ok, %{peak: peak}} = Memory.usage(ctx)
    assert peak < 4 * @mb
  end

  test "the interpreter's ceiling stops any code, and lifting it restores service" do
    on_exit(fn -> Memory.set_limit(:interpreter, :infinity) end)
    # Settled first: a late free of an earlier test's memory would leave
    # room for the 200 MB under a ceiling set from a stale reading.
    now = settled_usage(:interpreter)
    assert :ok = Memory.set_limit(:interpreter, now + 64 * @mb)

    assert {:error, %Error{type: "MemoryError"}} = ErlangPython.eval("len(bytearray(200 * 2**20))")

    assert {:ok, %{refused: refused}} = Memory.usage()
    assert refused >= 1
    assert {:ok, 3} = ErlangPython.eval("1 + 2")

    assert :ok = Memory.set_limit(:interpreter, :infinity)
    assert {:ok, 209_715_200} = ErlangPython.eval("len(bytearray(200 * 2**20))")
  end

  test "bad values are refused with clear errors" do
    Process.flag(:trap_exit, true)

    for bad <- [-1, 0, 1.5, "big", :lots] do
      assert_raise ArgumentError, ~r/memory_limit must be a positive integer/, fn ->
        ContextServer.start_link(memory_limit: bad)
      end

      assert_raise ArgumentError, ~r/memory_limit must be a positive integer/, fn ->
        Memory.set_limit(:interpreter, bad)
      end
    end

    ctx = context([])
    assert_raise ArgumentError, fn -> Memory.set_limit(ctx, -5) end
    ContextServer.stop(ctx)
    assert {:error, {:context_down, ^ctx}} = Memory.usage(ctx)
    assert {:error, {:context_down, ^ctx}} = Memory.set_limit(ctx, @mb)
  end

  test "the interpreter's usage moves with what Python holds" do
    # The account is global: objects of earlier tests (handles released
    # when the VM collects them, contexts stopping) may still be freed
    # while this test measures, and one such free once hid the 30 MB
    # (-180 MB seen). A window that saw a foreign free is measured again,
    # at most five times; usage that does not move fails every attempt.
    outcome =
      Enum.reduce_while(1..5, [], fn _, missed ->
        {held, released} = attempt = measure_30_mb_round_trip()

        moved? = held >= 29 * @mb and released < 30 * @mb
        if moved?, do: {:halt, :moved}, else: {:cont, [attempt | missed]}
      end)

    missed = "usage did not follow a 30 MB bytearray; (held, released): #{inspect(outcome)}"
    assert outcome == :moved, missed
  end

  defp measure_30_mb_round_trip do
    before = settled_usage(:interpreter)
    assert :ok = ErlangPython.exec("_memory_test_keep = bytearray(30 * 2**20)")
    held = used(:interpreter) - before
    assert :ok = ErlangPython.exec("del _memory_test_keep")
    {held, used(:interpreter) - before}
  end

  describe "the Erlang facade (py_context, py_nif)" do
    test "a context's memory_limit turns a runaway allocation into an error tuple" do
      {:ok, ctx} = :py_context.new(%{mode: :worker, memory_limit: 64 * @mb})
      on_exit(fn -> :py_context.stop(ctx) end)

      assert {:error, {:MemoryError, _}} =
               :py_context.exec(ctx, "_hog = [[] for _ in range(3000000)]")

      assert {:ok, 4} = :py_context.eval(ctx, "2+2", %{}, 10_000)
      ref = :py_context.get_nif_ref(ctx)
      assert {:ok, used, 67_108_864} = :py_nif.context_memory_usage(ref)
      assert used < 4 * @mb
      assert :ok = :py_nif.context_set_memory_limit(ref, 0)
      assert {:ok, _, 0} = :py_nif.context_memory_usage(ref)
      assert :ok = :py_context.exec(ctx, "_hog = [[] for _ in range(3000000)]")
      assert {:ok, 3_000_000} = :py_context.eval(ctx, "len(_hog)", %{}, 10_000)
    end

    test "contexts without a limit report their usage, and it grows with live objects" do
      {:ok, ctx} = :py_context.new(%{mode: :worker})
      on_exit(fn -> :py_context.stop(ctx) end)
      ref = :py_context.get_nif_ref(ctx)
      {:ok, before, 0} = :py_nif.context_memory_usage(ref)
      assert :ok = :py_context.exec(ctx, "_keep = [[] for _ in range(500000)]")
      {:ok, after_, 0} = :py_nif.context_memory_usage(ref)
      assert after_ > before
    end

    test "bad limits are error tuples, as in erlang_python" do
      assert {:error, {:invalid_memory_limit, -1}} =
               :py_context.new(%{mode: :worker, memory_limit: -1})

      assert {:error, {:invalid_memory_limit, "big"}} =
               :py_context.new(%{mode: :worker, memory_limit: "big"})

      {:ok, ctx} = :py_context.new(%{mode: :worker})
      on_exit(fn -> :py_context.stop(ctx) end)
      assert {:error, {:invalid_memory_limit, -2}} = :py_nif.context_set_memory_limit(ctx, -2)
    end
  end
end
