"""Helpers of the native conversion for types beyond the builtins: UUIDs
from bytes and from unusual texts, and the registry of decoders for Python
types (guides/type-conversion.md); dates, time zones, decimals and the rest
are converted in Rust. Imported by the NIF when it first meets such
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


# Bound once for uuid_from_bytes: looked up on each call (`uuid.UUID`,
# `uuid.SafeUUID.unknown`, `object.__new__`, `object.__setattr__`), these
# names cost as much as the rest of it (timeit, 15 alternations, min and
# median: 1.01-1.08 us a call against 0.54-0.60).
_UUID = uuid.UUID
_SAFETY_UNKNOWN = uuid.SafeUUID.unknown
_new_object = object.__new__
_set_slot = object.__setattr__


def uuid_from_bytes(data):
    """uuid.UUID(bytes=data) for the 16 bytes the caller checked: the state
    UUID.__init__ leaves (its `int`, `is_safe` unknown), set as it sets it,
    without its checks of the other ways to give a UUID. 0.54-0.60 us
    against 1.19-1.28 for uuid.UUID(bytes=...) (same runs)."""
    made = _new_object(_UUID)
    _set_slot(made, "int", int.from_bytes(data, "big"))
    _set_slot(made, "is_safe", _SAFETY_UNKNOWN)
    return made
