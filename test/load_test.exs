defmodule ErlangPython.LoadTest do
  use ExUnit.Case, async: false

  alias ErlangPython.Load

  test "100,000 calls from 500 concurrent processes: every reply right, none lost" do
    result = Load.concurrent(500, 100_000)
    assert result.wrong == []
    assert result.ok == 100_000
  end

  # Tens of seconds: bin/test runs it in its step for slow tests. The
  # :stress ones run only when asked for (README, "Stress and benchmarks").
  @tag :slow
  test "200,000 sequential calls, every answer right" do
    result = Load.sequential(200_000)
    assert result.right == 200_000
    assert :pong = ErlangPython.ping()
  end

  @tag :stress
  @tag timeout: :infinity
  test "1,000,000 calls from 1,000 concurrent processes" do
    result = Load.concurrent(1_000, 1_000_000)
    assert result.wrong == []
    assert result.ok == 1_000_000
  end

  @tag :stress
  @tag timeout: :infinity
  test "1,000,000 sequential calls grow RSS by less than 10 MB" do
    result = Load.sequential(1_000_000)
    assert result.right == 1_000_000
    assert result.rss_growth < 10 * 1024 * 1024, "RSS grew #{result.rss_growth} bytes"
  end
end
