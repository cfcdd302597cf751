# What awaiting costs when the caller's mailbox holds many unrelated
# messages: a synchronous call, and async_call + await, each with an empty
# mailbox and with 10,000 messages waiting. Prints microseconds per call
# (mean of 2,000, after 200 to warm up) and the load average.
#
#     MIX_ENV=prod mix run bench/await_mailbox.exs

defmodule AwaitMailbox do
  @calls 2_000

  def run do
    IO.puts(
      "load average: #{File.read!("/proc/loadavg") |> String.split() |> Enum.take(3) |> Enum.join(" ")}"
    )

    sync = fn -> {:ok, 3} = ErlangPython.call(:operator, :add, [1, 2]) end

    async = fn ->
      {:ok, 3} = ErlangPython.await(ErlangPython.async_call(:operator, :add, [1, 2]))
    end

    row("call, empty mailbox", sync)
    row("async_call + await, empty mailbox", async)
    for i <- 1..10_000, do: send(self(), {:unrelated, i})
    row("call, 10k messages waiting", sync)
    row("async_call + await, 10k messages waiting", async)
  end

  defp row(label, fun) do
    for _ <- 1..200, do: fun.()
    {us, _} = :timer.tc(fn -> for _ <- 1..@calls, do: fun.() end)
    {:message_queue_len, waiting} = Process.info(self(), :message_queue_len)

    IO.puts(
      "#{String.pad_trailing(label, 42)} #{Float.round(us / @calls, 1)} us/call  (mailbox #{waiting})"
    )
  end
end

AwaitMailbox.run()
