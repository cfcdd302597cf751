defmodule ErlangPython.Application do
  @moduledoc false
  use Application

  @impl true
  def start(_type, _args) do
    # The callback machinery first: starting the interpreter uses it (its
    # output and logging are routed through registered functions).
    with {:ok, supervisor} <-
           Supervisor.start_link([ErlangPython.State, ErlangPython.Callbacks],
             strategy: :one_for_one,
             name: ErlangPython.Supervisor
           ),
         :ok <- ErlangPython.Output.register(),
         :ok <- ErlangPython.State.register(),
         :ok <- start_interpreter(ErlangPython.Runtime.config()[:start]) do
      {:ok, supervisor}
    end
  end

  # :lazy leaves it to the first call (ErlangPython.Runtime.ensure_started/0).
  defp start_interpreter(:lazy), do: :ok
  defp start_interpreter(_boot), do: ErlangPython.Runtime.ensure_started()
end
