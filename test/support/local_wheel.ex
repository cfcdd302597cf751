defmodule ErlangPython.LocalWheel do
  @moduledoc """
  A minimal pure-Python wheel written by hand, so installer tests need no
  package index and no build backend.
  """

  @doc """
  Writes `<name>-<version>-py3-none-any.whl` into `dir`, its module setting
  `VALUE = value`; `extra_files` (`{path, content}`) go in beside it.
  """
  @spec build(Path.t(), String.t(), String.t(), String.t(), [{String.t(), String.t()}]) ::
          Path.t()
  def build(dir, name, version \\ "0.1", value \\ "42", extra_files \\ []) do
    dist_info = "#{name}-#{version}.dist-info"

    metadata = [
      {"#{dist_info}/METADATA", "Metadata-Version: 2.1\nName: #{name}\nVersion: #{version}\n"},
      {"#{dist_info}/WHEEL",
       "Wheel-Version: 1.0\nGenerator: erlang_python tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    ]

    files = [{"#{name}/__init__.py", "VALUE = #{value}\n"} | extra_files] ++ metadata

    record =
      Enum.map_join(files, "", fn {path, content} ->
        digest = :crypto.hash(:sha256, content) |> Base.url_encode64(padding: false)
        "#{path},sha256=#{digest},#{byte_size(content)}\n"
      end) <> "#{dist_info}/RECORD,,\n"

    entries =
      for {path, content} <- files ++ [{"#{dist_info}/RECORD", record}],
          do: {String.to_charlist(path), content}

    File.mkdir_p!(dir)
    wheel = Path.join(dir, "#{name}-#{version}-py3-none-any.whl")
    {:ok, _} = :zip.create(String.to_charlist(wheel), entries)
    wheel
  end
end
