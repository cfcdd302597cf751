defmodule ErlangPython.WorkersTest do
  # A peer VM configured with `workers: 4` (the pool is fixed at start).
  use ExUnit.Case, async: false

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

  test "4 calls that sleep (releasing the GIL) run at the same time", %{node: node} do
    code = "(lambda t: (t.monotonic(), t.sleep(0.5), t.monotonic()))(__import__('time'))"

    spans =
      1..4
      |> Enum.map(fn _ -> Task.async(fn -> remote(node, :eval, [code]) end) end)
      |> Task.await_many(30_000)
      |> Enum.map(fn {:ok, {started, nil, ended}} -> {started, ended} end)

    # All four started before any of them ended: they overlapped.
    latest_start = spans |> Enum.map(&elem(&1, 0)) |> Enum.max()
    earliest_end = spans |> Enum.map(&elem(&1, 1)) |> Enum.min()
    assert latest_start < earliest_end
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
    code = "(lambda t: (t.monotonic(), t.sleep(0.3), t.monotonic()))(__import__('time'))"

    spans =
      1..4
      |> Enum.map(fn _ ->
        Task.async(fn -> remote(node, :eval, [code, %{}, [timeout: 10_000]]) end)
      end)
      |> Task.await_many(30_000)
      |> Enum.map(fn {:ok, {started, nil, ended}} -> {started, ended} end)

    assert Enum.max(Enum.map(spans, &elem(&1, 0))) < Enum.min(Enum.map(spans, &elem(&1, 1)))
  end
end
