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

  test "the LICENSE file is the license mix.exs and Cargo.toml declare" do
    assert Mix.Project.config()[:package][:licenses] == ["Apache-2.0"]

    assert File.read!(Path.join(@root, "native/erlang_python_nif/Cargo.toml")) =~
             ~s(license = "Apache-2.0")

    license = File.read!(Path.join(@root, "LICENSE"))
    assert license =~ ~r/Apache License\s+Version 2\.0, January 2004/
    assert "LICENSE" in Mix.Project.config()[:package][:files]
  end

  defp expected_path(":" <> erlang_module), do: erlang_module <> ".ex"

  defp expected_path("Mix.Tasks." <> _ = source) do
    "mix/tasks/" <> Mix.Task.task_name(Module.concat([source])) <> ".ex"
  end

  defp expected_path(source), do: Macro.underscore(source) <> ".ex"
end
