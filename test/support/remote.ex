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
end
