"""Key rotation, make-before-break: the new key is admitted before the old one is dropped.

1. ``begin`` (``spine keys rotate NAME``) creates the next keypair of NAME under the INF-03
   rules in ``rotating/`` inside the key directory, and admits its public key in
   ``whitelist.txt`` as NAME's ``next`` key, beside the current one.
2. The component switches over (``spine.client.key_switch.switch_keys``): ``install`` puts
   the staged keypair in place of the current one (keeping the old one in ``rotating/``
   until the switch is confirmed, so it can be put back), then the component opens new
   connections under the new key and closes the old ones. A component that restarts in
   between loads the new key, which is admitted too.
3. ``promote`` runs in the broker when a handshake under a ``next`` key succeeds: the key
   has been seen, so NAME's old key leaves the whitelist and the next key becomes current.
"""

from __future__ import annotations

import os
from pathlib import Path

from spine.errors import KeyFileError, WhitelistError
from spine.fsutil import fsync_dir
from spine.security import keys as keyfiles
from spine.security import whitelist
from spine.security.keys import KeyPair
from spine.security.whitelist import Entry

STAGING_DIR = "rotating"
PREVIOUS_SUFFIX = ".previous"


def staging_dir(keys_dir: Path) -> Path:
    """Where the next keypairs of rotating identities wait (mode 0700)."""
    return Path(keys_dir) / STAGING_DIR


def pending(keys_dir: Path, name: str) -> bool:
    """True when a next keypair for ``name`` is staged and not yet installed."""
    return keyfiles.secret_path(staging_dir(keys_dir), name).exists()


def begin(keys_dir: Path, name: str) -> Entry:
    """Stage NAME's next keypair and admit it beside the current key; return its entry.

    Running it again for a rotation under way returns the same next entry (idempotent).
    Raises WhitelistError when NAME is not whitelisted.
    """
    keys_dir = Path(keys_dir)
    entries = [e for e in whitelist.read_entries(keys_dir) if e.name == name]
    current = next((e for e in entries if not e.rotating), None)
    if current is None:
        raise WhitelistError(f"{name!r} is not in {keys_dir / whitelist.FILENAME}; only an "
                             "admitted identity can rotate its key")
    already = next((e for e in entries if e.rotating), None)
    if already is not None and not pending(keys_dir, name):
        return already  # its key is installed already; the broker has not seen it yet
    staged = keyfiles.load_or_create(staging_dir(keys_dir), name)
    if already is not None and already.public_key == staged.public:
        return already
    entry = Entry(staged.public, name, current.kind, current.source, rotating=True)
    with whitelist._locked(keys_dir):
        others = [e for e in whitelist.read_entries(keys_dir)
                  if not (e.name == name and e.rotating)]
        whitelist._write(keys_dir, others + [entry])
    return entry


def promote(keys_dir: Path, public_key: bytes) -> Entry | None:
    """The broker has seen ``public_key``: if it is a ``next`` key, make it NAME's only key.

    Returns the promoted entry, or None when the key is not a next key (nothing changes).
    """
    with whitelist._locked(keys_dir):
        entries = whitelist.read_entries(keys_dir)
        new = next((e for e in entries if e.public_key == public_key and e.rotating), None)
        if new is None:
            return None
        promoted = Entry(new.public_key, new.name, new.kind, new.source)
        whitelist._write(keys_dir, [e for e in entries if e.name != new.name] + [promoted])
    return promoted


def install(keys_dir: Path, name: str) -> KeyPair:
    """Put NAME's staged keypair in place of its current one; return the new keypair.

    The current files move to ``rotating/NAME.key*.previous`` (see ``restore`` and
    ``forget_previous``). Each move is an atomic rename within one file system.
    """
    keys_dir = Path(keys_dir)
    stage = staging_dir(keys_dir)
    new = keyfiles.load_keypair(stage, name)  # validates mode 0600 and the key pair
    moves = [(keyfiles.secret_path(keys_dir, name), keyfiles.secret_path(stage, name)),
             (keyfiles.public_path(keys_dir, name), keyfiles.public_path(stage, name))]
    for live, staged in moves:
        if live.exists():
            os.replace(live, _previous(staged))
        os.replace(staged, live)
    fsync_dir(stage)
    fsync_dir(keys_dir)
    return new


def restore(keys_dir: Path, name: str) -> None:
    """Undo ``install``: the previous keypair back in place, the new one staged again."""
    keys_dir = Path(keys_dir)
    stage = staging_dir(keys_dir)
    if not _previous(keyfiles.secret_path(stage, name)).exists():
        raise KeyFileError(f"no previous key of {name!r} in {stage} to restore")
    for live, staged in ((keyfiles.secret_path(keys_dir, name), keyfiles.secret_path(stage, name)),
                         (keyfiles.public_path(keys_dir, name), keyfiles.public_path(stage, name))):
        os.replace(live, staged)
        os.replace(_previous(staged), live)
    fsync_dir(stage)
    fsync_dir(keys_dir)


def forget_previous(keys_dir: Path, name: str) -> None:
    """Delete the old keypair kept by ``install`` once the switch-over is confirmed."""
    stage = staging_dir(keys_dir)
    for path in (keyfiles.secret_path(stage, name), keyfiles.public_path(stage, name)):
        _previous(path).unlink(missing_ok=True)
    fsync_dir(stage)


def _previous(path: Path) -> Path:
    return path.with_name(path.name + PREVIOUS_SUFFIX)
