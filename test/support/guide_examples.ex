defmodule ErlangPython.GuideExamples do
  @moduledoc """
  Runs the code blocks of a Markdown guide, so documentation cannot rot.

    * ```` ```elixir ```` blocks are evaluated in document order, sharing bindings, with
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

  @doc """
  Runs a guide: compiles its Erlang modules, then runs its Elixir blocks
  and Python sessions in document order (a Python session may use what an
  Elixir block registered just before). Raises on the first failure.
  Returns how many blocks of each language ran.
  """
  @spec run!(Path.t()) :: %{String.t() => non_neg_integer()}
  def run!(path) do
    modules = load_erlang_modules!(path)

    {_binding, counts} =
      path
      |> blocks()
      |> Enum.filter(&is_nil(&1.skip))
      |> Enum.reduce({[], %{"erlang" => length(modules)}}, fn block, {binding, counts} ->
        case run_block(path, block, binding) do
          {:ran, binding} -> {binding, Map.update(counts, block.lang, 1, &(&1 + 1))}
          :not_runnable -> {binding, counts}
        end
      end)

    counts
  end

  defp run_block(path, %{lang: "elixir"} = block, binding) do
    {_, binding} = Code.eval_string(block.code, binding, file: path, line: block.line)
    {:ran, binding}
  end

  defp run_block(path, %{lang: "python"} = block, binding) do
    if block.code =~ ">>>" do
      {:ok, {attempted, failed, report}} =
        ErlangPython.eval(
          "__import__('_erlang_impl._guide_doctest', fromlist=['run']).run(text, name)",
          %{text: block.code, name: "#{path}:#{block.line}"}
        )

      if failed > 0 or attempted == 0,
        do: raise(ExUnit.AssertionError, message: "#{path}:#{block.line}\n#{report}")

      {:ran, binding}
    else
      :not_runnable
    end
  end

  defp run_block(_path, _block, _binding), do: :not_runnable

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
