# Long-running stress and load tests are tagged :stress and excluded by
# default; run them with `mix test --only stress` (see README). The test
# with a real torch (several gigabytes) is tagged :torch: see
# test/sandbox_torch_test.exs.
ExUnit.start(exclude: [:stress, :torch])
