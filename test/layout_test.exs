defmodule ErlangPython.LayoutTest do
  use ExUnit.Case, async: true

  @root Path.expand("..", __DIR__)

  # lib/ and mix/ are laid out alike: a file's path is its module's name
  # (Mix tasks by their task name, as Mix names task files).
  test "every file under lib/ and mix/ is named after the module it defines" do
    files = Path.wildcard(Path.join(@root, "{lib,mix}/**/*.ex"))
    assert length(files) > 10

    for file <- files do
      [_, source] = Regex.run(~r/^defmodule ([\w.:]+) do/m, File.read!(file))
      [top | _] = Path.split(Path.relative_to(file, @root))
      assert Path.relative_to(file, @root) == Path.join(top, expected_path(source)), source
    end
  end

  defp expected_path(":" <> erlang_module), do: erlang_module <> ".ex"

  defp expected_path("Mix.Tasks." <> _ = source) do
    "mix/tasks/" <> Mix.Task.task_name(Module.concat([source])) <> ".ex"
  end

  defp expected_path(source), do: Macro.underscore(source) <> ".ex"
end
