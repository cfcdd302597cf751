# Load and leak check, full size (minutes): run from the test environment,
# which has the shared load scenarios compiled in:
#
#   MIX_ENV=test mix run bench/stress.exs
#
# Prints: 1,000,000 sequential calls (RSS growth after a warm-up) and
# 1,000,000 calls from 1,000 processes (lost/misrouted replies, throughput).
alias ErlangPython.Load

# The leak check first, on a fresh VM: the concurrent phase's own memory
# would otherwise be released during it and hide any growth.
sequential = Load.sequential(1_000_000)

IO.puts(
  "sequential: #{sequential.right} of 1000000 right in #{Float.round(sequential.seconds, 2)} s, " <>
    "RSS growth #{Float.round(sequential.rss_growth / 1_048_576, 2)} MB"
)

concurrent = Load.concurrent(1_000, 1_000_000)

IO.puts(
  "concurrent: #{concurrent.ok} right, #{length(concurrent.wrong)} wrong or lost, " <>
    "#{Float.round(concurrent.seconds, 2)} s, #{round(concurrent.ok / concurrent.seconds)} calls/s"
)

if concurrent.wrong != [] or sequential.right != 1_000_000 or
     sequential.rss_growth >= 10 * 1_048_576,
   do: System.halt(1)
