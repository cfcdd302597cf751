# Long-running stress and load tests are tagged :stress and excluded by
# default; run them with `mix test --only stress` (see README).
ExUnit.start(exclude: [:stress])
