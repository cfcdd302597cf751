"""Virtual environments for the embedded interpreter.

Activating a venv makes its site-packages (with its .pth files) come first
on sys.path and, unless its pyvenv.cfg says include-system-site-packages =
true, hides the base interpreter's site-packages, as running the venv's own
python would. Deactivating restores sys.path and sys.prefix. Modules already
imported stay imported: restart the VM to unload them.
"""

import os
import site
import sys

_saved = None
_active = None


def _config(path):
    values = {}
    with open(os.path.join(path, "pyvenv.cfg"), encoding="utf-8") as cfg:
        for line in cfg:
            if "=" in line:
                key, _, value = line.partition("=")
                values[key.strip().lower()] = value.strip()
    return values


def activate(path):
    """Activates the venv at path. Returns info(), or None if path is no venv.

    A directory without pyvenv.cfg but with this Python's
    lib/pythonX.Y/site-packages counts as a venv too (a bare site directory,
    as erlang_python accepts); it hides the base site-packages like a venv
    made without --system-site-packages."""
    global _saved, _active
    path = os.path.abspath(path)
    version = "python%d.%d" % sys.version_info[:2]
    site_packages = os.path.join(path, "lib", version, "site-packages")
    has_cfg = os.path.isfile(os.path.join(path, "pyvenv.cfg"))
    if not has_cfg and not os.path.isdir(site_packages):
        return None
    if not os.path.isdir(site_packages):
        raise ValueError(
            "%s has no %s: it was made by another Python than this one (%s)"
            % (path, os.path.join("lib", version, "site-packages"), sys.version.split()[0])
        )
    if _active is not None:
        deactivate()
    _saved = (list(sys.path), sys.prefix, sys.exec_prefix)
    config = _config(path) if has_cfg else {}
    include_system = config.get("include-system-site-packages", "false").lower() == "true"
    if not include_system:
        hidden = set(site.getsitepackages()) | {site.getusersitepackages()}
        sys.path[:] = [entry for entry in sys.path if entry not in hidden]
    before = list(sys.path)
    site.addsitedir(site_packages)  # also runs the venv's .pth files
    added = [entry for entry in sys.path if entry not in before]
    sys.path[:] = added + before
    sys.prefix = sys.exec_prefix = path
    _active = {"path": path, "site_packages": site_packages, "include_system_site_packages": include_system}
    return info()


def deactivate():
    """Restores sys.path and sys.prefix as they were before activate()."""
    global _saved, _active
    if _saved is not None:
        sys.path[:], sys.prefix, sys.exec_prefix = _saved
    _saved = _active = None


def info():
    details = {
        "active": _active is not None,
        "python": sys.version.split()[0],
        "prefix": sys.prefix,
        "sys_path": list(sys.path),
    }
    if _active is not None:
        details.update(_active)
        details["venv_path"] = _active["path"]
    return details
