defmodule ErlangPython.Application do
  @moduledoc false
  use Application

  @impl true
  def start(_type, _args) do
    with :ok <- ErlangPython.Runtime.start() do
      Supervisor.start_link([ErlangPython.Callbacks],
        strategy: :one_for_one,
        name: ErlangPython.Supervisor
      )
    end
  end
end
