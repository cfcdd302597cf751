defmodule ErlangPython.ThreadScheduling do
  @moduledoc """
  How Linux schedules threads, read back from `/proc` by the tests of
  `:thread_priority` (own-GIL contexts) and `worker_thread_priority` (the
  main interpreter's workers).
  """

  @doc """
  Python code that defines `scheduling()`, which returns
  `[thread id, [policy, nice] of the calling thread, [policy, nice] of a
  thread Python starts from it]` (fields 41 and 19 of the thread's stat;
  policy 0 is `SCHED_OTHER`, 5 is `SCHED_IDLE`).
  """
  @spec python() :: String.t()
  def python do
    """
    import threading
    def _scheduling():
        with open('/proc/thread-self/stat') as f:
            fields = f.read().rsplit(') ', 1)[1].split()
        return [int(fields[38]), int(fields[16])]
    def scheduling():
        out = []
        t = threading.Thread(target=lambda: out.append(_scheduling()))
        t.start()
        t.join()
        return [threading.get_native_id(), _scheduling(), out[0]]
    """
  end

  @doc "The VM's niceness: its main thread's, which its schedulers share."
  @spec vm_niceness() :: integer()
  def vm_niceness do
    [_, after_name] = "/proc/self/stat" |> File.read!() |> String.split(") ", parts: 2)
    after_name |> String.split(" ") |> Enum.at(16) |> String.to_integer()
  end
end
