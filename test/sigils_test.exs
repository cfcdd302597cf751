# `~PY` is Elixir 1.15 syntax (multi-letter sigils), which Elixir 1.14 cannot
# even parse, so its tests live in test/elixir_1_15/ and are loaded only where
# the running Elixir has it: each stack runs the sigil tests that apply to it,
# and none is counted as passing without running. `~P`, for every Elixir, is
# tested in test/ecosystem_test.exs.
if Version.match?(System.version(), ">= 1.15.0") do
  Code.require_file("elixir_1_15/sigil_py.exs", __DIR__)
end
