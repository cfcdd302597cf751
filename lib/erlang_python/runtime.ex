defmodule ErlangPython.Runtime do
  # The only place these defaults are written; the NIF takes every start
  # option explicitly.
  @config_defaults [
    python_paths: [],
    max_queue: 100_000,
    callback_timeout: ErlangPython.Options.default_timeout(),
    workers: 1,
    worker_thread_priority: :normal,
    start: :boot,
    venv: nil,
    imports: [],
    paths: [],
    preload: nil,
    max_state_entries: :infinity,
    memory_limit: :infinity,
    pool_stats_interval: nil
  ]

  # Keys whose default depends on the machine: computed when read (default/1).
  @machine_dependent [:num_contexts, :max_concurrent]

  # Read at compile time, by the Mix compiler (ErlangPython.Build.Precompiled),
  # but in the same application environment.
  @compile_time_keys [
    :precompiled_base_url,
    # ErlangPython.Deps: installed at compile time, activated in after_start/0.
    :python_deps,
    :python_deps_installer,
    :python_deps_timeout
  ]

  # Read by ErlangPython.OwnGil when a context starts.
  @own_gil_keys [:own_gil_thread_priority, :own_gil_nice]

  # Keys of erlang_python's configuration this implementation does not act
  # on: accepted, so a configuration written for erlang_python starts, and
  # logged as ignored.
  @ignored_keys [
    :context_mode,
    :enable_memory_limits,
    :event_loop_pool_size,
    :event_loop_pool_owngil
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
  | `:worker_thread_priority` | `#{inspect(@config_defaults[:worker_thread_priority])}` | how those threads are scheduled against the VM's schedulers: `:normal`, `{:nice, 1..19}` or `:idle`, as own-GIL contexts' `:thread_priority` (see "Worker thread priority" below) |
  | `:start` | `#{inspect(@config_defaults[:start])}` | `:lazy` starts the interpreter at the first call instead of with the application |
  | `:venv` | `#{inspect(@config_defaults[:venv])}` | a virtualenv to activate at start (see `ErlangPython.activate_venv/1`) |
  | `:num_contexts` | `System.schedulers_online()` | context processes in the default pool (`ErlangPython.Pool`) |
  | `:imports` | `#{inspect(@config_defaults[:imports])}` | modules, or `{module, function}`, imported at start and in each new context (`ErlangPython.Imports`) |
  | `:paths` | `#{inspect(@config_defaults[:paths])}` | directories put on `sys.path` once the interpreter runs, recorded by `ErlangPython.Imports` (erlang_python's key; `:python_paths` applies before start) |
  | `:preload` | `#{inspect(@config_defaults[:preload])}` | Python code run in each new context (`ErlangPython.Preload`) |
  | `:max_state_entries` | `#{inspect(@config_defaults[:max_state_entries])}` | keys `ErlangPython.State` holds at most; read at each store |
  | `:memory_limit` | `#{inspect(@config_defaults[:memory_limit])}` | a ceiling in bytes on what the whole interpreter allocates (`ErlangPython.Memory.set_limit/2`; see `guides/memory.md`) |
  | `:pool_stats_interval` | `#{inspect(@config_defaults[:pool_stats_interval])}` | milliseconds between two emissions of the pool's events (`ErlangPython.Telemetry`); `nil` emits none |
  | `:max_concurrent` | `2 * System.schedulers() + 1` | `:py` calls running at once (`ErlangPython.Semaphore`) |

  `:precompiled_base_url` is read at compile time (see
  `guides/deployment.md`). An unknown key raises `ArgumentError` when the
  interpreter starts. Keys of erlang_python's configuration that this
  implementation does not act on
  (#{Enum.map_join(@ignored_keys, ", ", &"`#{inspect(&1)}`")}) are accepted,
  so a configuration written for erlang_python starts, and logged as ignored.

  ## Worker thread priority

  A worker running CPU-bound Python at the schedulers' own priority can
  make the BEAM's timers fire a hundred milliseconds late or more on Linux
  (EEVDF kernels): a scheduler out of work calls `sched_yield()` while it
  spins, and each yield hands the CPU to the Python thread until the next
  tick. `worker_thread_priority: {:nice, 19}` keeps the VM responsive, at
  the price of Python waiting while the VM is busy; see
  `ErlangPython.OwnGil` and `guides/parallelism.md` for the mechanism and
  figures. The default stays `:normal`. Threads that Python starts from a
  worker inherit its priority. Outside Linux the setting does nothing.

  Requests are sent to the interpreter's thread and answered with a message;
  `request/2` waits for it with a timeout and guarantees that a reply which
  arrives too late is never left in the caller's mailbox.
  """

  alias ErlangPython.{Native, Request}

  require Logger

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

    for key <- @ignored_keys, Keyword.has_key?(config, key) do
      Logger.warning("erlang_python: the #{inspect(key)} configuration has no effect here")
    end

    options = %{
      priv_dir: to_string(:code.priv_dir(:erlang_python)),
      paths: Enum.map(config[:python_paths], &to_string/1),
      max_queue: config[:max_queue],
      callback_timeout: config[:callback_timeout],
      workers: config[:workers],
      thread_priority:
        ErlangPython.OwnGil.check_thread_priority!(
          config[:worker_thread_priority],
          "config :erlang_python, :worker_thread_priority"
        ),
      # Sets from Python are built as this Elixir's own %MapSet{}: 1.18
      # dropped the `version: 2` field, and a struct in the other shape
      # would not be `==` to the user's sets.
      mapset_version: MapSet.new() |> Map.from_struct() |> Map.get(:version),
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
    defaults = @config_defaults ++ Enum.map(@machine_dependent, &{&1, default(&1)})

    Keyword.validate!(
      Application.get_all_env(:erlang_python),
      defaults ++ @compile_time_keys ++ @own_gil_keys ++ @ignored_keys
    )
  end

  @doc false
  # One key of the configuration, its default filled in; for keys read at
  # each use (they may change at run time), so not validated here.
  @spec config(atom()) :: term()
  def config(key), do: Application.get_env(:erlang_python, key, default(key))

  defp default(:num_contexts), do: System.schedulers_online()
  defp default(:max_concurrent), do: System.schedulers() * 2 + 1
  defp default(key), do: Keyword.fetch!(@config_defaults, key)

  @doc false
  # Runs once the callback machinery is up: routes Python's output and
  # logging into Elixir, and activates the configured virtualenv.
  @spec after_start() :: :ok | {:error, term()}
  def after_start do
    with :ok <- ErlangPython.Memory.set_limit(:interpreter, config()[:memory_limit]),
         :ok <- ErlangPython.exec("__import__('_erlang_impl._io', fromlist=['install']).install()"),
         :ok <- ErlangPython.Logging.sync_level(),
         :ok <- activate_venv(config()[:venv]) do
      # Declared Python dependencies come last, so their environment wins
      # over venv: (a missing one is logged, not fatal).
      _ = ErlangPython.Deps.activate()
      :ok
    end
  end

  defp activate_venv(nil), do: :ok

  defp activate_venv(path) do
    with {:ok, _info} <- ErlangPython.Venv.activate(path), do: :ok
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

  # How many times a caller polls for its reply (each poll spins a few
  # microseconds in the NIF, then the caller yields) before it waits in
  # receive (when polling pays at all: see request/2).
  @polls 10

  @doc false
  # Queues `op` without waiting (ErlangPython.async_call/4).
  @spec start_request(Request.t()) :: ErlangPython.AsyncCall.t() | {:error, term()}
  def start_request(op) do
    ref = make_ref()

    # Its reply is kept out of the mailbox until awaited (ErlangPython.KeptReply).
    case submit({:erlang_python_kept, ref}, op) do
      {:error, _} = error -> error
      handle -> %ErlangPython.AsyncCall{ref: ref, handle: handle, owner: self()}
    end
  end

  @doc false
  def await_request(%ErlangPython.AsyncCall{ref: ref, handle: handle, owner: owner}, timeout) do
    if owner != self() do
      raise ArgumentError, "only the process that started a call can await it"
    end

    case handle do
      {:isolated, server} -> ErlangPython.Isolated.await(server, ref, timeout)
      job -> ErlangPython.KeptReply.await(job, timeout)
    end
  end

  @doc false
  # Sends `op` to the interpreter thread and waits up to `timeout` for the reply.
  @spec request(Request.t(), timeout()) :: term()
  def request(op, timeout) do
    ref = make_ref()

    # Poll only while the workers spin (a core is free and replies come
    # within microseconds; they decide, see the threading guide) and
    # nothing else waits to run here: then a scheduler put to sleep and
    # woken again would cost more than the whole round trip, and a small
    # reply is taken from the job rather than sent as a message
    # (native/erlang_python_nif/src/polled_reply.rs). Otherwise a plain
    # receive: the process is suspended and the scheduler runs other work.
    # The submit asks the workers (Native.submit_call/2); the run queues are
    # looked at once the request is queued, while a worker runs it (poll/4
    # with no polls left stops polling).
    case submit_call(ref, op) do
      {:error, _} = error ->
        error

      {:poll, handle} ->
        if :erlang.statistics(:total_run_queue_lengths) == 0,
          do: poll(ref, handle, timeout, @polls),
          else: poll(ref, handle, timeout, 0)

      handle ->
        await(ref, handle, timeout)
    end
  end

  # submit/2, ready to be polled while the workers spin ({:poll, handle}).
  defp submit_call(ref, op) do
    case Native.submit_call(ref, op) do
      :too_large -> Native.submit_dirty(ref, op)
      {:error, :not_started} -> submit(ref, op)
      handle_or_error -> handle_or_error
    end
  end

  # Every poll ends in the reply, or in stop_polling/1 (the reply then
  # comes as a message) before the caller waits in await/3: a reply left
  # in the job is never waited for in the mailbox.
  defp poll(ref, handle, timeout, 0) do
    case Native.stop_polling(handle) do
      {:reply, reply} -> decoded(reply)
      :sent -> await(ref, handle, timeout)
    end
  end

  defp poll(ref, handle, timeout, polls) do
    case Native.poll_reply(handle) do
      {:reply, reply} ->
        decoded(reply)

      :waiting ->
        :erlang.yield()
        poll(ref, handle, timeout, polls - 1)

      :sent ->
        await(ref, handle, timeout)
    end
  end

  # A large plain result comes as one external-format binary, decoded here
  # by a BIF that yields (native/erlang_python_nif/src/convert/external.rs).
  # `:safe`: it names only atoms that exist already.
  defp decoded({:etf, external}), do: :erlang.binary_to_term(external, [:safe])
  defp decoded(reply), do: reply

  defp await(ref, handle, timeout) do
    receive do
      {^ref, reply} -> decoded(reply)
    after
      timeout ->
        case Native.cancel(handle) do
          :cancelled ->
            {:error, :timeout}

          # The reply was committed before we cancelled: it is in flight,
          # take it so it cannot linger in the mailbox.
          :done ->
            receive do
              {^ref, reply} -> decoded(reply)
            end
        end
    end
  end
end
