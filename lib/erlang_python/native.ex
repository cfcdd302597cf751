defmodule ErlangPython.Native do
  @moduledoc false
  # The NIF module built from native/erlang_python_nif. Every function here is
  # replaced by the library on load; none of them runs Python on the calling
  # scheduler: they queue work for the interpreter's own thread and return.

  @on_load :load_nif
  # Decided at compile time, from the same naming code as the build.
  @lib_basename ErlangPython.Build.Artifact.lib_basename(Mix.Project.config()[:version])

  @doc false
  def load_nif do
    path =
      :filename.join([
        :code.priv_dir(:erlang_python),
        ~c"native",
        String.to_charlist(@lib_basename)
      ])

    case :erlang.load_nif(path, 0) do
      :ok ->
        :ok

      {:error, {reason, text}} ->
        :logger.error(~c"erlang_python: could not load the NIF ~s: ~p ~s", [path, reason, text])
        {:error, reason}
    end
  end

  @doc false
  def lib_basename, do: @lib_basename

  @doc false
  def start(_options), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def started, do: :erlang.nif_error(:nif_not_loaded)
  # The submit functions return the job's handle (a resource). The job
  # lives only as long as some term refers to its handle: when the handle
  # is garbage collected the job is cancelled and its reply never sent (a
  # caller that died is sent nothing). So a caller that waits for the reply
  # message must keep the handle in use after the wait (cancel or poll it
  # there, as ErlangPython.Runtime.await/3 does in its `after` clause);
  # `_ = handle` compiles to nothing, and a collection during the wait then
  # loses the reply (native/erlang_python_nif/src/job.rs).
  @doc false
  def submit(_ref, _op), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def submit_dirty(_ref, _op), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def submit_polled(_ref, _op), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def submit_call(_ref, _op), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def poll_reply(_handle), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def stop_polling(_handle), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def cancel(_handle), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def claim_reply(_handle, _claim), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def build_info, do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def register_function(_name, _target), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def unregister_function(_name), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def registered_functions, do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def registered_function(_name), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def set_callback_handler(_pid), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def callback_reply(_id, _answer), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def callback_runner(_id, _pid), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def set_callback_timeout(_ms), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def pending_callbacks, do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def interrupt, do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def interrupt_scope(_key), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def set_max_queue(_limit), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def queue_length, do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def pool_stats, do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def workers, do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def process_cpu_us, do: :erlang.nif_error(:nif_not_loaded)

  # Own-GIL contexts (native/erlang_python_nif/src/own_gil.rs).
  @doc false
  def own_gil_support, do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def own_gil_start(_scope, _paths, _priority), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def own_gil_stop(_scope), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def own_gil_running, do: :erlang.nif_error(:nif_not_loaded)

  # Isolated contexts' shared-memory channel (native/erlang_python_nif/src/isolated_channel.rs).
  @doc false
  def isolated_channel_open(_owner, _tag), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def isolated_channel_write(_channel, _frame), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def isolated_channel_close(_channel), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def isolated_channel_call(_channel, _ref, _frame), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def isolated_channel_cancel(_channel, _id), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def isolated_channel_running(_channel, _id), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def isolated_channel_take(_channel, _id), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def isolated_channel_innermost(_channel), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def isolated_channel_claim(_channel, _force), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def isolated_channel_unclaim(_channel), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def isolated_channel_fail(_channel, _reason), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def isolated_channel_stats(_channel), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def isolated_channel_polling(_channel, _mode), do: :erlang.nif_error(:nif_not_loaded)

  # Channels and buffers (native/erlang_python_nif/src/channel.rs, buffer.rs).
  @doc false
  def channel_new(_type, _max_size), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def channel_send(_channel, _item), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def channel_try_receive(_channel), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def channel_close(_channel), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def channel_info(_channel), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def channel_register_sync_waiter(_channel), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def channel_cancel_sync_waiter(_channel), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def channel_wait_writable(_channel), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def channel_wait_loop(_channel, _callback_id), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def channel_cancel_wait_loop(_channel, _callback_id), do: :erlang.nif_error(:nif_not_loaded)

  # Descriptor readiness for event queues (native/erlang_python_nif/src/fd_watch.rs).
  @doc false
  def fd_watch_new(_fd, _write, _callback_id), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def fd_watch_arm(_watch, _armed), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def fd_watch_rearm(_watch), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def fd_watch_info(_watch), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def fd_watch_release(_watch), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def buffer_new(_size), do: :erlang.nif_error(:nif_not_loaded)

  # Isolated contexts' handles (native/erlang_python_nif/src/isolated_guard.rs).
  @doc false
  def isolated_release_guard(_server, _os_pid, _id), do: :erlang.nif_error(:nif_not_loaded)

  # Memory ceilings (ErlangPython.Memory).
  def memory_open_scope(_key, _limit), do: :erlang.nif_error(:nif_not_loaded)
  def memory_set_scope_limit(_account, _limit), do: :erlang.nif_error(:nif_not_loaded)
  def memory_scope_usage(_account), do: :erlang.nif_error(:nif_not_loaded)
  def memory_reset_scope_peak(_account), do: :erlang.nif_error(:nif_not_loaded)
  def memory_set_interpreter_limit(_limit), do: :erlang.nif_error(:nif_not_loaded)
  def memory_interpreter_usage, do: :erlang.nif_error(:nif_not_loaded)
  def memory_reset_interpreter_peak, do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def buffer_write(_buffer, _data), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def buffer_write_dirty(_buffer, _data), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def buffer_close(_buffer), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def buffer_info(_buffer), do: :erlang.nif_error(:nif_not_loaded)

  # Descriptors (native/erlang_python_nif/src/fd.rs).
  @doc false
  def dup_fd(_fd), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def fd_close(_fd), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def fd_select(_fd, _mode, _owned), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def fd_unwatch(_fd), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def fd_protected(_fd), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def fd_socketpair, do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def fd_pipe, do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def fd_read(_fd, _max), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def fd_write(_fd, _data), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def fd_tcp_listen(_port), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def fd_tcp_connect(_host, _port), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def fd_tcp_accept(_fd), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def fd_udp_open(_port), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def fd_udp_sendto(_fd, _data, _host, _port), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def fd_udp_recvfrom(_fd, _max), do: :erlang.nif_error(:nif_not_loaded)
  @doc false
  def fd_udp_broadcast(_fd, _enabled), do: :erlang.nif_error(:nif_not_loaded)
end
