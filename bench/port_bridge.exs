# The port-based baseline the benchmarks compare with: bench/port_bridge.py
# on a port, {:packet, 4}, terms in the external term format decoded and
# encoded in Python (as port bridges such as erlport do).
defmodule PortBridge do
  def start do
    python = System.find_executable(System.get_env("ERLANG_PYTHON_PYTHON") || "python3")
    script = Path.expand("port_bridge.py", __DIR__)
    Port.open({:spawn_executable, python}, [{:args, [script]}, {:packet, 4}, :binary, :use_stdio])
  end

  def call(port, module, function, args) do
    Port.command(port, :erlang.term_to_binary({module, function, args}))

    receive do
      {^port, {:data, data}} ->
        {"ok", value} = :erlang.binary_to_term(data)
        value
    end
  end
end
