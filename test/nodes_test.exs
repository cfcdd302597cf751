defmodule ErlangPython.NodesTest do
  # Turns this VM into a distributed node and starts a peer: run alone.
  use ExUnit.Case, async: false

  alias ErlangPython.Error

  @moduletag timeout: 120_000

  setup_all do
    {peer, node} = ErlangPython.PeerNode.start!([])
    on_exit(fn -> ErlangPython.PeerNode.stop(peer) end)
    %{node: node}
  end

  test "call, eval and exec run on the other node's interpreter", %{node: node} do
    {:ok, here} = ErlangPython.call(:os, :getpid)
    assert {:ok, there} = ErlangPython.call(:os, :getpid, [], node: node)
    assert here != there

    assert :ok = ErlangPython.exec("_nodes_value = 41", node: node)
    assert {:ok, 42} = ErlangPython.eval("_nodes_value + one", %{one: 1}, node: node)
    # Defined there, not here.
    assert {:error, %Error{type: "NameError"}} = ErlangPython.eval("_nodes_value")
  end

  test "values are copied both ways, errors and timeouts keep their shapes", %{node: node} do
    value = %{"list" => [1, 2.5, "x"], "tuple" => {1, nil}, "big" => 2 ** 100}
    assert {:ok, ^value} = ErlangPython.eval("v", %{v: value}, node: node)

    assert {:error, %Error{type: "ZeroDivisionError"}} = ErlangPython.eval("1/0", %{}, node: node)

    assert {:error, {:sandbox_blocked, "os.fork", _}} =
             ErlangPython.exec("import os; os.fork()", node: node)

    assert {:error, :timeout} = ErlangPython.exec("while True: pass", node: node, timeout: 200)

    # The remote runtime interrupted the loop and still answers.
    assert {:ok, 2} = ErlangPython.eval("1 + 1", %{}, node: node, timeout: 5_000)
  end

  test "the :py facade takes node options", %{node: node} do
    assert {:ok, 4.0} = :py.call(:math, :sqrt, [16], %{}, node: node, timeout: 5_000)
    assert {:error, {:ZeroDivisionError, _}} = :py.eval("1/0", %{}, node: node)
    assert :ok = :py.exec("_py_nodes = 1", node: node)
  end

  test "an unreachable node is an error, not a crash" do
    assert {:error, {:nodedown, :"nobody@127.0.0.1"}} =
             ErlangPython.call(:math, :sqrt, [4], node: :"nobody@127.0.0.1", timeout: 2_000)
  end

  test "this node by name runs locally" do
    assert {:ok, 2.0} = ErlangPython.call(:math, :sqrt, [4], node: node())
  end
end
