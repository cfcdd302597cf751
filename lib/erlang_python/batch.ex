defmodule ErlangPython.Batch do
  @moduledoc """
  Many calls at once, results in order.

      iex> ErlangPython.Batch.gather([{:math, :sqrt, [16]}, {:math, :sqrt, [25]}])
      {:ok, [4.0, 5.0]}
      iex> {:error, {:gather_failed, [{2, %ErlangPython.Error{type: "ValueError"}}]}} =
      ...>   ErlangPython.Batch.gather([{:math, :sqrt, [4]}, {:math, :sqrt, [-1]}])

  `gather/2` starts every call with `ErlangPython.async_call/4` (coroutine
  functions run concurrently on the asyncio loop; plain functions queue on
  the interpreter) and awaits them all. `parallel/2` runs each call in its
  own process on the contexts of a pool, round-robin: with several worker
  threads (`config :erlang_python, workers: n`), calls that release the GIL
  overlap.
  """

  alias ErlangPython.{Options, Pool}

  @typedoc "A call: `{module, function, args}`."
  @type call :: {ErlangPython.name(), ErlangPython.name(), list()}

  @doc """
  Runs `calls` concurrently through `ErlangPython.async_call/4`; `{:ok,
  results}` in order, or `{:error, {:gather_failed, [{index, reason}]}}`
  (indexes from 1) naming every call that failed.

  Options: `:timeout` bounds each await (default 30 s); `:context` is
  where the calls run, as for `ErlangPython.call/4`.
  """
  @spec gather([call()], keyword()) ::
          {:ok, [term()]} | {:error, {:gather_failed, [{pos_integer(), term()}]}}
  def gather(calls, opts \\ []) when is_list(calls) do
    opts = Keyword.validate!(opts, [:context, timeout: Options.default_timeout()])
    call_opts = if opts[:context], do: [context: opts[:context]], else: []

    calls
    |> Enum.map(fn {module, function, args} ->
      ErlangPython.async_call(module, function, args, call_opts)
    end)
    |> Enum.map(&ErlangPython.await(&1, opts[:timeout]))
    |> collect()
  end

  @doc """
  Runs `calls` in parallel processes on the contexts of `pool` (default
  `:default`); `{:ok, results}` in order, or the first error.
  """
  @spec parallel([call()], keyword()) :: {:ok, [term()]} | {:error, term()}
  def parallel(calls, opts \\ []) when is_list(calls) do
    opts = Keyword.validate!(opts, pool: :default, timeout: Options.default_timeout())

    with {:ok, contexts} <- pool_contexts(opts[:pool]) do
      contexts = List.to_tuple(contexts)

      calls
      |> Enum.with_index()
      |> Enum.map(fn {{module, function, args}, index} ->
        context = elem(contexts, rem(index, tuple_size(contexts)))

        Task.async(fn ->
          ErlangPython.call(module, function, args, context: context, timeout: opts[:timeout])
        end)
      end)
      |> Task.await_many(:infinity)
      |> Enum.reduce_while({:ok, []}, fn
        {:ok, value}, {:ok, acc} -> {:cont, {:ok, [value | acc]}}
        error, _acc -> {:halt, error}
      end)
      |> case do
        {:ok, values} -> {:ok, Enum.reverse(values)}
        error -> error
      end
    end
  end

  defp pool_contexts(pool) do
    with {:ok, _context} <- Pool.context(pool) do
      case Pool.contexts(pool) do
        [] -> {:error, {:pool_not_started, pool}}
        contexts -> {:ok, contexts}
      end
    end
  end

  defp collect(results) do
    failures = for {{:error, reason}, index} <- Enum.with_index(results, 1), do: {index, reason}

    if failures == [],
      do: {:ok, Enum.map(results, fn {:ok, value} -> value end)},
      else: {:error, {:gather_failed, failures}}
  end
end
