defmodule ErlangPython.Request do
  @moduledoc false
  # The requests the NIF understands, built here and nowhere else.
  #
  # The Rust side declares the same format once, as `ops::Op` and, for the
  # scope a request is submitted in (scoped/2), `ops::Submission`
  # (native/erlang_python_nif/src/ops/op.rs), decoded with rustler's
  # NifTaggedEnum derive: an atom for a request without fields, otherwise a
  # tuple tagged with the request's name. Arguments are checked by
  # ErlangPython before a request is built; the NIF checks them again and
  # answers {:error, {:badarg, text}} to anything else.

  alias ErlangPython.{Context, Object}

  @typedoc "A request for the interpreter's worker threads."
  @type t ::
          :ping
          | {:call, ErlangPython.name(), ErlangPython.name(), list(), map()}
          | {:eval, String.t(), map()}
          | {:exec, String.t()}
          | {:getattr, Object.t(), ErlangPython.name()}
          | {:call_method, Object.t(), ErlangPython.name(), list(), map()}
          | {:repr, Object.t(), non_neg_integer()}
          | {:raw, t()}
          | {:arrays, t()}
          | {:context, Object.t(), t()}
          | {:scoped, pos_integer(), t()}
          | :diagnostic_panic

  @doc false
  @spec ping() :: t()
  def ping, do: :ping

  @doc false
  @spec call(ErlangPython.name(), ErlangPython.name(), list(), map()) :: t()
  def call(module, function, args, kwargs), do: {:call, module, function, args, kwargs}

  @doc false
  @spec eval(String.t(), map()) :: t()
  def eval(code, locals), do: {:eval, code, locals}

  @doc false
  @spec exec(String.t()) :: t()
  def exec(code), do: {:exec, code}

  @doc false
  @spec getattr(Object.t(), ErlangPython.name()) :: t()
  def getattr(object, name), do: {:getattr, object, name}

  @doc false
  @spec call_method(Object.t(), ErlangPython.name(), list(), map()) :: t()
  def call_method(object, name, args, kwargs), do: {:call_method, object, name, args, kwargs}

  @doc false
  # repr(object), cut after `limit` characters.
  @spec repr(Object.t(), non_neg_integer()) :: t()
  def repr(object, limit), do: {:repr, object, limit}

  @doc false
  # Applies the options that change the request itself: `decode: false`
  # answers with a handle whatever the value, `arrays: true` with buffers as
  # ErlangPython.Array, and `context:` runs it in a context's namespace
  # (and, for a context with a scope, in that scope).
  @spec with_options(t(), %{
          optional(:decode) => boolean(),
          optional(:arrays) => boolean(),
          optional(:context) => Context.t() | nil
        }) :: t()
  def with_options(request, options) do
    request =
      cond do
        not Map.get(options, :decode, true) -> {:raw, request}
        Map.get(options, :arrays, false) -> {:arrays, request}
        true -> request
      end

    case Map.get(options, :context) do
      nil -> request
      %Context{object: object, scope: nil} -> {:context, object, request}
      %Context{object: object, scope: key} -> scoped({:context, object, request}, key)
    end
  end

  @doc false
  # Submits `request` in scope `key` (a positive integer: a context
  # process's, or a process environment's, see ErlangPython.Context): it
  # runs on the scope's worker thread, and ErlangPython.Native.interrupt_scope/1
  # interrupts it. Outermost only: the scope belongs to the job, and the NIF
  # takes it off before the worker thread sees the request.
  @spec scoped(t(), pos_integer()) :: t()
  def scoped(request, key) when is_integer(key) and key > 0, do: {:scoped, key, request}

  @doc false
  # Panics on the worker thread, to prove the panic becomes an error reply.
  # Only test builds of the NIF understand it (the crate's `diagnostics`
  # feature); others answer {:error, {:badarg, "malformed request"}}.
  @spec diagnostic_panic() :: t()
  def diagnostic_panic, do: :diagnostic_panic
end
