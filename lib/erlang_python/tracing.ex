defmodule ErlangPython.Tracing do
  @moduledoc """
  Spans from Python code, collected for Elixir.

      iex> :ok = ErlangPython.Tracing.enable()
      iex> :ok = ErlangPython.exec("import erlang\\nwith erlang.Span('load', rows=3) as span:\\n    span.event('parsed')")
      iex> {:ok, [span]} = ErlangPython.Tracing.spans()
      iex> {span.name, span.status, span.attributes, hd(span.events).name}
      {"load", :ok, %{"rows" => 3}, "parsed"}
      iex> ErlangPython.Tracing.disable()
      :ok
      iex> ErlangPython.Tracing.clear()
      :ok

  In Python, `erlang.Span(name, **attributes)` is a context manager
  (`span.event(name, **attrs)` records a moment within it) and
  `@erlang.trace(name=None)` wraps every call of a function in a span.
  While tracing is disabled (the default) spans record nothing.

  Each span is a map: `:name`, `:span_id`, `:parent_id` (the enclosing span
  in the same thread, or `nil`), `:start_time`, `:end_time` (monotonic
  microseconds), `:duration_us`, `:status` (`:ok`, or `:error` when an
  exception left the block), `:attributes`, `:end_attrs` (`"exception"`
  holds the exception's text), `:events` (most recent first, each with
  `:name`, `:attrs`, `:time`). Spans are listed in completion order and kept
  until `clear/0`.
  """

  @module "_erlang_impl._tracing"
  @span_keys ~w(name span_id parent_id start_time end_time duration_us status attributes end_attrs events)a
  @event_keys ~w(name attrs time)a

  @type span :: %{
          name: String.t(),
          span_id: pos_integer(),
          parent_id: pos_integer() | nil,
          start_time: integer(),
          end_time: integer(),
          duration_us: non_neg_integer(),
          status: :ok | :error,
          attributes: map(),
          end_attrs: map(),
          events: [%{name: String.t(), attrs: map(), time: integer()}]
        }

  @doc "Starts recording spans."
  @spec enable() :: :ok | {:error, ErlangPython.reason()}
  def enable, do: run(:enable)

  @doc "Stops recording spans (recorded ones are kept)."
  @spec disable() :: :ok | {:error, ErlangPython.reason()}
  def disable, do: run(:disable)

  @doc "Whether spans are being recorded."
  @spec enabled?() :: boolean()
  def enabled?, do: ErlangPython.call(@module, :enabled, []) == {:ok, true}

  @doc "The recorded spans, in completion order."
  @spec spans() :: {:ok, [span()]} | {:error, ErlangPython.reason()}
  def spans do
    with {:ok, spans} <- ErlangPython.call(@module, :spans, []) do
      {:ok, Enum.map(spans, &span/1)}
    end
  end

  @doc "Forgets the recorded spans."
  @spec clear() :: :ok | {:error, ErlangPython.reason()}
  def clear, do: run(:clear)

  defp run(function) do
    with {:ok, nil} <- ErlangPython.call(@module, function, []), do: :ok
  end

  defp span(raw) do
    span = atomize(raw, @span_keys)

    %{
      span
      | status: if(span.status == "error", do: :error, else: :ok),
        events: Enum.map(span.events, &atomize(&1, @event_keys))
    }
  end

  # Only the fixed keys become atoms: no atom is made from Python data.
  defp atomize(map, keys), do: Map.new(keys, &{&1, Map.get(map, Atom.to_string(&1))})
end
