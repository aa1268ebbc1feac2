"""Where spine keeps state that must survive a restart (e.g. the circuit-breaker database)."""

from __future__ import annotations

import os
from pathlib import Path

STATE_DIR_ENV = "SPINE_STATE_DIR"
SYSTEMD_STATE_DIR_ENV = "STATE_DIRECTORY"


def default_state_dir() -> Path:
    """Return the state directory: ``$SPINE_STATE_DIR``, else systemd's ``$STATE_DIRECTORY``, else ``./state``.

    systemd sets ``STATE_DIRECTORY`` from ``StateDirectory=``; when a unit lists several
    directories it joins them with ``:`` and the first one is used. The directory is not
    created here: whoever writes into it creates it (see :func:`ensure_state_dir`).
    """
    explicit = os.environ.get(STATE_DIR_ENV, "").strip()
    if explicit:
        return Path(explicit)
    systemd = os.environ.get(SYSTEMD_STATE_DIR_ENV, "").strip()
    if systemd:
        first = systemd.split(":", 1)[0]
        if first:
            return Path(first)
    return Path("state")


def ensure_state_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if missing, new directories with mode 0700; return it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path
