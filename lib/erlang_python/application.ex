defmodule ErlangPython.Application do
  @moduledoc false
  use Application

  @impl true
  def start(_type, _args) do
    with :ok <- ErlangPython.Runtime.start(),
         {:ok, supervisor} <-
           Supervisor.start_link([ErlangPython.State, ErlangPython.Callbacks],
             strategy: :one_for_one,
             name: ErlangPython.Supervisor
           ),
         :ok <- ErlangPython.Output.register(),
         :ok <- ErlangPython.State.register(),
         :ok <- ErlangPython.Runtime.after_start() do
      {:ok, supervisor}
    end
  end
end
