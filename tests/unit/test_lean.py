"""The CLIs and the service import only pyroute2's netlink core (falling back when they cannot)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from fakes import needs_genl

PROBE = """
import json, sys
from multicast_admin import lean
{setup}
module = lean.netlink()
from pyroute2.netlink import ctrlmsg, NLM_F_REQUEST, NLM_F_DUMP, CTRL_CMD_GETFAMILY
transport = module.GenlTransport("nlctrl", ctrlmsg)
msg = ctrlmsg(); msg["cmd"] = CTRL_CMD_GETFAMILY; msg["version"] = 1
names = [m.get_attr("CTRL_ATTR_FAMILY_NAME") for m in
         transport.request(msg, NLM_F_REQUEST | NLM_F_DUMP).messages]
transport.close()
print(json.dumps({{"heavy": "pyroute2.iproute" in sys.modules, "nlctrl": "nlctrl" in names}}))
"""


pytestmark = needs_genl


def probe(setup: str) -> dict:
    code = PROBE.format(setup=setup)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_lean_import_skips_the_package_init_and_works():
    assert probe("lean.use_lean_pyroute2()") == {"heavy": False, "nlctrl": True}


def test_without_it_the_whole_package_is_imported():
    assert probe("") == {"heavy": True, "nlctrl": True}


def test_a_lean_import_that_fails_falls_back_to_the_normal_one():
    # A bare package whose directory holds nothing: the lean import fails.
    setup = "lean.use_lean_pyroute2(); sys.modules['pyroute2'].__path__ = []"
    assert probe(setup) == {"heavy": True, "nlctrl": True}


ENTRY = """
import json, sys
from multicast_admin import lean, {module}
try:
    {module}.main({args})
except SystemExit:
    pass
lean.netlink()
print(json.dumps({{"heavy": "pyroute2.iproute" in sys.modules}}))
"""


@pytest.mark.parametrize(
    ("module", "args"),
    [("service", "['multis', 'status']"), ("cli_server", ""), ("cli_client", "")],
)
def test_every_entry_point_makes_the_later_import_lean(module, args, tmp_path):
    code = ENTRY.format(module=module, args=args)
    env = {**os.environ, "MULTICAST_PROXY_CONFIG_DIR": str(tmp_path)}
    argv = [sys.executable, "-c", code]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120, env=env)
    assert json.loads(done.stdout.splitlines()[-1]) == {"heavy": False}, done.stderr
