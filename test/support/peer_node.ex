defmodule ErlangPython.PeerNode do
  @moduledoc """
  A peer VM on loopback running this project's code, for tests of
  distribution and of start-time configuration.
  """

  @doc """
  Makes this VM a distributed node (starting epmd if needed) and starts a
  peer with `extra_args` (e.g. application configuration) and erlang_python
  running. Returns `{peer, node}`; `stop/1` ends it.
  """
  def start!(extra_args \\ []) do
    {_, 0} = System.cmd("epmd", ["-daemon"])
    # `epmd -daemon` returns before the daemon listens: where no epmd ran
    # yet (a fresh machine, the trixie root), starting distribution at once
    # raced it and failed with econnrefused.
    true =
      ErlangPython.TestHelpers.eventually(
        fn -> match?({:ok, _}, :erl_epmd.names({127, 0, 0, 1})) end,
        attempts: 250
      )

    unless Node.alive?() do
      # Unique per OS process: test runs of other checkouts may share epmd.
      {:ok, _} = Node.start(:"erlang_python_test_#{System.pid()}@127.0.0.1", :longnames)
    end

    code_paths = Enum.flat_map(:code.get_path(), &[~c"-pa", &1])

    {:ok, peer, node} =
      :peer.start(%{
        name: String.to_atom(ErlangPython.TestHelpers.unique("erlang_python_peer")),
        host: ~c"127.0.0.1",
        longnames: true,
        args: code_paths ++ extra_args
      })

    {:ok, _} = :erpc.call(node, :application, :ensure_all_started, [:erlang_python])
    {peer, node}
  end

  @doc "Stops a peer; already stopping is fine."
  def stop(peer) do
    :peer.stop(peer)
  catch
    :exit, _ -> :ok
  end
end
