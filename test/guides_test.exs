defmodule ErlangPython.GuidesTest do
  # Guides share __main__ and registered names, so they run one at a time.
  use ExUnit.Case, async: false

  alias ErlangPython.GuideExamples

  @root Path.expand("..", __DIR__)
  @guides Path.wildcard(Path.join(@root, "guides/*.md")) ++ [Path.join(@root, "README.md")]

  # Guides whose examples use the test venv's libraries (numpy, pandas,
  # scikit-learn; test/support/test_venv.ex).
  @needs_test_venv ["machine-learning.md"]

  for path <- @guides do
    @path path
    if Path.basename(path) in @needs_test_venv, do: @tag(:test_venv)

    test "#{Path.relative_to(path, @root)}: every example runs, in order" do
      GuideExamples.run!(@path)
    end

    test "#{Path.relative_to(path, @root)}: every code block is run or says why not" do
      for block <- GuideExamples.blocks(@path), is_nil(block.skip) do
        runnable =
          block.lang == "elixir" or (block.lang == "python" and block.code =~ ">>>") or
            (block.lang == "erlang" and block.code =~ "-module(")

        assert runnable, "#{@path}:#{block.line}: a #{block.lang} block with no not-run marker"
      end
    end
  end

  test "the promised guides exist, with examples in each language they show" do
    runs = %{
      "getting-started" => GuideExamples.run!(Path.join(@root, "guides/getting-started.md")),
      "security" => GuideExamples.run!(Path.join(@root, "guides/security.md")),
      "threading" => GuideExamples.run!(Path.join(@root, "guides/threading.md")),
      "type-conversion" => GuideExamples.run!(Path.join(@root, "guides/type-conversion.md")),
      "erlang" => GuideExamples.run!(Path.join(@root, "guides/erlang.md")),
      "deployment" => GuideExamples.run!(Path.join(@root, "guides/deployment.md")),
      "asyncio" => GuideExamples.run!(Path.join(@root, "guides/asyncio.md")),
      "reactors" => GuideExamples.run!(Path.join(@root, "guides/reactors.md")),
      "contexts" => GuideExamples.run!(Path.join(@root, "guides/contexts.md")),
      "state" => GuideExamples.run!(Path.join(@root, "guides/state-and-observability.md")),
      "event-loop" => GuideExamples.run!(Path.join(@root, "guides/event-loop.md")),
      "parallelism" => GuideExamples.run!(Path.join(@root, "guides/parallelism.md"))
    }

    assert runs["getting-started"]["elixir"] >= 10
    assert runs["security"]["python"] >= 4
    assert runs["security"]["elixir"] >= 4
    assert runs["security"]["erlang"] >= 1
    assert runs["threading"]["elixir"] >= 3
    assert runs["type-conversion"]["elixir"] >= 4
    assert runs["erlang"]["erlang"] == 2
    assert runs["erlang"]["elixir"] >= 3
    assert runs["contexts"]["elixir"] >= 6
    assert runs["state"]["elixir"] >= 5
    assert runs["deployment"]["elixir"] >= 1
    assert runs["parallelism"]["elixir"] >= 6
    assert runs["asyncio"]["elixir"] >= 3
    assert runs["asyncio"]["python"] >= 2
    assert runs["reactors"]["elixir"] >= 6
    assert runs["reactors"]["erlang"] == 1
    assert runs["reactors"]["python"] >= 1
    assert runs["type-conversion"]["elixir"] >= 6
    assert runs["event-loop"]["elixir"] >= 6
    assert runs["event-loop"]["python"] >= 2
    assert runs["event-loop"]["erlang"] == 1
  end
end
