"""The revocation list: keys that may never connect again, whatever the whitelist says.

``revoked.txt`` in the key directory holds one revoked key a line, with the name it had and
when it was revoked (UTC)::

    # public key (Z85)                        name        revoked at
    rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7  physics     2026-01-02T03:04:05+00:00

The broker consults it before the whitelist (ZAP) and leaves revoked keys out of what it
routes, so a revoked key stays out even if someone puts it back into ``whitelist.txt``.
Entries are only ever added: revocation is permanent. Every edit is atomic and locked.
"""

from __future__ import annotations

import fcntl
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from spine.errors import KeyFileError, WhitelistError
from spine.fsutil import atomic_write, file_stamp, open_nofollow
from spine.security import whitelist
from spine.security.keys import check_public_key

FILENAME = "revoked.txt"
MAX_FILE_BYTES = 4 * 1024 * 1024  # far beyond any real list; a bound on what we read

log = logging.getLogger("spine.security")


@dataclass(frozen=True, slots=True)
class Revoked:
    """One revoked key, the name it was admitted under, and when it was revoked."""

    public_key: bytes
    name: str
    revoked_at: str  # ISO 8601, UTC

    def line(self) -> str:
        """This record as a revoked.txt line."""
        return f"{self.public_key.decode('ascii')} {self.name} {self.revoked_at}"


def parse(text: str, origin: str = FILENAME) -> list[Revoked]:
    """Parse revocation-list text; raise WhitelistError naming the line of a bad record."""
    records: list[Revoked] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 3:
            raise WhitelistError(f"{origin}:{number}: expected 'PUBLIC_KEY NAME REVOKED_AT', "
                                 f"got {len(fields)} fields")
        try:
            key = check_public_key(fields[0])
        except KeyFileError as exc:
            raise WhitelistError(f"{origin}:{number}: {exc}") from None
        records.append(Revoked(key, fields[1], fields[2]))
    return records


def read_records(keys_dir: Path) -> list[Revoked]:
    """The revocation list of ``keys_dir``; a missing file is an empty list."""
    path = Path(keys_dir) / FILENAME
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return []
    if len(data) > MAX_FILE_BYTES:
        raise WhitelistError(f"{path} is larger than {MAX_FILE_BYTES} bytes; it is not a "
                             "revocation list spine wrote")
    try:
        return parse(data.decode("utf-8"), str(path))
    except UnicodeDecodeError:
        raise WhitelistError(f"{path} is not UTF-8 text; restore it from backup") from None


@contextmanager
def _locked(keys_dir: Path) -> Iterator[None]:
    fd = open_nofollow(Path(keys_dir) / ".revoked.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def revoke(keys_dir: Path, name_or_key: str) -> list[Revoked]:
    """Revoke every key of the identity ``name_or_key`` for good; return what was revoked.

    The keys (the current one and, during a rotation, the next one) are appended to
    ``revoked.txt`` first, then their entries leave ``whitelist.txt``: at no instant is a
    key out of the revocation list and still in the whitelist. Raises WhitelistError when
    the whitelist has no such identity (an already revoked one says so).
    """
    keys_dir = Path(keys_dir)
    entries = [e for e in whitelist.read_entries(keys_dir)
               if name_or_key in (e.name, e.public_key.decode("ascii"))]
    with _locked(keys_dir):
        records = read_records(keys_dir)
        if not entries:
            earlier = [r for r in records if name_or_key in (r.name, r.public_key.decode())]
            if earlier:
                raise WhitelistError(f"{name_or_key!r} was already revoked on "
                                     f"{earlier[-1].revoked_at}")
            raise WhitelistError(f"no whitelist entry named {name_or_key!r}; "
                                 "'spine whitelist list' shows the admitted identities")
        known = {r.public_key for r in records}
        at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        added = [Revoked(e.public_key, e.name, at) for e in entries if e.public_key not in known]
        header = "# spine revocation list: PUBLIC_KEY NAME REVOKED_AT; never edit by hand\n"
        body = "".join(r.line() + "\n" for r in records + added)
        atomic_write(keys_dir / FILENAME, (header + body).encode("utf-8"), 0o644)
    for entry in entries:
        try:
            whitelist.remove_entry(keys_dir, entry.public_key.decode("ascii"))
        except WhitelistError:
            pass  # removed meanwhile: the goal is reached
    return added


class RevocationList:
    """The live revocation list of one key directory, re-read whenever the file changes."""

    def __init__(self, keys_dir: Path) -> None:
        self.path = Path(keys_dir) / FILENAME
        self._stamp: tuple[int, int, int] | None = None
        self._keys: frozenset[bytes] = frozenset()
        self.reload_error: str | None = None
        self.refresh(force=True)
        if self.reload_error:  # starting with no revocations would let revoked keys back in
            raise WhitelistError(self.reload_error)

    def __contains__(self, public_key: bytes) -> bool:
        return public_key in self._keys

    def contains(self, public_key: bytes) -> bool:
        """True if the Z85 key ``public_key`` is revoked (the ZapHandler ``is_revoked`` hook)."""
        return public_key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def refresh(self, force: bool = False) -> bool:
        """Re-read the file if it changed; return True if the set of revoked keys grew.

        A file that fails to parse keeps every key revoked so far revoked (revocation is
        never undone by a bad edit) and sets ``reload_error``.
        """
        stamp = file_stamp(self.path)
        if stamp == self._stamp and not force:
            return False
        self._stamp = stamp
        if stamp is None:
            self.reload_error = None
            return False
        try:
            records = read_records(self.path.parent)
        except (WhitelistError, OSError) as exc:
            self.reload_error = str(exc)
            log.error("revocation list unreadable, keys revoked so far stay revoked: %s", exc)
            return False
        self.reload_error = None
        grown = self._keys | {r.public_key for r in records}
        changed = grown != self._keys
        self._keys = frozenset(grown)
        return changed
