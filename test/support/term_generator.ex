defmodule ErlangPython.TermGenerator do
  @moduledoc """
  Random Elixir terms for property tests, written here because no hex
  package can be fetched. Deterministic for a given `:rand` seed.

  Generates only terms whose documented Python mapping is a round trip:
  integers of any size, floats (finite), binaries (UTF-8 or not), booleans,
  `nil`, proper lists, tuples, maps, MapSets, pids and references. Map keys
  and set elements are limited to integers, binaries and tuples of those:
  Python merges keys that are equal there but distinct in Erlang (`1` and
  `1.0`, `true` and `1`), which the conversion guide documents.
  """

  @doc "A random term no deeper than `depth` levels of containers."
  @spec term(non_neg_integer()) :: term()
  def term(depth) when depth <= 0, do: scalar()

  def term(depth) do
    case :rand.uniform(10) do
      n when n <= 4 -> scalar()
      5 -> list(depth)
      6 -> tuple(depth)
      7 -> map(depth)
      8 -> mapset()
      9 -> Enum.map(1..:rand.uniform(3), fn _ -> term(depth - 1) end)
      10 -> {term(depth - 1), scalar()}
    end
  end

  @doc "A random scalar."
  def scalar do
    case :rand.uniform(12) do
      1 -> small_integer()
      2 -> big_integer()
      3 -> float()
      4 -> utf8_binary()
      5 -> raw_binary()
      6 -> Enum.random([true, false, nil])
      7 -> self()
      8 -> make_ref()
      9 -> 0
      10 -> ""
      11 -> charlist()
      12 -> -:rand.uniform(1_000)
    end
  end

  defp small_integer, do: :rand.uniform(2_000_001) - 1_000_001

  defp big_integer do
    magnitude = Integer.pow(2, :rand.uniform(400)) + :rand.uniform(1_000_000)
    if :rand.uniform(2) == 1, do: magnitude, else: -magnitude
  end

  defp float do
    case :rand.uniform(5) do
      1 -> 0.0
      2 -> :rand.uniform() * 1.0e300
      3 -> -:rand.uniform() * 1.0e-300
      _ -> (:rand.uniform() - 0.5) * 1_000_000
    end
  end

  @alphabet ~c"abcXYZ 019_-éß→✓😀\n"
  defp utf8_binary do
    length = :rand.uniform(12) - 1
    for _ <- 1..length//1, into: "", do: <<Enum.random(@alphabet)::utf8>>
  end

  defp raw_binary do
    # Not valid UTF-8 once it holds a lone continuation byte.
    length = :rand.uniform(10)
    for _ <- 1..length, into: <<0x80>>, do: <<:rand.uniform(256) - 1>>
  end

  defp charlist, do: Enum.map(1..:rand.uniform(5), fn _ -> Enum.random(?a..?z) end)

  defp list(depth), do: Enum.map(1..(:rand.uniform(5) - 1)//1, fn _ -> term(depth - 1) end)

  defp tuple(depth),
    do: List.to_tuple(Enum.map(1..(:rand.uniform(4) - 1)//1, fn _ -> term(depth - 1) end))

  defp map(depth) do
    for _ <- 1..(:rand.uniform(5) - 1)//1, into: %{}, do: {key(), term(depth - 1)}
  end

  defp mapset, do: MapSet.new(1..(:rand.uniform(4) - 1)//1, fn _ -> key() end)

  @doc "A hashable key whose Python equality matches Erlang's."
  def key do
    case :rand.uniform(4) do
      1 -> small_integer()
      2 -> big_integer()
      3 -> utf8_binary()
      4 -> {small_integer(), utf8_binary()}
    end
  end
end
