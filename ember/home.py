"""The default home directory rule, free of heavy imports so that every layer and `ember --help` can use it.

The effective home is ``Settings().home``: ``home`` from EMBER_HOME or config.toml, else this default.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def default_home() -> Path:
    """EMBER_HOME if set, else the user data directory (e.g. ~/.local/share/ember)."""
    explicit = os.environ.get("EMBER_HOME")
    return Path(explicit).expanduser() if explicit else Path(platformdirs.user_data_dir("ember"))
