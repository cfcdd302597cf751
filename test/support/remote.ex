defmodule ErlangPython.TestRemote do
  @moduledoc false
  # Run on a peer node through :erpc (test modules themselves are not
  # loadable there; this support module is).

  @doc "Thread ids of `calls` concurrent evals, in a fresh context or not."
  def thread_ids(calls, in_context?) do
    opts =
      if in_context? do
        {:ok, context} = ErlangPython.Context.new()
        [context: context]
      else
        []
      end

    1..calls
    |> Enum.map(fn _ ->
      Task.async(fn ->
        ErlangPython.eval(
          "(__import__('time').sleep(0.02), __import__('threading').get_ident())[1]",
          %{},
          opts
        )
      end)
    end)
    |> Task.await_many(30_000)
    |> Enum.map(fn {:ok, id} -> id end)
    |> Enum.uniq()
  end

  @thread "__import__('threading').get_ident()"

  @doc """
  Thread ids seen by a context process: its concurrent calls, a stream
  pulled from it, and process environments inside it (each deduplicated).
  """
  def context_server_threads(calls) do
    {:ok, ctx} = ErlangPython.ContextServer.start_link()

    evals =
      1..calls
      |> Enum.map(fn _ ->
        Task.async(fn ->
          {:ok, env} = ErlangPython.Context.process(ctx)

          {ErlangPython.eval(@thread, %{}, context: ctx),
           ErlangPython.eval(@thread, %{}, context: env)}
        end)
      end)
      |> Task.await_many(30_000)

    stream =
      ErlangPython.stream_eval("(#{@thread} for _ in range(#{calls}))", %{},
        context: ctx,
        chunk_size: 1
      )
      |> Enum.uniq()

    ErlangPython.ContextServer.stop(ctx)

    %{
      own: evals |> Enum.map(fn {{:ok, id}, _} -> id end) |> Enum.uniq(),
      process_envs: evals |> Enum.map(fn {_, {:ok, id}} -> id end) |> Enum.uniq(),
      stream: stream
    }
  end

  @doc "The thread of each context of a fresh pool of `size`."
  def pool_threads(size) do
    {:ok, contexts} = ErlangPython.Pool.start(:threads_pool, size)

    ids =
      for ctx <- contexts do
        {:ok, id} = ErlangPython.eval(@thread, %{}, context: ctx)
        id
      end

    ErlangPython.Pool.stop(:threads_pool)
    ids
  end

  @doc "Interrupts a busy call in each of `count` contexts; their callers' results."
  def interrupt_contexts(count) do
    contexts = for _ <- 1..count, do: elem(ErlangPython.ContextServer.start_link(), 1)

    tasks =
      for ctx <- contexts do
        Task.async(fn ->
          ErlangPython.eval("sum(1 for _ in iter(int, 1))", %{}, context: ctx, timeout: :infinity)
        end)
      end

    for ctx <- contexts do
      wait_until(fn -> ErlangPython.ContextServer.interrupt(ctx) == :ok end)
    end

    results = Task.await_many(tasks, 30_000)
    Enum.each(contexts, &ErlangPython.ContextServer.stop/1)
    results
  end

  defp wait_until(check) do
    if check.(), do: :ok, else: Process.sleep(10) && wait_until(check)
  end

  # Python that tells `p` it runs, then sleeps `s` seconds inside C code
  # (where no interrupt reaches it until the sleep returns).
  @tell_then_sleep "(__import__('erlang').send(p, 'sleeping'), __import__('time').sleep(s))"

  @doc """
  Starts a call that times out after 200 ms while its worker keeps sleeping
  for `seconds`, then makes `calls` concurrent unbound calls. Returns their
  results and the pool's figures taken right after they all answered.
  """
  def unbound_calls_while_a_worker_is_stuck(calls, seconds) do
    parent = self()

    stuck =
      Task.async(fn ->
        ErlangPython.eval(@tell_then_sleep, %{p: parent, s: seconds}, timeout: 200)
      end)

    await_sleeping()
    {:error, :timeout} = Task.await(stuck, 10_000)

    results =
      1..calls
      |> Enum.map(fn i -> Task.async(fn -> ErlangPython.call(:operator, :add, [i, 1]) end) end)
      |> Task.await_many(60_000)

    {results, settled_stats(5_000)}
  end

  # The figures once at most one worker is busy: a worker sends its reply
  # and only then marks itself free, so the one that answered the last
  # call may still show busy for a moment.
  defp settled_stats(wait_ms) do
    stats = ErlangPython.pool_stats()

    if Enum.count(stats.workers, & &1.busy) <= 1 or wait_ms <= 0,
      do: stats,
      else: Process.sleep(5) && settled_stats(wait_ms - 5)
  end

  @doc """
  Starts a call in a fresh context that sleeps `seconds`, queues a second
  call in the same context behind it, and returns the pool's figures taken
  while the first runs (and both calls' results once they are done).
  """
  def context_call_queued_behind_a_sleep(seconds) do
    parent = self()
    {:ok, context} = ErlangPython.Context.new()

    first =
      Task.async(fn ->
        ErlangPython.eval(@tell_then_sleep, %{p: parent, s: seconds}, context: context)
      end)

    await_sleeping()
    second = Task.async(fn -> ErlangPython.eval("1 + 1", %{}, context: context) end)
    stats = eventually_queued(10_000)
    {stats, Task.await_many([first, second], 60_000)}
  end

  defp await_sleeping do
    receive do
      "sleeping" -> :ok
    after
      30_000 -> raise "the sleeping call never started"
    end
  end

  # The figures once a request waits on some worker's own queue: the
  # second call is queued by another process, so it may take a moment.
  defp eventually_queued(wait_ms) do
    stats = ErlangPython.pool_stats()

    cond do
      Enum.any?(stats.workers, &(&1.queued > 0)) -> stats
      wait_ms <= 0 -> stats
      true -> Process.sleep(10) && eventually_queued(wait_ms - 10)
    end
  end

  @doc "A telemetry handler: sends each event, tagged with this node, to `pid` (its config)."
  def forward_event(event, measurements, metadata, pid),
    do: send(pid, {:event, node(), event, measurements, metadata})
end
