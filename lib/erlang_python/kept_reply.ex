defmodule ErlangPython.KeptReply do
  @moduledoc false
  # Awaiting an async call's reply, which the NIF keeps out of the caller's
  # mailbox until asked (native/erlang_python_nif/src/kept_reply.rs): the
  # reference is made right before the receive, so the VM looks only at
  # messages that came after it (the receive-marker optimisation), however
  # many others wait in the mailbox.

  alias ErlangPython.Native

  @spec await(reference(), timeout()) :: term()
  def await(job, timeout) do
    claim = make_ref()

    case Native.claim_reply(job, claim) do
      :claimed ->
        receive do
          {^claim, reply} -> decoded(reply)
        after
          timeout ->
            case Native.cancel(job) do
              :cancelled ->
                {:error, :timeout}

              # Committed before we cancelled: it is on its way.
              :done ->
                receive do
                  {^claim, reply} -> decoded(reply)
                end
            end
        end

      :cancelled ->
        {:error, :timeout}

      :delivered ->
        {:error, :already_awaited}
    end
  end

  # As ErlangPython.Runtime: a large result comes as one external-format
  # binary (`:safe`: it names only atoms that exist already).
  defp decoded({:etf, external}), do: :erlang.binary_to_term(external, [:safe])
  defp decoded(reply), do: reply
end
