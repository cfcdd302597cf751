"""Helpers of the native conversion for types beyond the builtins: UUIDs
from unusual texts, and the registry of decoders for Python types
(guides/type-conversion.md); dates, time zones, decimals, UUIDs and the
rest are converted in Rust. Imported by the NIF when it first meets such
a value; never imports anything optional."""

import uuid

#: "module.QualName" -> callable(obj) returning what to convert instead.
decoders = {}


def type_key(cls):
    """The registry key of a type: `module.QualName`, `QualName` for builtins."""
    module = getattr(cls, "__module__", "builtins")
    name = cls.__qualname__
    return name if module == "builtins" else f"{module}.{name}"


def register_decoder(cls, decoder):
    """Converts instances of `cls` (a type, or its "module.QualName") as
    whatever `decoder(obj)` returns; `None` as decoder removes it."""
    key = cls if isinstance(cls, str) else type_key(cls)
    if decoder is None:
        decoders.pop(key, None)
    elif not callable(decoder):
        raise TypeError("a decoder must be callable")
    else:
        decoders[key] = decoder
    return key


def registered_decoders():
    return sorted(decoders)


def register_decoder_by_name(key, module, function):
    """`ErlangPython.register_decoder/2`: the decoder is `module.function`."""
    import importlib

    target = importlib.import_module(module)
    for part in function.split("."):
        target = getattr(target, part)
    return register_decoder(key, target)


# -- UUIDs ---------------------------------------------------------------------


def uuid_from_text(text):
    return uuid.UUID(text)
