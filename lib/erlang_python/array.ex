defmodule ErlangPython.Array do
  @moduledoc """
  An n-dimensional array of numbers shared with Python without a copy.

  `data` holds the elements in C order (the last dimension varies
  fastest), native byte order; `type` is an Nx-style type and `shape` a
  tuple of sizes (`{}` for a single value).

  | `type` | Python buffer format | numpy dtype |
  |---|---|---|
  | `{:s, 8}`, `{:s, 16}`, `{:s, 32}`, `{:s, 64}` | `b`, `h`, `i`, `q` (and `l`, `n`) | `int8` ... `int64` |
  | `{:u, 8}`, `{:u, 16}`, `{:u, 32}`, `{:u, 64}` | `B`, `H`, `I`, `Q` (and `L`, `N`, `?`, `c`) | `uint8` ... `uint64`, `bool` |
  | `{:f, 16}`, `{:f, 32}`, `{:f, 64}` | `e`, `f`, `d` | `float16`, `float32`, `float64` |
  | `{:c, 64}`, `{:c, 128}` | `Zf`, `Zd` | `complex64`, `complex128` |

  numpy's `bool` arrives as `{:u, 8}` (Nx has no boolean type either).

  ## From Python

  Ask with `arrays: true` (on `ErlangPython.call/4`, `ErlangPython.eval/3`,
  `ErlangPython.call_method/4`, `ErlangPython.getattr/3`) or with
  `from_python/2` on a handle. Every object in the result with the buffer
  protocol (other than `bytes` and `bytearray`, binaries anyway) becomes an
  array: numpy arrays, `array.array`, `memoryview`. The binary in `data` is
  the Python buffer itself: nothing is copied, however large, and the
  Python object stays alive until the binary is garbage-collected (then it
  is released with the GIL held, at the interpreter's next request, like
  an `ErlangPython.Object`).

  An Elixir binary never changes, so:

  * a numpy array that owns its data is made read-only in Python
    (`flags.writeable = False`) as it is returned: later writes from Python
    raise instead of changing the binary (a view made *before* the return
    could still write: don't keep one);
  * any other writable buffer (a numpy view into another array,
    `array.array`, a writable `memoryview`), and a non-contiguous one, is
    copied once.

  A buffer with no type above (a structured dtype, big-endian data)
  is an error naming its format.

  ## To Python

  An `%ErlangPython.Array{}` passed to Python becomes a read-only,
  typed and shaped `memoryview` over the binary's own bytes (no copy:
  `numpy.asarray(view)` is an array over them too). So does
  `{:buffer, binary}`, as bytes (format `B`).

      iex> array = %ErlangPython.Array{data: <<1::little-32, 2::little-32, 3::little-32>>, type: {:s, 32}, shape: {3}}
      iex> ErlangPython.eval("(v.format, v.shape, v.readonly, v.tolist())", %{v: array})
      {:ok, {"i", {3}, true, [1, 2, 3]}}
      iex> {:ok, back} = ErlangPython.eval("memoryview(b'abcd').cast('H', [2])", %{}, arrays: true)
      iex> back.type
      {:u, 16}
  """

  @enforce_keys [:data, :type, :shape]
  defstruct [:data, :type, :shape]

  @typedoc "An Nx-style element type."
  @type type :: {:s | :u | :f | :c, pos_integer()}

  @type t :: %__MODULE__{data: binary(), type: type(), shape: tuple()}

  @doc """
  The array of a handle's object (a numpy array, `array.array`, a
  `memoryview`, anything with the buffer protocol), without a copy.

  `{:error, {:not_a_buffer, type}}` when the object has no buffer.
  """
  @spec from_python(ErlangPython.Object.t(), [ErlangPython.option()]) ::
          {:ok, t()} | {:error, ErlangPython.reason() | {:not_a_buffer, String.t()}}
  def from_python(%ErlangPython.Object{} = object, opts \\ []) do
    opts = Keyword.validate!(opts, timeout: ErlangPython.Options.default_timeout())

    case ErlangPython.eval("x", %{x: object}, arrays: true, timeout: opts[:timeout]) do
      {:ok, %__MODULE__{} = array} -> {:ok, array}
      {:ok, _other} -> {:error, {:not_a_buffer, object.type}}
      {:error, _} = error -> error
    end
  end

  @doc """
  The number of elements: the product of the shape's sizes.

      iex> ErlangPython.Array.size(%ErlangPython.Array{data: <<0::64, 0::64>>, type: {:f, 32}, shape: {2, 2}})
      4
  """
  @spec size(t()) :: non_neg_integer()
  def size(%__MODULE__{shape: shape}), do: shape |> Tuple.to_list() |> Enum.reduce(1, &(&1 * &2))

  @doc """
  The elements as a flat list of numbers (a copy; for inspection and
  tests, not for large arrays). Complex numbers come as `{re, im}`; NaN and
  infinities as `:nan`, `:infinity`, `:neg_infinity`.

      iex> ErlangPython.Array.to_list(%ErlangPython.Array{data: <<1.5::float-little-64, -2.0::float-little-64>>, type: {:f, 64}, shape: {2}})
      [1.5, -2.0]
  """
  @spec to_list(t()) :: [number() | atom() | {float() | atom(), float() | atom()}]
  def to_list(%__MODULE__{data: data, type: type}), do: elements(data, type)

  defp elements(data, {:s, bits}), do: for(<<x::signed-native-size(bits) <- data>>, do: x)
  defp elements(data, {:u, bits}), do: for(<<x::unsigned-native-size(bits) <- data>>, do: x)
  defp elements(data, {:f, bits}), do: for(<<x::bitstring-size(bits) <- data>>, do: float(x, bits))

  defp elements(data, {:c, bits}) do
    half = div(bits, 2)

    for <<re::bitstring-size(half), im::bitstring-size(half) <- data>>,
      do: {float(re, half), float(im, half)}
  end

  # A float segment does not match NaN or infinities: those come back as
  # the atoms ErlangPython uses for them.
  defp float(segment, bits) do
    case segment do
      <<value::float-native-size(bits)>> ->
        value

      <<raw::unsigned-native-size(bits)>> ->
        fraction = Bitwise.band(raw, Bitwise.bsl(1, %{16 => 10, 32 => 23, 64 => 52}[bits]) - 1)

        cond do
          fraction != 0 -> :nan
          Bitwise.bsr(raw, bits - 1) == 1 -> :neg_infinity
          true -> :infinity
        end
    end
  end
end
