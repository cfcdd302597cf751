"""The Python half of the sandbox.

The enforcing is native: a seccomp filter on every thread that runs Python
(the kernel refuses fork, exec, signals to the VM, ...), an audit hook
(PEP 578) installed before the interpreter started, and guards on C
functions CPython does not audit. A refusal raises ``SandboxBlocked``, which
is both a ``RuntimeError`` (the contract's type and exact text) and an
``OSError`` with errno EPERM, so libraries that fall back on ``OSError``
keep working. This module adds:

* ``is_sandboxed()``, checked live for the calling thread;
* ``SandboxBlocked``, to catch refusals precisely (only the sandbox raises
  one that Elixir reports as ``{:sandbox_blocked, event, message}``);
* named audit events for functions CPython implements on top of others, so
  the error names what the caller actually called: ``os.popen`` (which
  CPython runs through ``subprocess.Popen``), ``os.spawn*`` (through
  ``os.fork``) and ``os.posix_spawnp`` (through the ``os.posix_spawn``
  event). Without these wrappers the calls are still blocked, under the
  inner name;
* ``ctypes.util.find_library`` answered from the dynamic loader's cache
  (``/etc/ld.so.cache``) and ``LD_LIBRARY_PATH``, without the subprocesses
  (``ldconfig -p``, ``gcc``, ``ld``, ``objdump``) CPython runs for it:
  libraries such as torch call it while importing.
"""

import functools
import os
import struct
import sys

import _erlang_native

__all__ = ["is_sandboxed", "SandboxBlocked", "BLOCK_MESSAGE_TAIL", "find_library"]

BLOCK_MESSAGE_TAIL = (
    " is blocked in Erlang VM context.\n"
    "fork()/exec() would corrupt the Erlang runtime.\n"
    "Use Erlang ports (open_port/2) for subprocess management."
)

SandboxBlocked = _erlang_native.sandbox_exception()

_NAMED = (
    "popen",
    "posix_spawnp",
    "spawnl",
    "spawnle",
    "spawnlp",
    "spawnlpe",
    "spawnv",
    "spawnve",
    "spawnvp",
    "spawnvpe",
)


def is_sandboxed():
    """True when this thread runs inside the Erlang VM under the sandbox.

    Checked live: the audit hook must answer, the kernel filter must be
    active on the calling thread, and every guard must still be in place.
    """
    return bool(_erlang_native.sandbox_active())


def _named(event, function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        sys.audit(event, *args)  # the native hook refuses here
        return function(*args, **kwargs)

    wrapper.__erlang_sandbox_event__ = event
    return wrapper


def install_named_events():
    for name in _NAMED:
        original = getattr(os, name, None)
        if original is not None and not hasattr(original, "__erlang_sandbox_event__"):
            setattr(os, name, _named("os." + name, original))


# ---------------------------------------------------------------------------
# ctypes.util.find_library without subprocesses
# ---------------------------------------------------------------------------

_LD_SO_CACHE = "/etc/ld.so.cache"
_CACHE_MAGIC = b"glibc-ld.so.cache1.1"
_FLAG_TYPE_MASK = 0x00FF
_FLAG_ELF_LIBC6 = 0x0003
_FLAG_ARCH_MASK = 0xFF00
_FLAG_X8664_LIB64 = 0x0300


def _loader_cache_sonames():
    """The sonames in the loader cache, in cache order, for this ABI.

    The same entries ``ldconfig -p`` lists, filtered the way CPython's
    ``ctypes.util`` filters them (``libc6,x86-64`` on x86-64, any ``libc6``
    elsewhere).
    """
    try:
        with open(_LD_SO_CACHE, "rb") as cache:
            data = cache.read()
    except OSError:
        return []
    start = data.find(_CACHE_MAGIC)
    if start < 0:
        return []
    # struct cache_file_new: magic and version (20 bytes), nlibs, len_strings,
    # flags (1 byte + 3 padding), extension_offset, unused[3]: 48 bytes.
    count, _strings = struct.unpack_from("<II", data, start + 20)
    x86_64 = os.uname().machine == "x86_64" and sys.maxsize > 2**32
    names = []
    for index in range(count):
        offset = start + 48 + 24 * index
        if offset + 24 > len(data):
            break
        flags, key, _value, _osversion, _hwcap = struct.unpack_from("<iIIIQ", data, offset)
        if flags & _FLAG_TYPE_MASK != _FLAG_ELF_LIBC6:
            continue
        if x86_64 and flags & _FLAG_ARCH_MASK != _FLAG_X8664_LIB64:
            continue
        end = data.find(b"\0", start + key)
        if end > 0:
            names.append(os.fsdecode(data[start + key : end]))
    return names


def _soname(path):
    """DT_SONAME of an ELF shared object, or None (what objdump -p shows)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None  # only 64-bit little-endian, the platforms we build for
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    for _name, kind, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
        if kind != 6 or not entsize:  # SHT_DYNAMIC
            continue
        strtab = sections[link][4]
        for position in range(offset, offset + size, entsize):
            tag, value = struct.unpack_from("<qQ", data, position)
            if tag == 0:
                break
            if tag == 14:  # DT_SONAME
                end = data.find(b"\0", strtab + value)
                return os.fsdecode(data[strtab + value : end])
    return None


def find_library(name):
    """``ctypes.util.find_library`` for Linux, without a subprocess.

    Answers like CPython's: the first soname ``lib<name>.<...>`` in the
    loader cache for this ABI, else the soname of ``lib<name>.so`` found in
    ``LD_LIBRARY_PATH``, else None.
    """
    prefix = "lib%s." % name
    for soname in _loader_cache_sonames():
        if soname.startswith(prefix) and soname[len(prefix) :] and not any(c.isspace() for c in soname):
            return soname
    for directory in os.environ.get("LD_LIBRARY_PATH", "").split(":"):
        if not directory:
            continue
        candidate = os.path.join(directory, "lib%s.so" % name)
        if os.path.exists(candidate):
            return _soname(candidate) or os.path.basename(candidate)
    return None


def _patch_ctypes_util(module):
    if sys.platform.startswith("linux") and not hasattr(module, "__erlang_sandbox__"):
        module.find_library = find_library
        module.__erlang_sandbox__ = True


class _CtypesUtilFinder:
    """Patches ``ctypes.util`` as soon as it is imported (it is not imported
    at start: ctypes costs time and memory most programs never need)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "ctypes.util":
            return None
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original_exec = loader.exec_module

        def exec_module(module):
            original_exec(module)
            _patch_ctypes_util(module)

        loader.exec_module = exec_module
        return spec


def install_find_library():
    if "ctypes.util" in sys.modules:
        _patch_ctypes_util(sys.modules["ctypes.util"])
    elif not any(isinstance(f, _CtypesUtilFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _CtypesUtilFinder())
