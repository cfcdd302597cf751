defmodule ErlangPython.Case do
  @moduledoc """
  An ExUnit case template giving each test its own Python namespace, so
  test modules that run Python can be `async: true`.

      defmodule MyApp.PricingTest do
        use ErlangPython.Case, async: true

        test "computes tax", %{python: python} do
          :ok = ErlangPython.exec("def tax(x):\\n    return x * 0.2", context: python)
          assert {:ok, 20.0} = ErlangPython.call(:__main__, :tax, [100], context: python)
        end
      end
  """
  use ExUnit.CaseTemplate

  setup do
    {:ok, context} = ErlangPython.Context.new()
    %{python: context}
  end
end
