"""The whitelist: which CURVE public keys may connect, as whom, and from where.

``whitelist.txt`` in the key directory is the source of truth, one entry a line::

    # public key (Z85)                        name        kind             from (optional)
    rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7  physics     PHYSICS_ENGINE   ipc
    Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID  reasoner    REASONING_ENGINE 10.0.0.0/24

``from`` pins where the component may connect from: ``ipc`` (same host, over ipc only),
an IP address or a network in CIDR form. A trailing ``next`` marks the new key of a rotation
(``spine keys rotate``): during the rotation a name may have two entries, its current key
and its ``next`` one. Lines starting with ``#`` are comments. The file
is re-read when it changes, and every edit through this module is atomic and locked.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from spine.errors import KeyFileError, WhitelistError
from spine.fsutil import atomic_write, file_stamp, open_nofollow, private_dir
from spine.protocol import neural_spike_pb2 as pb
from spine.security.keys import check_name, check_public_key

FILENAME = "whitelist.txt"
IPC = "ipc"
ROTATING = "next"


@dataclass(frozen=True, slots=True)
class Entry:
    """One admitted identity."""

    public_key: bytes
    name: str
    kind: int  # a ComponentID value
    source: str | None = None  # "ipc", an IP address or a CIDR network
    rotating: bool = False  # the new key of a rotation, admitted beside the current one

    def kind_name(self) -> str:
        """The ComponentID name of this entry's kind."""
        return pb.ComponentID.Name(self.kind)

    def admits_address(self, address: str) -> bool:
        """Whether a connection from ``address`` (as ZAP reports it) fits the pin."""
        if self.source is None:
            return True
        is_ip = _parse_ip(address)
        if self.source == IPC:
            return is_ip is None
        if is_ip is None:
            return False
        return is_ip in ipaddress.ip_network(self.source, strict=False)

    def line(self) -> str:
        """This entry as a whitelist.txt line."""
        fields = [self.public_key.decode("ascii"), self.name, self.kind_name()]
        if self.source:
            fields.append(self.source)
        if self.rotating:
            fields.append(ROTATING)
        return " ".join(fields)


def _parse_ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    # an IPv4 peer of a dual-stack (ZMQ_IPV6) socket is reported as ::ffff:a.b.c.d
    return ip.ipv4_mapped or ip if isinstance(ip, ipaddress.IPv6Address) else ip


def parse_kind(kind: str) -> int:
    """Turn a ComponentID name (or number) into its value, or raise WhitelistError."""
    try:
        return int(kind) if kind.isdigit() and int(kind) in pb.ComponentID.values() \
            else pb.ComponentID.Value(kind.upper())
    except ValueError:
        raise WhitelistError(f"unknown component kind {kind!r}; use one of "
                             f"{', '.join(pb.ComponentID.keys())}") from None


def check_source(source: str) -> str:
    """Validate a ``from`` pin; return it or raise WhitelistError."""
    if source == IPC:
        return source
    try:
        ipaddress.ip_network(source, strict=False)
    except ValueError:
        raise WhitelistError(f"source pin {source!r} is neither 'ipc' nor an IP address or "
                             "CIDR network") from None
    return source


def parse(text: str, origin: str = FILENAME) -> list[Entry]:
    """Parse whitelist text; raise WhitelistError naming the line of any bad entry."""
    entries: list[Entry] = []
    keys: set[bytes] = set()
    names: dict[str, set[bool]] = {}  # name -> rotating flags seen (one current, one next)
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        rotating = len(fields) > 3 and fields[-1] == ROTATING
        if rotating:
            fields.pop()
        if len(fields) not in (3, 4):
            raise WhitelistError(f"{origin}:{number}: expected 'PUBLIC_KEY NAME KIND [FROM] "
                                 f"[{ROTATING}]', got {len(fields)} fields")
        try:
            key, name = check_public_key(fields[0]), check_name(fields[1])
            kind = parse_kind(fields[2])
            source = check_source(fields[3]) if len(fields) == 4 else None
        except (KeyFileError, WhitelistError) as exc:
            raise WhitelistError(f"{origin}:{number}: {exc}") from None
        if key in keys or rotating in names.get(name, set()):
            raise WhitelistError(f"{origin}:{number}: duplicate key or name {name!r}; "
                                 f"one identity, one entry (plus one '{ROTATING}' key while "
                                 "it rotates)")
        keys.add(key)
        names.setdefault(name, set()).add(rotating)
        entries.append(Entry(key, name, kind, source, rotating))
    return entries


class Whitelist:
    """The live whitelist of one key directory, re-read whenever the file changes."""

    def __init__(self, keys_dir: Path) -> None:
        self.path = Path(keys_dir) / FILENAME
        self._stamp: tuple[int, int, int] | None = None
        self._by_key: dict[bytes, Entry] = {}
        self.reload_error: str | None = None
        self.refresh(force=True)
        if self.reload_error:  # no good state to keep yet: refuse to start rather than guess
            raise WhitelistError(self.reload_error)

    @property
    def entries(self) -> list[Entry]:
        """The entries currently in force."""
        return list(self._by_key.values())

    def lookup(self, public_key: bytes) -> Entry | None:
        """The entry for a Z85 public key, or None when it is not admitted."""
        return self._by_key.get(public_key)

    def by_name(self, name: str) -> Entry | None:
        """The entry with instance name ``name``, if any."""
        return next((e for e in self._by_key.values() if e.name == name), None)

    def is_empty(self) -> bool:
        """True when no identity is admitted (missing or empty file)."""
        return not self._by_key

    def refresh(self, force: bool = False) -> bool:
        """Re-read the file if it changed since the last read; return True if it was re-read.

        A file that fails to parse leaves the previous entries in force (none, if there were
        none) and sets ``reload_error``, so a typo never locks everybody out and never stops
        the broker. Only the first read, in the constructor, raises WhitelistError.
        """
        stamp = file_stamp(self.path)
        if stamp == self._stamp and not force:
            return False
        self._stamp = stamp
        if stamp is None:
            self._by_key, self.reload_error = {}, None
            return True
        try:
            entries = parse(self.path.read_text(encoding="utf-8"), str(self.path))
        except (WhitelistError, UnicodeDecodeError, OSError) as exc:
            self.reload_error = str(exc)
            return False
        self._by_key = {e.public_key: e for e in entries}
        self.reload_error = None
        return True


@contextmanager
def _locked(keys_dir: Path) -> Iterator[None]:
    lock_path = Path(keys_dir) / ".whitelist.lock"
    fd = open_nofollow(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_entries(keys_dir: Path) -> list[Entry]:
    """Parse the whitelist of ``keys_dir``; a missing file is an empty list."""
    path = Path(keys_dir) / FILENAME
    if not path.exists():
        return []
    return parse(path.read_text(encoding="utf-8"), str(path))


def _write(keys_dir: Path, entries: list[Entry]) -> None:
    header = f"# spine whitelist: PUBLIC_KEY NAME KIND [FROM] [{ROTATING}]; edit with 'spine whitelist'\n"
    body = "".join(e.line() + "\n" for e in entries)
    atomic_write(Path(keys_dir) / FILENAME, (header + body).encode("utf-8"), 0o644)


def add_entry(keys_dir: Path, entry: Entry, *, replace: bool = False) -> None:
    """Append ``entry`` atomically; refuse a duplicate key or name unless ``replace``."""
    private_dir(Path(keys_dir))
    with _locked(keys_dir):
        entries = read_entries(keys_dir)
        clash = [e for e in entries if e.public_key == entry.public_key or e.name == entry.name]
        if clash and not replace:
            raise WhitelistError(f"{clash[0].name!r} is already in the whitelist with that key or "
                                 "name; remove it first")
        _write(keys_dir, [e for e in entries if e not in clash] + [entry])


def remove_entry(keys_dir: Path, name_or_key: str) -> Entry:
    """Remove the entry with that name or public key atomically; return it."""
    if not (Path(keys_dir) / FILENAME).exists():
        raise WhitelistError(f"no whitelist in {keys_dir}, so no entry named {name_or_key!r}")
    with _locked(keys_dir):
        entries = read_entries(keys_dir)
        gone = [e for e in entries
                if e.name == name_or_key or e.public_key.decode("ascii") == name_or_key]
        if not gone:
            raise WhitelistError(f"no whitelist entry named {name_or_key!r}")
        _write(keys_dir, [e for e in entries if e not in gone])
        return gone[0]
