# Tests tagged :slow (the load tests, a dependent project's build, venvs
# made and installed into) run in a step of their own in bin/test:
# `mix test --only slow`. Long-running stress tests are tagged :stress and
# run only when asked for: `mix test --only stress` (see README).
ExUnit.start(exclude: [:stress, :slow])
