defmodule ErlangPython.OptionsTest do
  # Changes the application environment: runs alone.
  use ExUnit.Case, async: false

  alias ErlangPython.Runtime

  describe "each function takes the options its documentation lists, and only those" do
    # {function, arguments before the options, options its doc lists}
    @functions [
      {:call, [:operator, :add, [1, 2]], [:timeout, :kwargs, :decode, :context, :node]},
      {:eval, ["1 + 1", %{}], [:timeout, :decode, :context, :node]},
      {:exec, ["pass"], [:timeout, :context, :node]},
      {:async_call, [:operator, :add, [1, 2]], [:kwargs, :decode, :context]},
      {:stream, [:builtins, :range, [3]], [:timeout, :kwargs, :context, :chunk_size]},
      {:stream_eval, ["range(3)", %{}], [:timeout, :context, :chunk_size]}
    ]

    for {function, args, documented} <- @functions do
      @function function
      @args args
      @documented documented

      test "#{function}" do
        {:docs_v1, _, :elixir, _, _, _, docs} = Code.fetch_docs(ErlangPython)

        doc =
          Enum.find_value(docs, fn
            {{:function, @function, _}, _, _, %{"en" => doc}, _} -> doc
            _ -> nil
          end)

        for option <- @documented do
          assert doc =~ "| `#{inspect(option)}` |", "#{@function}'s doc has no row for #{option}"
        end

        for option <- ErlangPython.Options.names() -- @documented do
          refute doc =~ "| `#{inspect(option)}` |"

          assert_raise ArgumentError, ~r/unknown keys \[#{inspect(option)}\]/, fn ->
            apply(ErlangPython, @function, @args ++ [[{option, nil}]])
          end
        end
      end
    end
  end

  test "every public function of ErlangPython is in one of the documentation's groups" do
    groups = Enum.map(Mix.Project.config()[:docs][:groups_for_docs], &elem(&1, 0))
    {:docs_v1, _, :elixir, _, _, _, docs} = Code.fetch_docs(ErlangPython)

    public =
      for {{:function, name, arity}, _, _, doc, metadata} <- docs,
          doc != :hidden,
          do: {"#{name}/#{arity}", metadata[:group]}

    assert length(public) >= 23

    for {function, group} <- public do
      assert group in groups,
             "#{function} is in group #{inspect(group)}, not one of #{inspect(groups)}"
    end
  end

  test "a misspelled configuration key raises when the interpreter starts" do
    Application.put_env(:erlang_python, :wokers, 2)
    on_exit(fn -> Application.delete_env(:erlang_python, :wokers) end)
    assert_raise ArgumentError, ~r/unknown keys \[:wokers\]/, fn -> Runtime.start() end
  end
end
