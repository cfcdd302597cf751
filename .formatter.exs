[
  inputs: ["{mix,.formatter}.exs", "{config,lib,mix,test,bench}/**/*.{ex,exs}", "guides/**/*.exs"],
  line_length: 100
]
