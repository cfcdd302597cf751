defmodule ErlangPython.WorkersTest do
  # A peer VM configured with `workers: 4` (the pool is fixed at start).
  use ExUnit.Case, async: false

  import ErlangPython.TestHelpers

  @moduletag timeout: 120_000

  setup_all do
    {peer, node} = ErlangPython.PeerNode.start!([~c"-erlang_python", ~c"workers", ~c"4"])
    on_exit(fn -> ErlangPython.PeerNode.stop(peer) end)
    %{node: node}
  end

  defp remote(node, fun, args), do: :erpc.call(node, ErlangPython, fun, args, 60_000)

  test "the pool has the configured size", %{node: node} do
    assert :erpc.call(node, ErlangPython.Runtime, :workers, []) == 4
    assert ErlangPython.Runtime.workers() == 1
  end

  # Runs 4 sleeping calls at once; true when they overlapped (all four
  # started before any ended), the proof that they ran concurrently.
  defp overlapping_sleeps?(node, seconds) do
    code = "(lambda t: (t.monotonic(), t.sleep(s), t.monotonic()))(__import__('time'))"

    spans =
      1..4
      |> Enum.map(fn _ ->
        Task.async(fn -> remote(node, :eval, [code, %{s: seconds}, [timeout: 10_000]]) end)
      end)
      |> Task.await_many(30_000)
      |> Enum.map(fn {:ok, {started, nil, ended}} -> {started, ended} end)

    Enum.max(Enum.map(spans, &elem(&1, 0))) < Enum.min(Enum.map(spans, &elem(&1, 1)))
  end

  # A worker still finishing earlier work (an interrupt landing on a busy
  # machine) can delay one call; the pool is shown concurrent once all are free.
  defp eventually_overlapping?(node, seconds),
    do: eventually(fn -> overlapping_sleeps?(node, seconds) end, attempts: 5, interval: 0)

  test "4 calls that sleep (releasing the GIL) run at the same time", %{node: node} do
    assert eventually_overlapping?(node, 0.5)
  end

  test "plain calls spread over the workers; a context stays on one thread", %{node: node} do
    assert length(:erpc.call(node, ErlangPython.TestRemote, :thread_ids, [40, false])) > 1
    assert length(:erpc.call(node, ErlangPython.TestRemote, :thread_ids, [40, true])) == 1
  end

  test "a handle made in another VM is refused, not taken for a map", %{node: node} do
    {:ok, foreign} = :erpc.call(node, ErlangPython, :eval, ["object()"])
    assert %ErlangPython.Object{} = foreign

    assert {:error, %ErlangPython.Error{type: "TypeError", message: message}} =
             ErlangPython.eval("x", %{x: foreign})

    assert message =~ "no live handle"
  end

  test "timeouts interrupt code on every worker", %{node: node} do
    results =
      1..4
      |> Enum.map(fn _ ->
        Task.async(fn -> remote(node, :exec, ["while True: pass", [timeout: 300]]) end)
      end)
      |> Task.await_many(30_000)

    assert results == List.duplicate({:error, :timeout}, 4)

    # Every worker is free again: four sleeps still overlap.
    assert eventually_overlapping?(node, 0.3)
  end

  test "a context process's calls, streams and process environments share one thread",
       %{node: node} do
    seen = :erpc.call(node, ErlangPython.TestRemote, :context_server_threads, [20], 60_000)
    assert [thread] = seen.own
    assert seen.process_envs == [thread]
    assert seen.stream == [thread]
  end

  test "a pool's contexts spread over the workers", %{node: node} do
    threads = :erpc.call(node, ErlangPython.TestRemote, :pool_threads, [4], 60_000)
    assert length(Enum.uniq(threads)) > 1
  end

  test "interrupting a context works on whichever worker it runs", %{node: node} do
    results = :erpc.call(node, ErlangPython.TestRemote, :interrupt_contexts, [4], 60_000)
    assert Enum.all?(results, &match?({:error, %ErlangPython.Error{type: "Interrupted"}}, &1))
  end
end
