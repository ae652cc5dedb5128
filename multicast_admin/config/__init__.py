"""The persistent state: /etc/multicast-proxy/multis.json and multic.json.

The file of a side always equals its kernel state.  One concept per module:

* :mod:`.schema`: the file format and its values (ServerConfig, ClientConfig);
* :mod:`.legacy`: reading the old implementation's files, once;
* :mod:`.store`: where the files and locks live, locking, atomic writes;
* :mod:`.sync`: kernel <-> file for both sides at once (:class:`Side`:
  ``SERVER.change/save/restore``, the same for ``CLIENT``).
"""

from .legacy import Imported
from .schema import ClientConfig, EntryConfig, GroupConfig, ServerConfig
from .store import (
    DEFAULT_CONFIG_DIR,
    ENV_CONFIG_DIR,
    ENV_LOCK_DIR,
    StateFile,
    config_dir,
    legacy_dir,
    lock_dir,
)
from .sync import CLIENT, SERVER, SIDES, RestoreReport, Side

__all__ = [
    "CLIENT",
    "DEFAULT_CONFIG_DIR",
    "ENV_CONFIG_DIR",
    "ENV_LOCK_DIR",
    "SERVER",
    "SIDES",
    "ClientConfig",
    "EntryConfig",
    "GroupConfig",
    "Imported",
    "RestoreReport",
    "ServerConfig",
    "Side",
    "StateFile",
    "config_dir",
    "legacy_dir",
    "lock_dir",
]
