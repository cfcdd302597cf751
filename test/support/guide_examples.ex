defmodule ErlangPython.GuideExamples do
  @moduledoc """
  Runs the code blocks of a Markdown guide, so documentation cannot rot.

    * ```` ```elixir ```` blocks are evaluated in order, sharing bindings, with
      `Code.eval_string/3`; their pattern matches (`{:ok, 4.0} = ...`) are
      the assertions. A failed match raises and fails the test.
    * ```` ```python ```` blocks written as `>>>` sessions are run by Python's
      own `doctest` inside the embedded interpreter; any mismatch fails.
    * A block preceded by `<!-- not-run: reason -->` is skipped (config
      snippets, shell commands); the reason must be given.
    * ```` ```erlang ```` blocks holding a `-module(...)` are compiled and
      loaded; other Erlang blocks need a `not-run` marker or a mirror test.
  """

  @type block :: %{lang: String.t(), code: String.t(), line: pos_integer(), skip: String.t() | nil}

  @doc "Code blocks of a Markdown file, in order."
  @spec blocks(Path.t()) :: [block()]
  def blocks(path) do
    lines = path |> File.read!() |> String.split("\n")
    collect(Enum.with_index(lines, 1), nil, nil, [])
  end

  defp collect([], _skip, _open, acc), do: Enum.reverse(acc)

  defp collect([{line, number} | rest], skip, nil, acc) do
    cond do
      match = Regex.run(~r/^<!--\s*not-run:\s*(.+?)\s*-->/, line) ->
        collect(rest, Enum.at(match, 1), nil, acc)

      match = Regex.run(~r/^```(\w+)\s*$/, line) ->
        collect(rest, nil, %{lang: Enum.at(match, 1), line: number + 1, skip: skip, code: []}, acc)

      String.trim(line) == "" ->
        collect(rest, skip, nil, acc)

      true ->
        collect(rest, nil, nil, acc)
    end
  end

  defp collect([{line, _} | rest], _skip, open, acc) do
    if String.starts_with?(line, "```") do
      block = %{open | code: open.code |> Enum.reverse() |> Enum.join("\n")}
      collect(rest, nil, nil, [block | acc])
    else
      collect(rest, nil, %{open | code: [line | open.code]}, acc)
    end
  end

  @doc "Evaluates every runnable Elixir block of `path`; returns how many ran."
  @spec run_elixir!(Path.t()) :: non_neg_integer()
  def run_elixir!(path) do
    path
    |> blocks()
    |> Enum.filter(&(&1.lang == "elixir" and is_nil(&1.skip)))
    |> Enum.reduce({[], 0}, fn block, {binding, count} ->
      {_, binding} = Code.eval_string(block.code, binding, file: path, line: block.line)
      {binding, count + 1}
    end)
    |> elem(1)
  end

  @doc """
  Runs every Python `>>>` block of `path` with doctest inside the embedded
  interpreter. Returns `{attempted, failures_report}`.
  """
  @spec run_python_doctests(Path.t()) :: {non_neg_integer(), [String.t()]}
  def run_python_doctests(path) do
    sessions =
      path
      |> blocks()
      |> Enum.filter(&(&1.lang == "python" and is_nil(&1.skip) and &1.code =~ ">>>"))

    results =
      for block <- sessions do
        {:ok, {attempted, failed, report}} =
          ErlangPython.eval(
            "__import__('_erlang_impl._guide_doctest', fromlist=['run']).run(text, name)",
            %{text: block.code, name: "#{path}:#{block.line}"}
          )

        {attempted, if(failed > 0, do: [report], else: [])}
      end

    {results |> Enum.map(&elem(&1, 0)) |> Enum.sum(), Enum.flat_map(results, &elem(&1, 1))}
  end

  @doc "Compiles and loads every Erlang module block of `path`; returns the modules."
  @spec load_erlang_modules!(Path.t()) :: [module()]
  def load_erlang_modules!(path) do
    for block <- blocks(path),
        block.lang == "erlang",
        is_nil(block.skip),
        block.code =~ "-module(" do
      {:ok, tokens, _} = :erl_scan.string(String.to_charlist(block.code))
      forms = split_forms(tokens)
      {:ok, module, binary} = :compile.forms(forms, [:return_errors])
      {:module, ^module} = :code.load_binary(module, ~c"#{path}", binary)
      module
    end
  end

  defp split_forms(tokens) do
    tokens
    |> Enum.chunk_while(
      [],
      fn
        {:dot, _} = dot, acc -> {:cont, Enum.reverse([dot | acc]), []}
        token, acc -> {:cont, [token | acc]}
      end,
      fn
        [] -> {:cont, []}
        acc -> {:cont, Enum.reverse(acc), []}
      end
    )
    |> Enum.map(fn form_tokens ->
      {:ok, form} = :erl_parse.parse_form(form_tokens)
      form
    end)
  end
end
