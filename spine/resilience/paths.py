"""Where spine keeps state that must survive a restart (e.g. the circuit-breaker database)."""

from __future__ import annotations

from pathlib import Path

from spine import paths
from spine.fsutil import private_dir



def default_state_dir() -> Path:
    """Return the state directory: ``$SPINE_STATE_DIR``, else systemd's ``$STATE_DIRECTORY``, else ``./state``.

    The same rule as every other spine state (:func:`spine.paths.state_dir`). The directory
    is not created here: whoever writes into it creates it (see :func:`ensure_state_dir`).
    """
    return paths.state_dir()


def ensure_state_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if missing, new directories with mode 0700, or check
    the one that is there (:func:`spine.fsutil.private_dir`); return it."""
    return private_dir(path)
