defmodule ErlangPython.SandboxTorchTest do
  # `import torch` under the sandbox, with a real torch. torch is several
  # gigabytes, so this is not part of the default suite (the torch-style
  # import pattern is, in sandbox_attacks_test.exs). Run it with a venv that
  # has torch:
  #
  #     python3 -m venv /tmp/torch && /tmp/torch/bin/pip install torch
  #     ERLANG_PYTHON_TORCH_VENV=/tmp/torch mix test --only torch
  use ExUnit.Case, async: false

  @moduletag :torch

  setup_all do
    venv = System.get_env("ERLANG_PYTHON_TORCH_VENV") || flunk("set ERLANG_PYTHON_TORCH_VENV")
    {:ok, _} = ErlangPython.Venv.activate(venv)
    on_exit(fn -> ErlangPython.Venv.deactivate() end)
    :ok
  end

  test "import torch works and computes, and the sandbox still holds" do
    os_pid = System.pid()

    assert {:ok, version} =
             ErlangPython.eval("__import__('torch').__version__", %{}, timeout: 120_000)

    assert is_binary(version)
    assert {:ok, 3.0} = ErlangPython.eval("__import__('torch').ones(3).sum().item()")
    assert {:ok, true} = ErlangPython.eval("__import__('erlang').is_sandboxed()")

    assert {:error, {:sandbox_blocked, "subprocess.Popen", _}} =
             ErlangPython.exec("import subprocess\nsubprocess.run(['/bin/false'])")

    assert System.pid() == os_pid
    assert :pong = ErlangPython.ping()
  end
end
