"""Best-effort conversion of any Python value into convertible data,
for ErlangPython.decode/1.

It never loses data silently: a value it has no faithful form for stays
itself (so it comes back as a handle), and a pandas DataFrame or Series
becomes a dict of columns, not the list of names iterating it gives."""

import dataclasses
import datetime
import decimal
import enum
import os
import fractions
import uuid
from collections.abc import Iterable, Mapping, Sequence

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
    columns = _pandas_columns(value)
    if columns is not None:
        return {decode(key, depth + 1): decode(column, depth + 1) for key, column in columns}
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return decode(value.tolist(), depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return decode(dataclasses.asdict(value), depth + 1)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, enum.Enum):
        return decode(value.value, depth + 1)
    if isinstance(value, (datetime.date, datetime.time, datetime.timedelta)):
        if isinstance(value, datetime.time) and value.tzinfo is not None:
            return value.isoformat()
        return value  # converted natively: Date, Time, DateTime, {:timedelta, us}
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return value  # converted natively: %Decimal{}, the UUID's text
    if isinstance(value, fractions.Fraction):
        return str(value)
    # A sequence can be read again; an iterator or generator would be used
    # up, so it stays a handle.
    if isinstance(value, Sequence) and not isinstance(value, type):
        return [decode(item, depth + 1) for item in value]
    if isinstance(value, Iterable) and not isinstance(value, type):
        return value
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return {key: decode(item, depth + 1) for key, item in vars(value).items()}
    return repr(value)


def _pandas_columns(value):
    """The (name, values) columns of a pandas DataFrame or Series, or None
    for anything else (pandas is never imported for it). A non-default
    index becomes leading columns, as reset_index() makes it; duplicate
    column names are an error rather than a silently merged dict."""
    module = type(value).__module__ or ""
    if not module.startswith("pandas"):
        return None
    import sys

    pandas = sys.modules.get("pandas")
    if pandas is None:
        return None
    if isinstance(value, pandas.Series):
        value = value.to_frame()
    elif not isinstance(value, pandas.DataFrame):
        return None
    index = value.index
    if not (isinstance(index, pandas.RangeIndex) and index.start == 0 and index.step == 1):
        value = value.reset_index()
    names = list(value.columns)
    if len(set(names)) != len(names):
        raise ValueError(f"a DataFrame with duplicate column names has no map form: {names}")
    return [(name, value[name].tolist()) for name in names]
