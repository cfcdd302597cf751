defmodule ErlangPython.Eventually do
  @moduledoc "Waiting for a condition that becomes true asynchronously."

  @doc "Checks `check` every 20 ms, up to `attempts` times; true once it holds."
  def eventually(check, attempts \\ 100) do
    cond do
      check.() -> true
      attempts == 0 -> false
      true -> Process.sleep(20) && eventually(check, attempts - 1)
    end
  end
end
