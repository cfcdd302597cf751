defmodule ErlangPython.Load do
  @moduledoc """
  Load scenarios shared by the test suite (small sizes) and
  `bench/stress.exs` (full sizes).
  """

  @doc """
  `calls` calls spread over `processes` concurrent processes, each checking
  it got its own answer. Returns `%{ok: n, wrong: [..], seconds: s}`.
  """
  @spec concurrent(pos_integer(), pos_integer()) :: map()
  def concurrent(processes, calls) do
    per_process = div(calls, processes)
    started = System.monotonic_time()

    wrong =
      1..processes
      |> Enum.map(fn p ->
        Task.async(fn ->
          Enum.reduce(1..per_process, [], fn i, wrong ->
            case ErlangPython.call(:operator, :add, [p * 1_000_000, i], timeout: :infinity) do
              {:ok, value} when value == p * 1_000_000 + i -> wrong
              other -> [{p, i, other} | wrong]
            end
          end)
        end)
      end)
      |> Task.await_many(:infinity)
      |> List.flatten()

    seconds =
      System.convert_time_unit(System.monotonic_time() - started, :native, :microsecond) / 1.0e6

    %{ok: processes * per_process - length(wrong), wrong: wrong, seconds: seconds}
  end

  @doc "`calls` sequential calls; returns how many were right, the RSS growth in bytes and the time."
  @spec sequential(pos_integer()) :: map()
  def sequential(calls) do
    # Warm up caches and allocators first, so growth means a leak.
    Enum.each(1..min(calls, 100_000), fn i ->
      {:ok, _} = ErlangPython.call(:operator, :add, [i, 1])
    end)

    :erlang.garbage_collect()
    before = rss()
    started = System.monotonic_time()

    right =
      Enum.count(1..calls, fn i -> ErlangPython.call(:operator, :add, [i, 1]) == {:ok, i + 1} end)

    seconds =
      System.convert_time_unit(System.monotonic_time() - started, :native, :microsecond) / 1.0e6

    :erlang.garbage_collect()
    %{right: right, rss_growth: rss() - before, seconds: seconds}
  end

  @doc "Resident set size of this OS process, in bytes."
  @spec rss() :: non_neg_integer()
  def rss do
    "/proc/self/status"
    |> File.read!()
    |> String.split("\n")
    |> Enum.find_value(fn
      "VmRSS:" <> rest -> rest |> String.trim() |> String.split() |> hd() |> String.to_integer()
      _ -> nil
    end)
    |> Kernel.*(1024)
  end
end
