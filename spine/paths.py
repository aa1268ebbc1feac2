"""Where spine keeps things by default, honouring spine's and systemd's environment.

Precedence for each directory: the explicit argument, then ``SPINE_*``, then the directory
systemd gives the service, then a development default next to the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path


def runtime_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Where the ipc sockets live: SPINE_RUNTIME_DIR, RUNTIME_DIRECTORY, XDG_RUNTIME_DIR/spine."""
    if explicit:
        return Path(explicit)
    for var in ("SPINE_RUNTIME_DIR", "RUNTIME_DIRECTORY"):
        if os.environ.get(var):
            return Path(os.environ[var].split(":")[0])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "spine"
    return Path(f"/tmp/spine-{os.getuid()}")


def state_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Where persisted state lives: SPINE_STATE_DIR, STATE_DIRECTORY, ./state."""
    if explicit:
        return Path(explicit)
    for var in ("SPINE_STATE_DIR", "STATE_DIRECTORY"):
        first = os.environ.get(var, "").strip().split(":")[0]
        if first:
            return Path(first)
    return Path("state")


def keys_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Where keys and the whitelist live: SPINE_KEYS_DIR, STATE_DIRECTORY/keys, ./keys."""
    if explicit:
        return Path(explicit)
    if os.environ.get("SPINE_KEYS_DIR"):
        return Path(os.environ["SPINE_KEYS_DIR"])
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0]) / "keys"
    return Path("keys")


def config_file(explicit: str | os.PathLike | None = None) -> Path | None:
    """The broker's TOML file: the argument, or CONFIGURATION_DIRECTORY/broker.toml if present."""
    if explicit:
        return Path(explicit)
    if os.environ.get("CONFIGURATION_DIRECTORY"):
        candidate = Path(os.environ["CONFIGURATION_DIRECTORY"].split(":")[0]) / "broker.toml"
        if candidate.exists():
            return candidate
    return None
