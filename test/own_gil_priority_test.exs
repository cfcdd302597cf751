defmodule ErlangPython.OwnGilPriorityTest do
  # `config :erlang_python, own_gil_nice: n`: an own-GIL context's thread,
  # and the threads Python starts from it, run n steps nicer than the
  # thread that started the context (a scheduler's). Each thread's niceness
  # is read by Python from its own /proc/thread-self/stat, so no thread
  # names are involved (the VM names its schedulers differently from one
  # OTP release to the next). Own-GIL contexts need Python 3.12+:
  # test_helper.exs excludes the :own_gil tag, saying why, on older ones.
  use ExUnit.Case, async: false

  alias ErlangPython.ContextServer

  @moduletag :own_gil

  # The niceness (field 19 of stat) of the calling thread, and of a thread
  # Python starts from it.
  @niceness """
  import threading
  def _nice():
      with open('/proc/thread-self/stat') as f:
          return int(f.read().rsplit(') ', 1)[1].split()[16])
  def niceness():
      out = []
      t = threading.Thread(target=lambda: out.append(_nice()))
      t.start()
      t.join()
      return [_nice(), out[0]]
  """

  setup do
    on_exit(fn -> Application.delete_env(:erlang_python, :own_gil_nice) end)
  end

  defp niceness_in_new_context do
    {:ok, ctx} = ContextServer.start_link(own_gil: true)
    :ok = ErlangPython.exec(@niceness, context: ctx)
    {:ok, [own, started_by_python]} = ErlangPython.eval("niceness()", %{}, context: ctx)
    GenServer.stop(ctx)
    {own, started_by_python}
  end

  # The VM's niceness: its main thread's, which its schedulers share.
  defp vm_niceness do
    [_, after_name] = "/proc/self/stat" |> File.read!() |> String.split(") ", parts: 2)
    after_name |> String.split(" ") |> Enum.at(16) |> String.to_integer()
  end

  test "contexts run at the VM's priority unless told otherwise" do
    assert niceness_in_new_context() == {vm_niceness(), vm_niceness()}
  end

  test "own_gil_nice makes a new context's thread and its Python threads that much nicer" do
    base = vm_niceness()
    Application.put_env(:erlang_python, :own_gil_nice, 5)
    assert niceness_in_new_context() == {min(base + 5, 19), min(base + 5, 19)}
    Application.put_env(:erlang_python, :own_gil_nice, 19)
    assert niceness_in_new_context() == {19, 19}
  end

  test "an own_gil_nice out of range refuses the context with a message naming the setting" do
    Process.flag(:trap_exit, true)

    for bad <- [20, -1, 2.5, :high] do
      Application.put_env(:erlang_python, :own_gil_nice, bad)

      assert {:error, {:context_start_failed, {:own_gil_start_failed, message}}} =
               ContextServer.start_link(own_gil: true)

      assert message =~ ":own_gil_nice must be an integer from 0 to 19, got: #{inspect(bad)}"
    end
  end
end
