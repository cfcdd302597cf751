defmodule ErlangPython.RequestMemoryTest do
  # Not async: it reads the VM's binary memory, which other tests move.
  use ExUnit.Case, async: false

  # Requests' environments are recycled for later requests (to save an
  # allocation per call); a recycled one must not keep a finished request's
  # terms, such as a large binary argument, alive.
  test "a large binary argument is freed once its call has answered" do
    size = 64 * 1024 * 1024
    before = :erlang.memory(:binary)

    assert {:ok, ^size} = send_large_binary(size)
    :erlang.garbage_collect()

    assert eventually(fn -> :erlang.memory(:binary) < before + div(size, 4) end),
           "#{:erlang.memory(:binary) - before} bytes of binaries still held"

    # Later requests, which may reuse that request's environment, get their
    # own arguments.
    for i <- 1..300, do: assert({:ok, ^i} = ErlangPython.eval("i", %{i: i}))
  end

  # Made and dropped in a function of its own, so this process keeps no
  # reference to the binary.
  defp send_large_binary(size),
    do: ErlangPython.call(:builtins, :len, [{:bytes, :binary.copy(<<7>>, size)}])

  # The worker drops a request just after sending its reply.
  defp eventually(check, tries \\ 100) do
    cond do
      check.() ->
        true

      tries == 0 ->
        false

      true ->
        Process.sleep(20)
        eventually(check, tries - 1)
    end
  end
end
