# Tests tagged :slow (the load tests, a dependent project's build, venvs
# made and installed into) run in a step of their own in bin/test:
# `mix test --only slow`. Long-running stress tests are tagged :stress and
# run only when asked for: `mix test --only stress` (see README). The test
# with a real torch (several gigabytes) is tagged :torch: see
# test/sandbox_torch_test.exs.
ExUnit.start(exclude: [:stress, :slow, :torch])
