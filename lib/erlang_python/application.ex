defmodule ErlangPython.Application do
  @moduledoc false
  use Application

  @impl true
  def start(_type, _args) do
    # The pool's events every :pool_stats_interval ms, when configured.
    poller = ErlangPython.Telemetry.Poller.configured_child()

    # The callback machinery first: starting the interpreter uses it (its
    # output and logging are routed through registered functions).
    children =
      [
        ErlangPython.State,
        ErlangPython.Callbacks,
        # The line of `:py` callers waiting for a slot.
        ErlangPython.Semaphore,
        # Tables of the context, pool, import and stream registries.
        ErlangPython.Registry,
        {DynamicSupervisor, name: ErlangPython.PoolSupervisor, strategy: :one_for_one}
      ] ++ poller

    with {:ok, supervisor} <-
           Supervisor.start_link(children, strategy: :one_for_one, name: ErlangPython.Supervisor),
         :ok <- ErlangPython.Output.register(),
         :ok <- ErlangPython.State.register(),
         :ok <- :py_callback.register_builtins(),
         :ok <- start_interpreter(ErlangPython.Runtime.config()[:start]) do
      {:ok, supervisor}
    end
  end

  # :lazy leaves it to the first call (ErlangPython.Runtime.ensure_started/0);
  # the default pool then starts on first use (ErlangPython.Pool.context/1).
  defp start_interpreter(:lazy), do: :ok

  defp start_interpreter(_boot) do
    with :ok <- ErlangPython.Runtime.ensure_started(),
         :ok <- ErlangPython.Imports.init(),
         {:ok, _contexts} <- ErlangPython.Pool.start(:default, ErlangPython.Pool.default_size()) do
      :ok
    end
  end
end
