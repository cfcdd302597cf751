defmodule ErlangPython.TestHelpers do
  @moduledoc "Helpers shared by the test suite: `import ErlangPython.TestHelpers`."

  @doc """
  A name no other test uses, `"<prefix>_<n>"`: registered function names,
  Python globals and files are shared by tests running at the same time.
  """
  @spec unique(String.t()) :: String.t()
  def unique(prefix), do: "#{prefix}_#{System.unique_integer([:positive])}"

  @doc """
  Calls `check` until it returns a truthy value, at most `:attempts` times
  (default 100), `:interval` milliseconds apart (default 20); returns
  whether it ever held.

  For conditions nothing announces (a garbage collection, a queue length);
  where a message can say when something happened, wait for the message.
  """
  # `(... -> term())`: Elixir 1.14 and 1.18 format a zero-arity fun type
  # differently (`(() -> t)` and `(-> t)`); both keep this one.
  @spec eventually((... -> term()), keyword()) :: boolean()
  def eventually(check, opts \\ []) do
    opts = Keyword.validate!(opts, attempts: 100, interval: 20)
    poll(check, opts[:attempts], opts[:interval])
  end

  defp poll(check, attempts, interval) do
    cond do
      check.() -> true
      attempts <= 1 -> false
      true -> Process.sleep(interval) && poll(check, attempts - 1, interval)
    end
  end

  @doc """
  The reply to evaluating `code` as the interpreter thread sends it, before
  `ErlangPython.Runtime` decodes it (`{:etf, binary}` when the result took
  the external-format route): for tests of that route.
  """
  @spec raw_reply(String.t(), map(), timeout()) :: term()
  def raw_reply(code, locals \\ %{}, timeout \\ 10_000) do
    import ExUnit.Assertions

    op =
      code
      |> ErlangPython.Request.eval(locals)
      |> ErlangPython.Encoding.encode_request()
      |> ErlangPython.Request.with_options(%{timeout: timeout, context: nil})

    ref = make_ref()
    handle = ErlangPython.Native.submit(ref, op)
    assert is_reference(handle)
    assert_receive {^ref, reply}, timeout
    # Used after the wait, so the handle outlives it: a garbage collection
    # during the wait would otherwise drop it, which cancels the job and
    # loses the reply (ErlangPython.Native's note on handles). The reply
    # was committed: :done.
    assert ErlangPython.Native.cancel(handle) == :done
    reply
  end

  @doc """
  What Python holds for `value` passed as `v`: `{:ok, [type name, length,
  SHA-256 of its bytes in hex]}` (a `str`'s bytes in UTF-8), for tests that
  a large value arrived whole. `opts` go to `ErlangPython.eval/3`.
  """
  @spec received(term(), keyword()) :: {:ok, [term()]} | {:error, term()}
  def received(value, opts \\ []) do
    ErlangPython.eval(
      "[type(v).__name__, len(v), __import__('hashlib').sha256(" <>
        "v.encode('utf-8') if isinstance(v, str) else v).hexdigest()]",
      %{v: value},
      opts
    )
  end

  @doc "`data`'s SHA-256 in lower-case hex, as Python's `hexdigest()` gives it."
  @spec sha256_hex(binary()) :: String.t()
  def sha256_hex(data), do: Base.encode16(:crypto.hash(:sha256, data), case: :lower)

  @doc "`size` bytes that are not valid UTF-8 (a 0xFF in every 8)."
  @spec not_utf8(non_neg_integer()) :: binary()
  def not_utf8(size) do
    pattern = <<0xFF, 0, 1, 2, 3, 250, 128, 7>>
    :binary.part(:binary.copy(pattern, div(size, byte_size(pattern)) + 1), 0, size)
  end
end
