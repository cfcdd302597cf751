defmodule ErlangPython.SigilPYTest do
  # `~PY` is Elixir 1.15 syntax (multi-letter sigils): Elixir 1.14 cannot
  # even parse this file, so test/sigils_test.exs loads it only from 1.15 on. On
  # 1.14 the same behaviour is tested through `~P` (test/ecosystem_test.exs),
  # which runs on every version.
  use ExUnit.Case, async: false

  import ErlangPython.Sigils

  test "~PY evaluates an expression or a block, raising on error" do
    assert ~PY"sum(range(10))" == 45

    assert ~PY"""
           def _sigil_py_area(r):
               return 3 * r * r
           _sigil_py_area(2)
           """ == 12

    assert ~PY"_sigil_py_area(1)" == 3
    assert ~PY"x = 1" == nil
    assert_raise ErlangPython.Error, ~r/ZeroDivisionError/, fn -> ~PY"1/0" end
  end
end
