defmodule ErlangPython.OptionsValidateTest do
  # Options.validate!/2 takes known options given once straight into the
  # defaults' map, and everything else through Keyword.validate!/2: both
  # paths must give the same options and the same errors.
  use ExUnit.Case, async: true

  alias ErlangPython.Options

  @defaults Options.defaults([:timeout, :kwargs, :decode, :context])

  test "given options replace their defaults, checked and normalised" do
    options = Options.validate!([kwargs: [a: 1], timeout: 5], @defaults)

    assert options == %{Map.new(@defaults) | kwargs: %{a: 1}, timeout: 5}
    assert Options.validate!([], @defaults) == Map.new(@defaults)
  end

  test "a repeated option is an error, as Keyword.validate!/2 makes it" do
    assert_raise ArgumentError, ~r/duplicate keys \[:timeout\]/, fn ->
      Options.validate!([timeout: 1, timeout: 2], @defaults)
    end

    assert_raise ArgumentError, ~r/duplicate keys/, fn ->
      ErlangPython.call(:operator, :add, [1, 2], timeout: 1_000, timeout: 2_000)
    end
  end

  test "an unknown option, or an entry that is not {atom, value}, is an error" do
    assert_raise ArgumentError, ~r/unknown keys \[:node\]/, fn ->
      Options.validate!([timeout: 1, node: :a@b], @defaults)
    end

    assert_raise ArgumentError, fn -> Options.validate!([{"timeout", 1}], @defaults) end
    assert_raise ArgumentError, fn -> Options.validate!([:decode], @defaults) end
    assert_raise ArgumentError, fn -> Options.validate!(%{timeout: 1}, @defaults) end
  end

  test "a bad value names its option" do
    assert_raise ArgumentError, ~r/timeout must be a non-negative integer/, fn ->
      Options.validate!([decode: false, timeout: -1], @defaults)
    end

    assert_raise ArgumentError, ~r/kwargs must be a map or keyword list/, fn ->
      Options.validate!([kwargs: [1, 2]], @defaults)
    end
  end
end
