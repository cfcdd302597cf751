# Shared by bench/callback.exs and bench/run.exs: registers an echo function
# and defines Python helpers that time calls to it from inside Python (so the
# figure is what one erlang.<name>(...) call costs a Python caller), in
# microseconds per round trip.
:ok = ErlangPython.register_function(:bench_echo, fn [x] -> x end)

:ok =
  ErlangPython.exec("""
  import erlang, time, threading

  def bench_callbacks(n):
      echo = erlang.bench_echo
      start = time.perf_counter()
      for i in range(n):
          echo(i)
      return (time.perf_counter() - start) / n * 1e6

  def bench_callbacks_in_thread(n):
      out = []
      t = threading.Thread(target=lambda: out.append(bench_callbacks(n)))
      t.start()
      t.join()
      return out[0]
  """)
