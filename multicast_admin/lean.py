"""Import only the part of pyroute2 the tools use.

``import pyroute2.netlink`` first runs ``pyroute2/__init__.py``, which imports
IPRoute, NDB, IPDB, conntrack, traffic-control message classes... about 2.5
times the CPU of what the bindings need.  For a CLI that runs once per
command that is most of its start-up, and inside the test VM (software
emulation, ~25x slower) it is seconds per call.

:func:`use_lean_pyroute2` registers a bare ``pyroute2`` package (the real
package directory, without running its ``__init__``) so that importing
``pyroute2.netlink.generic`` loads just that.  Only the entry points (the
two CLIs and the service) call it, as the very first thing, because a process that also wants
``from pyroute2 import IPRoute`` would not find it.  :func:`netlink` imports
the bindings and, should a pyroute2 version ever need its ``__init__``, falls
back to the normal import.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

_MARK = "__multicast_admin_lean__"


def use_lean_pyroute2() -> None:
    """Make later pyroute2.netlink imports skip pyroute2's package __init__."""
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.submodule_search_locations is None:
        return
    package = types.ModuleType("pyroute2", "pyroute2 without its __init__ (multicast_admin.lean)")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    package.__file__ = spec.origin
    package.__package__ = "pyroute2"
    setattr(package, _MARK, True)
    sys.modules["pyroute2"] = package


def netlink() -> types.ModuleType:
    """multicast_admin.netlink, imported lean if possible, normally otherwise."""
    try:
        return importlib.import_module("multicast_admin.netlink")
    except (ImportError, AttributeError):
        if not getattr(sys.modules.get("pyroute2"), _MARK, False):
            raise
    for name in list(sys.modules):
        if name == "pyroute2" or name.startswith("pyroute2.") or name == "multicast_admin.netlink":
            del sys.modules[name]
    return importlib.import_module("multicast_admin.netlink")
