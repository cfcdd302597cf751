defmodule ErlangPython.GuidesTest do
  # Guides share __main__ (exec'd definitions), so they run one at a time.
  use ExUnit.Case, async: false

  alias ErlangPython.GuideExamples

  @guides Path.wildcard(Path.expand("../guides/*.md", __DIR__)) ++
            [Path.expand("../README.md", __DIR__)]

  for path <- @guides, File.exists?(path) do
    @path path
    describe Path.relative_to(path, Path.expand("..", __DIR__)) do
      test "every Elixir example runs" do
        GuideExamples.run_elixir!(@path)
      end

      test "every Python session passes doctest inside the VM" do
        {_attempted, failures} = GuideExamples.run_python_doctests(@path)
        assert failures == [], Enum.join(failures, "\n")
      end

      test "every code block is run or says why not" do
        for block <- GuideExamples.blocks(@path),
            block.lang not in ["elixir", "python", "erlang"] or
              (block.lang == "python" and not (block.code =~ ">>>")) do
          assert block.skip, "#{@path}:#{block.line}: a #{block.lang} block with no not-run marker"
        end
      end
    end
  end

  test "the guides this package promises exist and have runnable examples" do
    for name <- ["getting-started", "security"] do
      path = Path.expand("../guides/#{name}.md", __DIR__)
      assert File.exists?(path), "missing #{path}"
      assert GuideExamples.run_elixir!(path) > 0
    end

    {attempted, []} =
      GuideExamples.run_python_doctests(Path.expand("../guides/security.md", __DIR__))

    assert attempted >= 8
  end
end
