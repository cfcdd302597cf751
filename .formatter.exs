# test/elixir_1_15/ holds syntax Elixir 1.14 cannot parse (the ~PY sigil).
newer_syntax =
  if Version.match?(System.version(), ">= 1.15.0"), do: ["test/elixir_1_15/*.exs"], else: []

[
  inputs:
    [
      "{mix,.formatter}.exs",
      "{config,lib,mix,bench}/**/*.{ex,exs}",
      "test/*.{ex,exs}",
      "test/support/**/*.{ex,exs}",
      "guides/**/*.exs"
    ] ++ newer_syntax,
  line_length: 100
]
