defmodule ErlangPython.Options do
  @moduledoc false
  # Every option of ErlangPython's functions, declared once: the defaults,
  # the checks and the option tables of the functions' docs all come from
  # @options below. Unknown names are refused by Keyword.validate!/2; a bad
  # value raises ArgumentError naming the option (a caller bug, not a
  # runtime failure).

  @default_timeout 30_000

  @options [
    timeout: [
      default: @default_timeout,
      type: "`t:timeout/0`",
      doc:
        "milliseconds to wait for the answer, or `:infinity`. On expiry the call " <>
          "returns `{:error, :timeout}`, its Python code is interrupted and its " <>
          "result, if any, discarded."
    ],
    kwargs: [
      default: %{},
      type: "map or keyword list",
      doc: "keyword arguments for the Python function (`**kwargs`)."
    ],
    decode: [
      default: true,
      type: "`t:boolean/0`",
      doc:
        "`false` returns an `ErlangPython.Object` handle even for a value that " <>
          "converts; by default only values without an Elixir form come back as handles."
    ],
    arrays: [
      default: false,
      type: "`t:boolean/0`",
      doc:
        "`true` returns every object with the buffer protocol in the result (numpy " <>
          "arrays, `array.array`, `memoryview`) as an `ErlangPython.Array` whose data " <>
          "is the Python buffer itself, not a copy."
    ],
    context: [
      default: nil,
      type: "`t:ErlangPython.Context.t/0` or `t:pid/0`",
      doc:
        "the namespace to run in instead of `__main__`: an `ErlangPython.Context` " <>
          "(`ErlangPython.Context.process/0` is the calling process's own), or the pid " <>
          "of an `ErlangPython.ContextServer` (its namespace, on its thread; " <>
          "`{:error, {:context_down, pid}}` when it is not running). With an object " <>
          "handle, only the thread matters: the context's."
    ],
    node: [
      default: nil,
      type: "`t:node/0`",
      doc:
        "run on another connected node (through `:erpc`), whose own erlang_python " <>
          "does the work; values are copied, errors and timeouts come back the same " <>
          "way. `{:error, {:nodedown, node}}` when it is not reachable."
    ],
    chunk_size: [
      default: 32,
      type: "`t:pos_integer/0`",
      doc: "items pulled from Python at a time."
    ],
    max_delay: [
      default: nil,
      type: "`t:non_neg_integer/0` or `nil`",
      doc:
        "milliseconds an item may wait for its chunk to fill: the chunk goes out " <>
          "once its first item has waited that long, full or not (`nil`: only when " <>
          "full, or at the end). An async generator is waited for with this deadline; " <>
          "a plain generator cannot be interrupted mid-item, so its chunk ends as soon " <>
          "as waiting as long again as for its last item would pass the deadline."
    ]
  ]

  @names Keyword.keys(@options)

  @typedoc "An option name."
  @type name ::
          :timeout | :kwargs | :decode | :arrays | :context | :node | :chunk_size | :max_delay

  @doc false
  # The default of a call's :timeout, in milliseconds; also the default of
  # the callback timeout (ErlangPython.Runtime).
  @spec default_timeout() :: pos_integer()
  def default_timeout, do: @default_timeout

  @doc false
  # `names`' defaults, as Keyword.validate!/2 takes them.
  @spec defaults([name()]) :: keyword()
  def defaults(names) do
    for name <- names, do: {name, Keyword.fetch!(@options, name)[:default]}
  end

  @doc false
  # Validates `opts`, which may hold only the options in `defaults`
  # (from defaults/1); returns every one of them as a map, defaults filled
  # in. Raises ArgumentError for an unknown option or a bad value.
  @spec validate!(term(), keyword()) :: map()
  def validate!([], defaults), do: Map.new(defaults)

  def validate!(opts, defaults) when is_list(opts) do
    # Keyword.validate!/2 builds lists and checks every key against every
    # default: 1.4 us for three options, a third of a small call. Options
    # that are all known and given once go straight into the defaults'
    # map; anything else takes Keyword.validate!/2's path, for its errors.
    case given(opts, Map.new(defaults), []) do
      :check_slowly ->
        opts
        |> Keyword.validate!(defaults)
        |> Map.new(fn {name, value} -> {name, check!(name, value)} end)

      options ->
        options
    end
  end

  def validate!(opts, _defaults) do
    raise ArgumentError, "options must be a keyword list, got: #{inspect(opts)}"
  end

  # `options` (the defaults' map) with each of `opts` checked and put in;
  # :check_slowly at an unknown or repeated key, or an entry that is not
  # `{atom, value}`.
  defp given([{name, value} | rest], options, seen)
       when is_atom(name) and is_map_key(options, name) do
    if name in seen,
      do: :check_slowly,
      else: given(rest, Map.put(options, name, check!(name, value)), [name | seen])
  end

  defp given([], options, _seen), do: options
  defp given(_opts, _options, _seen), do: :check_slowly

  defp check!(:timeout, :infinity), do: :infinity
  defp check!(:timeout, ms) when is_integer(ms) and ms >= 0, do: ms
  defp check!(:kwargs, kwargs) when is_map(kwargs), do: kwargs

  defp check!(:kwargs, kwargs) when is_list(kwargs) do
    if Keyword.keyword?(kwargs), do: Map.new(kwargs), else: bad!(:kwargs, kwargs)
  end

  defp check!(:decode, decode) when is_boolean(decode), do: decode
  defp check!(:arrays, arrays) when is_boolean(arrays), do: arrays
  defp check!(:context, nil), do: nil
  defp check!(:context, %ErlangPython.Context{} = context), do: context
  defp check!(:context, server) when is_pid(server), do: server
  defp check!(:node, node) when is_atom(node), do: node
  defp check!(:chunk_size, size) when is_integer(size) and size > 0, do: size
  defp check!(:max_delay, nil), do: nil
  defp check!(:max_delay, ms) when is_integer(ms) and ms >= 0, do: ms
  defp check!(name, value), do: bad!(name, value)

  @expected %{
    timeout: "a non-negative integer or :infinity",
    kwargs: "a map or keyword list",
    decode: "a boolean",
    arrays: "a boolean",
    context: "an ErlangPython.Context or a context process's pid",
    node: "a node name (an atom)",
    chunk_size: "a positive integer",
    max_delay: "a non-negative integer (milliseconds) or nil"
  }

  defp bad!(name, value) do
    raise ArgumentError, "#{name} must be #{@expected[name]}, got: #{inspect(value)}"
  end

  @doc false
  # A Markdown table of `names`, for a function's @doc.
  @spec table([name()]) :: String.t()
  def table(names) do
    rows =
      for name <- names do
        spec = Keyword.fetch!(@options, name)
        "| `#{inspect(name)}` | #{spec[:type]} | `#{inspect(spec[:default])}` | #{spec[:doc]} |"
      end

    Enum.join(["| option | type | default | what |", "|---|---|---|---|" | rows], "\n")
  end

  @doc false
  @spec names() :: [name()]
  def names, do: @names
end
