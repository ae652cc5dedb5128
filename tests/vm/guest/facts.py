"""Guest side: record what a scenario observed, for the host's assertions.

The guest only measures; the host-side tests assert.  Facts are written to
``$MCP_RESULTS/facts.json`` after every step, so a step that crashes the VM
still leaves the earlier ones behind.  A step that raises records its
traceback under its name, and the next steps still run.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class Facts:
    def __init__(self) -> None:
        self.path = Path(os.environ.get("MCP_RESULTS", "/tmp")) / "facts.json"
        self.data: dict[str, Any] = {}

    def __setitem__(self, name: str, value: Any) -> None:
        self.data[name] = value
        self._flush()

    def _flush(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True, default=str))
        tmp.replace(self.path)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[dict[str, Any]]:
        """A named scenario: its dict of facts, or its traceback if it failed."""
        record: dict[str, Any] = {}
        started = time.monotonic()
        print(f"--- step {name}", flush=True)
        try:
            yield record
        except Exception:  # noqa: BLE001 - reported to the host, which fails the test
            record["error"] = traceback.format_exc()
            print(record["error"], flush=True)
        record["seconds"] = round(time.monotonic() - started, 2)
        self[name] = record
