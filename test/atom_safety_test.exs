defmodule ErlangPython.AtomSafetyTest do
  # The atom table is global and never garbage-collected: nothing Python
  # returns may add to it. Counting atoms needs a quiet VM, so this module
  # runs alone (async: false) and warms up each path once before measuring.
  use ExUnit.Case, async: false

  defp atoms_added(fun) do
    fun.(0)
    before = :erlang.system_info(:atom_count)
    fun.(1)
    :erlang.system_info(:atom_count) - before
  end

  test "distinct strings from Python never become atoms" do
    added =
      atoms_added(fn round ->
        {:ok, strings} =
          ErlangPython.eval("['never_an_atom_%d_%d' % (r, i) for i in range(100_000)]", %{r: round})

        assert length(strings) == 100_000
      end)

    assert added == 0
  end

  test "dict keys and exception names from Python never become atoms" do
    added =
      atoms_added(fn round ->
        {:ok, map} =
          ErlangPython.eval("{'key_%d_%d' % (r, i): i for i in range(1000)}", %{r: round})

        assert map_size(map) == 1000

        for i <- 1..2_000 do
          name = "DynamicError_#{round}_#{i}"

          assert {:error, %ErlangPython.Error{type: ^name}} =
                   ErlangPython.exec("raise type('#{name}', (Exception,), {})('boom')")
        end
      end)

    assert added == 0
  end

  test ":py falls back to a binary for exception names with no atom" do
    added =
      atoms_added(fn round ->
        for i <- 1..2_000 do
          name = "NoAtomError_#{round}_#{i}"

          assert {:error, {^name, "boom"}} =
                   :py.exec("raise type('#{name}', (Exception,), {})('boom')")
        end
      end)

    assert added == 0
  end
end
