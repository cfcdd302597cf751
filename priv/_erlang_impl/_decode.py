"""Best-effort conversion of any Python value into convertible data,
for ErlangPython.decode/1."""

import dataclasses
import datetime
import decimal
import enum
import os
import fractions
import uuid
from collections.abc import Iterable, Mapping

_LIMIT = 100


def decode(value, depth=0):
    if depth > _LIMIT:
        return repr(value)
    if value is None or isinstance(value, (bool, int, float, str, bytes, bytearray)):
        return value
    if isinstance(value, tuple):
        return tuple(decode(item, depth + 1) for item in value)
    if isinstance(value, list):
        return [decode(item, depth + 1) for item in value]
    if isinstance(value, (set, frozenset)):
        return {decode(item, depth + 1) for item in value}
    if isinstance(value, Mapping):
        return {decode(key, depth + 1): decode(item, depth + 1) for key, item in value.items()}
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return decode(value.tolist(), depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return decode(dataclasses.asdict(value), depth + 1)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, enum.Enum):
        return decode(value.value, depth + 1)
    if isinstance(value, (datetime.date, datetime.time, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, fractions.Fraction, uuid.UUID)):
        return str(value)
    if isinstance(value, Iterable) and not isinstance(value, type):
        return [decode(item, depth + 1) for item in value]
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return {key: decode(item, depth + 1) for key, item in vars(value).items()}
    return repr(value)
