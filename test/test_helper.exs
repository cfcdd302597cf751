# Tests tagged :slow (the load tests, a dependent project's build, venvs
# made and installed into) run in a step of their own in bin/test:
# `mix test --only slow`. Long-running stress tests are tagged :stress and
# run only when asked for: `mix test --only stress` (see README). The test
# with a real torch (several gigabytes) is tagged :torch: see
# test/sandbox_torch_test.exs.
ExUnit.start(exclude: [:stress, :slow, :torch])

# The venv of real libraries (numpy, pandas, scikit-learn) that tests tagged
# :test_venv use: see test/support/test_venv.ex. bin/test always provides it;
# under CI its absence is an error, never a silent skip.
if ErlangPython.TestVenv.path() do
  ErlangPython.TestVenv.add!()
else
  if System.get_env("CI") not in [nil, "", "0", "false"] do
    raise "#{ErlangPython.TestVenv.variable()} is not set: run the tests with bin/test"
  end

  IO.puts(
    :stderr,
    "#{ErlangPython.TestVenv.variable()} is not set: tests tagged :test_venv are excluded " <>
      "(bin/test makes the venv and sets it)"
  )

  ExUnit.configure(exclude: [:test_venv | ExUnit.configuration()[:exclude]])
end

# Tests tagged :own_gil need sub-interpreters with their own GIL (Python
# 3.12+); on an older Python they are excluded, and said so.
unless ErlangPython.OwnGil.supported?() do
  IO.puts(
    :stderr,
    "own-GIL contexts need Python 3.12+: tests tagged :own_gil are excluded on this Python"
  )

  ExUnit.configure(exclude: [:own_gil | ExUnit.configuration()[:exclude]])
end
