defmodule ErlangPython.Isolated.Handles do
  @moduledoc false
  # Handles an isolated worker hands out are released when the VM
  # garbage-collects them. The worker lists, with each message, the ids of
  # the handles it made for it; the server puts a release guard (a NIF
  # resource) into each of those, so the handle becomes
  # `%ErlangPython.Object{ref: {:isolated, os_pid, id, guard}}`. When the
  # last copy of a guard is freed, its destructor sends the server
  # `{:isolated_release, os_pid, id}`; the server gathers those and sends
  # the worker one `{:release, ids}`.

  alias ErlangPython.Object

  @doc false
  # `term` with a guard in every handle whose id is in `ids`. Only walks
  # what can hold a handle; a term without one comes back as it was.
  def guard(term, [], _os_pid), do: term

  def guard(term, ids, os_pid) do
    wanted = MapSet.new(ids)
    walk(term, wanted, self(), os_pid)
  end

  defp walk(%Object{ref: {:isolated, os_pid, id}} = object, wanted, server, os_pid) do
    if MapSet.member?(wanted, id) do
      guard = ErlangPython.Native.isolated_release_guard(server, os_pid, id)
      %{object | ref: {:isolated, os_pid, id, guard}}
    else
      object
    end
  end

  defp walk(list, wanted, server, os_pid) when is_list(list),
    do: walk_list(list, wanted, server, os_pid)

  defp walk(tuple, wanted, server, os_pid) when is_tuple(tuple) do
    tuple
    |> Tuple.to_list()
    |> Enum.map(&walk(&1, wanted, server, os_pid))
    |> List.to_tuple()
  end

  # Structs too (a MapSet of objects): `:maps` sees every map as one.
  defp walk(map, wanted, server, os_pid) when is_map(map) do
    map
    |> :maps.to_list()
    |> Enum.map(fn {k, v} -> {walk(k, wanted, server, os_pid), walk(v, wanted, server, os_pid)} end)
    |> :maps.from_list()
  end

  defp walk(other, _wanted, _server, _os_pid), do: other

  # Improper lists (an Erlang form Python never makes) keep their tail.
  defp walk_list([head | tail], wanted, server, os_pid),
    do: [walk(head, wanted, server, os_pid) | walk_list(tail, wanted, server, os_pid)]

  defp walk_list([], _wanted, _server, _os_pid), do: []
  defp walk_list(tail, wanted, server, os_pid), do: walk(tail, wanted, server, os_pid)
end
