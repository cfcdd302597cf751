defmodule ErlangPython.Runtime do
  # The only place these defaults are written; the NIF takes every start
  # option explicitly.
  @config_defaults [
    python_paths: [],
    max_queue: 100_000,
    callback_timeout: ErlangPython.Options.default_timeout(),
    workers: 1,
    start: :boot,
    venv: nil
  ]

  @moduledoc """
  Starting the embedded interpreter and talking to its thread.

  The interpreter starts with the `:erlang_python` application. It is one per
  OS process and lives as long as the VM (CPython cannot be safely restarted);
  starting it again is a no-op.

  ## Configuration

      config :erlang_python,
        python_paths: ["/srv/app/python"],
        workers: 2

  | key | default | what |
  |---|---|---|
  | `:python_paths` | `#{inspect(@config_defaults[:python_paths])}` | directories appended to `sys.path` |
  | `:max_queue` | `#{inspect(@config_defaults[:max_queue])}` | requests that may wait before calls return `{:error, :overloaded}` |
  | `:callback_timeout` | `#{inspect(@config_defaults[:callback_timeout])}` | milliseconds Python waits for a registered Elixir function (the same default as a call's `:timeout`) |
  | `:workers` | `#{inspect(@config_defaults[:workers])}` | threads serving requests (at most 64) |
  | `:start` | `#{inspect(@config_defaults[:start])}` | `:lazy` starts the interpreter at the first call instead of with the application |
  | `:venv` | `#{inspect(@config_defaults[:venv])}` | a virtualenv to activate at start (see `ErlangPython.activate_venv/1`) |

  An unknown key raises `ArgumentError` when the interpreter starts.

  Requests are sent to the interpreter's thread and answered with a message;
  `request/2` waits for it with a timeout and guarantees that a reply which
  arrives too late is never left in the caller's mailbox.
  """

  alias ErlangPython.{Native, Request}

  @doc """
  Starts the interpreter, once, if it is not running: at application start
  by default, or at the first call with `config :erlang_python, start:
  :lazy`. Returns `:ok` or `{:error, {:python_init_failed, text}}`.
  """
  @spec ensure_started() :: :ok | {:error, term()}
  def ensure_started do
    if Native.started() and :persistent_term.get(__MODULE__, false) do
      :ok
    else
      # One starter at a time; the others find it done.
      :global.trans({__MODULE__, :start}, fn ->
        if :persistent_term.get(__MODULE__, false) do
          :ok
        else
          with :ok <- start(), :ok <- after_start() do
            :persistent_term.put(__MODULE__, true)
          end
        end
      end)
    end
  end

  @doc false
  @spec start() :: :ok | {:error, term()}
  def start do
    config = config()

    options = %{
      priv_dir: to_string(:code.priv_dir(:erlang_python)),
      paths: Enum.map(config[:python_paths], &to_string/1),
      max_queue: config[:max_queue],
      callback_timeout: config[:callback_timeout],
      workers: config[:workers],
      otp_version: otp_version()
    }

    case Native.start(options) do
      :ok -> :ok
      {:ok, :already_started} -> :ok
      {:error, _} = error -> error
    end
  end

  # The full OTP version ("27.3.4"), from the release's OTP_VERSION file;
  # the major release alone when that file is missing.
  defp otp_version do
    release = :erlang.system_info(:otp_release)
    path = Path.join([:code.root_dir(), "releases", release, "OTP_VERSION"])

    case File.read(path) do
      {:ok, text} -> String.trim(text)
      {:error, _} -> to_string(release)
    end
  end

  @doc false
  # The application's configuration, defaults filled in. Raises
  # ArgumentError for an unknown key.
  @spec config() :: keyword()
  def config do
    Keyword.validate!(Application.get_all_env(:erlang_python), @config_defaults)
  end

  @doc false
  # Runs once the callback machinery is up: routes Python's output and
  # logging into Elixir, and activates the configured virtualenv.
  @spec after_start() :: :ok | {:error, term()}
  def after_start do
    with :ok <- ErlangPython.exec("__import__('_erlang_impl._io', fromlist=['install']).install()") do
      case config()[:venv] do
        nil -> :ok
        path -> with {:ok, _info} <- ErlangPython.Venv.activate(path), do: :ok
      end
    end
  end

  @doc """
  Sets how long Python waits for a registered Elixir function to answer
  before raising `TimeoutError` (milliseconds; applies to calls made from
  now on).
  """
  @spec set_callback_timeout(pos_integer()) :: :ok
  def set_callback_timeout(ms) when is_integer(ms) and ms > 0, do: Native.set_callback_timeout(ms)

  @doc """
  Sets how many requests may wait for the interpreter before calls return
  `{:error, :overloaded}` at once (see the `:max_queue` configuration).
  """
  @spec set_max_queue(pos_integer()) :: :ok | {:error, :not_started}
  def set_max_queue(limit) when is_integer(limit) and limit > 0 do
    if Native.set_max_queue(limit), do: :ok, else: {:error, :not_started}
  end

  @doc """
  How many worker threads serve requests (the `:workers` configuration).
  More than one lets calls that release the GIL (sleeping, I/O, numpy) run
  at the same time; a context always runs on the same one.
  """
  @spec workers() :: non_neg_integer()
  def workers, do: Native.workers()

  @doc "How many requests are waiting for the interpreter right now."
  @spec queue_length() :: non_neg_integer()
  def queue_length, do: Native.queue_length()

  @doc false
  # ErlangPython.pool_stats/0.
  @spec pool_stats() :: map() | nil
  def pool_stats, do: Native.pool_stats()

  # Requests too large to copy within a normal scheduler's time slice are
  # copied on a dirty scheduler instead (the NIF says :too_large).
  defp submit(ref, op) do
    case Native.submit(ref, op) do
      :too_large ->
        Native.submit_dirty(ref, op)

      {:error, :not_started} ->
        with :ok <- ensure_started(), do: Native.submit(ref, op)

      handle_or_error ->
        handle_or_error
    end
  end

  @doc false
  # Queues `op` without waiting (ErlangPython.async_call/4).
  @spec start_request(Request.t()) :: ErlangPython.AsyncCall.t() | {:error, term()}
  def start_request(op) do
    ref = make_ref()

    case submit(ref, op) do
      {:error, _} = error -> error
      handle -> %ErlangPython.AsyncCall{ref: ref, handle: handle, owner: self()}
    end
  end

  @doc false
  def await_request(%ErlangPython.AsyncCall{ref: ref, handle: handle, owner: owner}, timeout) do
    if owner != self() do
      raise ArgumentError, "only the process that started a call can await it"
    end

    await(ref, handle, timeout)
  end

  @doc false
  # Sends `op` to the interpreter thread and waits up to `timeout` for the reply.
  @spec request(Request.t(), timeout()) :: term()
  def request(op, timeout) do
    ref = make_ref()

    case submit(ref, op) do
      {:error, _} = error ->
        error

      # A plain receive: the process is suspended until the reply comes,
      # and the scheduler runs other processes (or, with none, spins only
      # as long as the VM's own busy-wait settings allow) instead of polling.
      handle ->
        await(ref, handle, timeout)
    end
  end

  defp await(ref, handle, timeout) do
    receive do
      {^ref, reply} -> reply
    after
      timeout ->
        case Native.cancel(handle) do
          :cancelled ->
            {:error, :timeout}

          # The reply was committed before we cancelled: it is in flight,
          # take it so it cannot linger in the mailbox.
          :done ->
            receive do
              {^ref, reply} -> reply
            end
        end
    end
  end
end
