# Tests tagged :slow (the load tests, a dependent project's build, venvs
# made and installed into) run in a step of their own in bin/test:
# `mix test --only slow`. Long-running stress tests are tagged :stress and
# run only when asked for: `mix test --only stress` (see README). The test
# with a real torch (several gigabytes) is tagged :torch: see
# test/sandbox_torch_test.exs.
#
# Tests tagged :numpy use the real numpy and pandas from the venv named by
# ERLANG_PYTHON_TEST_VENV (CI makes one). Without it they are excluded, and
# this says so: they never pass without running.
numpy_venv = System.get_env("ERLANG_PYTHON_TEST_VENV")

numpy_excluded =
  if numpy_venv in [nil, ""] or not File.dir?(numpy_venv) do
    IO.puts(
      "NOTE: tests tagged :numpy (numpy, pandas) are EXCLUDED: set ERLANG_PYTHON_TEST_VENV " <>
        "to a venv with numpy and pandas to run them (see test/numpy_test.exs)."
    )

    [:numpy]
  else
    []
  end

ExUnit.start(exclude: [:stress, :slow, :torch] ++ numpy_excluded)
