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
end
