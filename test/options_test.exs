defmodule ErlangPython.OptionsTest do
  # Changes the application environment: runs alone.
  use ExUnit.Case, async: false

  alias ErlangPython.Runtime

  describe "each function takes the options its documentation lists, and only those" do
    # {function, arguments before the options, options its doc lists}
    @functions [
      {:call, [:operator, :add, [1, 2]], [:timeout, :kwargs, :decode, :arrays, :context, :node]},
      {:eval, ["1 + 1", %{}], [:timeout, :decode, :arrays, :context, :node]},
      {:exec, ["pass"], [:timeout, :context, :node]},
      {:async_call, [:operator, :add, [1, 2]], [:kwargs, :decode, :context]},
      {:stream, [:builtins, :range, [3]], [:timeout, :kwargs, :context, :chunk_size, :max_delay]},
      {:stream_eval, ["range(3)", %{}], [:timeout, :context, :chunk_size, :max_delay]}
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

  test "the context, pool, import, preload, state and semaphore keys are configuration" do
    keys = [
      num_contexts: 3,
      imports: [:json],
      paths: ["/srv/app/python"],
      preload: "import json",
      max_state_entries: 10,
      max_concurrent: 7
    ]

    for {key, value} <- keys do
      previous = Application.fetch_env(:erlang_python, key)
      Application.put_env(:erlang_python, key, value)

      on_exit(fn ->
        case previous do
          {:ok, value} -> Application.put_env(:erlang_python, key, value)
          :error -> Application.delete_env(:erlang_python, key)
        end
      end)
    end

    config = Runtime.config()
    for {key, value} <- keys, do: assert(config[key] == value)
    assert Runtime.config(:num_contexts) == 3
  end

  test "the machine-dependent defaults are computed from the schedulers" do
    previous = Application.get_all_env(:erlang_python)

    for key <- [:num_contexts, :max_concurrent], Keyword.has_key?(previous, key) do
      Application.delete_env(:erlang_python, key)
      on_exit(fn -> Application.put_env(:erlang_python, key, previous[key]) end)
    end

    assert Runtime.config(:num_contexts) == System.schedulers_online()
    assert Runtime.config(:max_concurrent) == 2 * System.schedulers() + 1
    assert Runtime.config()[:num_contexts] == System.schedulers_online()
  end

  test "erlang_python's keys this implementation ignores start, with a warning" do
    Application.put_env(:erlang_python, :enable_memory_limits, true)
    on_exit(fn -> Application.delete_env(:erlang_python, :enable_memory_limits) end)

    log = ExUnit.CaptureLog.capture_log(fn -> assert :ok = Runtime.start() end)
    assert log =~ ":enable_memory_limits configuration has no effect"
  end

  test "the compile-time key of precompiled artifacts does not stop the start" do
    Application.put_env(:erlang_python, :precompiled_base_url, "https://example.invalid/v0")
    on_exit(fn -> Application.delete_env(:erlang_python, :precompiled_base_url) end)
    assert :ok = Runtime.start()
  end

  test "a misspelled configuration key raises when the interpreter starts" do
    Application.put_env(:erlang_python, :wokers, 2)
    on_exit(fn -> Application.delete_env(:erlang_python, :wokers) end)
    assert_raise ArgumentError, ~r/unknown keys \[:wokers\]/, fn -> Runtime.start() end
  end
end
