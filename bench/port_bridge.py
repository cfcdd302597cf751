"""The port-based baseline for bench/run.exs: a Python process on an Erlang
port, as port-based bridges (erlport and the like) run it.

Protocol: {packet, 4} frames, each an Erlang external-term-format term.
Request {Module, Function, Args} (binaries); reply {ok, Value} or
{error, Text}. The codec is pure Python, like those bridges' own, and
handles the types the benchmark sends: integers, floats, binaries, atoms,
lists, tuples and maps. No pickle.
"""

import importlib
import struct
import sys


def decode(data, i=0):
    tag = data[i]
    if tag == 97:  # SMALL_INTEGER_EXT
        return data[i + 1], i + 2
    if tag == 98:  # INTEGER_EXT
        return struct.unpack_from(">i", data, i + 1)[0], i + 5
    if tag == 70:  # NEW_FLOAT_EXT
        return struct.unpack_from(">d", data, i + 1)[0], i + 9
    if tag == 109:  # BINARY_EXT
        (n,) = struct.unpack_from(">I", data, i + 1)
        return bytes(data[i + 5 : i + 5 + n]), i + 5 + n
    if tag in (118, 119):  # ATOM_UTF8_EXT, SMALL_ATOM_UTF8_EXT
        if tag == 118:
            (n,) = struct.unpack_from(">H", data, i + 1)
            start = i + 3
        else:
            n, start = data[i + 1], i + 2
        return data[start : start + n].decode(), start + n
    if tag == 106:  # NIL_EXT
        return [], i + 1
    if tag == 107:  # STRING_EXT (list of bytes)
        (n,) = struct.unpack_from(">H", data, i + 1)
        return list(data[i + 3 : i + 3 + n]), i + 3 + n
    if tag == 108:  # LIST_EXT
        (n,) = struct.unpack_from(">I", data, i + 1)
        i += 5
        items = []
        for _ in range(n):
            item, i = decode(data, i)
            items.append(item)
        _tail, i = decode(data, i)
        return items, i
    if tag in (104, 105):  # SMALL_TUPLE_EXT, LARGE_TUPLE_EXT
        if tag == 104:
            n, i = data[i + 1], i + 2
        else:
            (n,) = struct.unpack_from(">I", data, i + 1)
            i += 5
        items = []
        for _ in range(n):
            item, i = decode(data, i)
            items.append(item)
        return tuple(items), i
    if tag == 116:  # MAP_EXT
        (n,) = struct.unpack_from(">I", data, i + 1)
        i += 5
        result = {}
        for _ in range(n):
            key, i = decode(data, i)
            value, i = decode(data, i)
            result[key] = value
        return result, i
    raise ValueError("unsupported term tag %d" % tag)


def encode(value, out):
    if value is True or value is False or value is None:
        name = {True: b"true", False: b"false", None: b"nil"}[value]
        out += bytes((119, len(name))) + name
    elif isinstance(value, int):
        if 0 <= value < 256:
            out += bytes((97, value))
        elif -(2**31) <= value < 2**31:
            out += b"b" + struct.pack(">i", value)
        else:
            magnitude = abs(value).to_bytes((abs(value).bit_length() + 7) // 8, "little")
            out += bytes((110, len(magnitude), 1 if value < 0 else 0)) + magnitude
    elif isinstance(value, float):
        out += b"F" + struct.pack(">d", value)
    elif isinstance(value, (bytes, str)):
        raw = value.encode() if isinstance(value, str) else value
        out += b"m" + struct.pack(">I", len(raw)) + raw
    elif isinstance(value, tuple):
        out += bytes((104, len(value))) if len(value) < 256 else b"i" + struct.pack(">I", len(value))
        for item in value:
            encode(item, out)
    elif isinstance(value, list):
        if value:
            out += b"l" + struct.pack(">I", len(value))
            for item in value:
                encode(item, out)
        out += b"j"
    elif isinstance(value, dict):
        out += b"t" + struct.pack(">I", len(value))
        for key, item in value.items():
            encode(key, out)
            encode(item, out)
    else:
        raise TypeError("cannot encode %r" % type(value))


def main():
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        header = stdin.read(4)
        if len(header) < 4:
            return
        (length,) = struct.unpack(">I", header)
        data = stdin.read(length)
        (module, function, args), _ = decode(data, 1)  # skip the version byte
        try:
            target = importlib.import_module(module.decode())
            for part in function.decode().split("."):
                target = getattr(target, part)
            args = [a.decode() if isinstance(a, bytes) and target is sys.path.insert else a for a in args]
            reply = ("ok", target(*args))
        except Exception as error:  # reported to the caller, like a bridge would
            reply = ("error", repr(error))
        out = bytearray(b"\x83")
        encode(reply, out)
        stdout.write(struct.pack(">I", len(out)) + out)
        stdout.flush()


if __name__ == "__main__":
    main()
