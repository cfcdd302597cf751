defmodule ErlangPython.ArtifactServer do
  @moduledoc """
  A loopback HTTP server (OTP's `:inets` httpd) serving a directory, for
  the precompiled-NIF tests.
  """

  @doc "Starts a server for `dir` on 127.0.0.1; returns `{pid, base_url}`."
  def start(dir) do
    {:ok, _} = Application.ensure_all_started(:inets)

    {:ok, pid} =
      :inets.start(:httpd,
        port: 0,
        server_name: ~c"localhost",
        server_root: String.to_charlist(dir),
        document_root: String.to_charlist(dir),
        bind_address: {127, 0, 0, 1}
      )

    port = :httpd.info(pid)[:port]
    {pid, "http://127.0.0.1:#{port}"}
  end

  def stop(pid), do: :inets.stop(:httpd, pid)

  @doc "The NIF library this test run loaded."
  def current_library do
    Path.join([
      :code.priv_dir(:erlang_python),
      "native",
      ErlangPython.Native.lib_basename() <> ".so"
    ])
  end
end
