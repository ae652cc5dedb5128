"""The kernel's "restored" mark, as both sides' domain objects offer it.

Each namespace of each module says whether its configuration came from the
saved state file (docs/design.md, "State is never lost").  Server and Client
inherit these three methods; their backend is the family's netlink binding.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any


class RestoredMark:
    """The saved-state mark of the namespace the backend talks to (config.Side)."""

    backend: Any

    def restored(self) -> bool:
        """Whether the kernel says this namespace was restored from the saved state."""
        return bool(self.backend.stats().restored)

    def set_restored(self) -> None:
        """Tell the kernel this namespace now holds the saved state."""
        self.backend.set_restored()

    def requiring_restored(self) -> AbstractContextManager[None]:
        """Changes made inside are refused (NotRestored) unless the namespace is restored."""
        return self.backend.requiring_restored()
