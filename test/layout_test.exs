defmodule ErlangPython.LayoutTest do
  use ExUnit.Case, async: true

  @root Path.expand("..", __DIR__)

  # lib/ and mix/ are laid out alike: a file's path is its module's name
  # (Mix tasks by their task name, as Mix names task files).
  test "every file under lib/ and mix/ is named after the module it defines" do
    files = Path.wildcard(Path.join(@root, "{lib,mix}/**/*.ex"))
    assert length(files) > 10

    for file <- files do
      [_, source] = Regex.run(~r/^def(?:module|protocol) ([\w.:]+) do/m, File.read!(file))
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

  test "the README's layout table covers every tracked file, and names only paths that exist" do
    readme = File.read!(Path.join(@root, "README.md"))
    [_, layout] = Regex.run(~r/^## Layout\n(.*?)^## /ms, readme)

    paths =
      for "| " <> row <- String.split(layout, "\n"),
          [first_cell | _] = String.split(row, " | "),
          [_, path] <- Regex.scan(~r/`([^`]+)`/, first_cell),
          path <- expand_braces(path),
          do: path

    for path <- paths, do: assert(File.exists?(Path.join(@root, path)), "no #{path}")

    {tracked, 0} = System.cmd("git", ["ls-files"], cd: @root)

    for file <- String.split(tracked, "\n", trim: true), file not in ["README.md", ".gitignore"] do
      covered? =
        Enum.any?(
          paths,
          &(file == &1 or String.starts_with?(file, String.trim_trailing(&1, "/") <> "/"))
        )

      assert covered?, "README's layout table does not cover #{file}"
    end
  end

  # "a/{b,c}.ex" -> ["a/b.ex", "a/c.ex"]
  defp expand_braces(path) do
    case Regex.run(~r/^(.*?)\{([^}]*)\}(.*)$/, path) do
      [_, before, choices, rest] ->
        Enum.flat_map(String.split(choices, ","), &expand_braces(before <> &1 <> rest))

      nil ->
        [path]
    end
  end

  defp expected_path(":" <> erlang_module), do: erlang_module <> ".ex"

  defp expected_path("Mix.Tasks." <> _ = source) do
    "mix/tasks/" <> Mix.Task.task_name(Module.concat([source])) <> ".ex"
  end

  defp expected_path(source), do: Macro.underscore(source) <> ".ex"
end
