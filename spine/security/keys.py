"""Persistent CURVE identities (INF-03) in ZPL certificate files.

For an identity NAME the key directory holds ``NAME.key`` (public, 0644) and
``NAME.key_secret`` (public and secret, 0600), the format ``zmq.auth.load_certificate`` and
CZMQ read. Keys are generated only when missing, so a restart never changes who a
component is; a secret file readable by group or others is refused, as ssh does.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import zmq
import zmq.auth

from spine.errors import KeyFileError
from spine.fsutil import atomic_write, private_dir

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
Z85_KEY_RE = re.compile(r"^[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$")


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A CURVE identity: Z85 public and secret keys (40 ASCII bytes each)."""

    name: str
    public: bytes
    secret: bytes


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid identity name, else raise KeyFileError."""
    if not NAME_RE.fullmatch(name):
        raise KeyFileError(f"identity name {name!r} is invalid: use 1-32 letters, digits, "
                           "'_', '.' or '-', starting with a letter or digit")
    return name


def check_public_key(key: str | bytes) -> bytes:
    """Return a Z85 public key as bytes if it is well formed, else raise KeyFileError."""
    raw = key.encode("utf-8", "replace") if isinstance(key, str) else key
    # fullmatch: re's "$" would also accept a trailing newline
    if not Z85_KEY_RE.fullmatch(raw.decode("ascii", "replace")):
        raise KeyFileError(f"{raw!r} is not a Z85 CURVE public key (40 characters)")
    return raw


def public_path(keys_dir: Path, name: str) -> Path:
    """Where the public certificate of ``name`` lives."""
    return Path(keys_dir) / f"{check_name(name)}.key"


def secret_path(keys_dir: Path, name: str) -> Path:
    """Where the secret certificate of ``name`` lives."""
    return Path(keys_dir) / f"{check_name(name)}.key_secret"


def _certificate(name: str, public: bytes, secret: bytes | None) -> bytes:
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    kind = "Secret" if secret else "Public"
    lines = [f"#   ZeroMQ CURVE {kind} Certificate for {name}, made by spine on {created}",
             "#   Exchange the public certificate freely; never copy the secret one.", "",
             "metadata", f"    name = \"{name}\"", "curve",
             f"    public-key = \"{public.decode('ascii')}\""]
    if secret:
        lines.append(f"    secret-key = \"{secret.decode('ascii')}\"")
    return ("\n".join(lines) + "\n").encode("ascii")


def _check_secret_permissions(path: Path) -> None:
    st = path.stat()
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise KeyFileError(
            f"secret key {path} has mode {stat.S_IMODE(st.st_mode):04o}: it is readable by "
            f"group or others, so it is refused. Fix it with: chmod 600 {path} "
            "(and consider the key compromised if others could read it)")
    if st.st_uid != os.geteuid():
        raise KeyFileError(f"secret key {path} belongs to uid {st.st_uid}, not to this user "
                           f"(uid {os.geteuid()}); chown it or run as its owner")


def load_keypair(keys_dir: Path, name: str) -> KeyPair:
    """Load and validate the identity ``name``; raise KeyFileError if anything is wrong."""
    path = secret_path(keys_dir, name)
    if not path.exists():
        raise KeyFileError(f"no secret key {path}; create it with: spine keys init {name}")
    _check_secret_permissions(path)
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"secret key {path} is unreadable or corrupt ({exc}); "
                           f"move it away and run: spine keys init {name}") from None
    if not secret or not public:
        raise KeyFileError(f"{path} lacks a public-key or secret-key line; it is corrupt")
    try:
        derived = zmq.curve_public(secret)
    except (zmq.ZMQError, ValueError) as exc:
        raise KeyFileError(f"secret key in {path} is not a valid Z85 CURVE key ({exc})") from None
    if derived != public:
        raise KeyFileError(f"secret key in {path} does not match its public key; the file was "
                           "edited or corrupted. Restore it from backup, or rotate the identity")
    pub_file = public_path(keys_dir, name)
    if pub_file.exists():
        try:
            stored, _ = zmq.auth.load_certificate(pub_file)
        except (ValueError, OSError) as exc:
            raise KeyFileError(f"public key {pub_file} is corrupt ({exc})") from None
        if stored != public:
            raise KeyFileError(f"public key {pub_file} does not match {path}; delete {pub_file} "
                               f"and run 'spine keys show {name}' to rewrite it")
    else:
        atomic_write(pub_file, _certificate(name, public, None), 0o644)
    return KeyPair(name, public, secret)


def create_keypair(keys_dir: Path, name: str) -> KeyPair:
    """Generate and store a new identity; refuse to overwrite an existing secret key."""
    keys_dir = Path(keys_dir)
    private_dir(keys_dir)
    public, secret = zmq.curve_keypair()
    try:
        atomic_write(secret_path(keys_dir, name), _certificate(name, public, secret), 0o600,
                     exclusive=True)
    except FileExistsError:
        raise KeyFileError(f"{secret_path(keys_dir, name)} already exists; refusing to replace "
                           "an identity (use 'spine keys rotate' to change keys)") from None
    atomic_write(public_path(keys_dir, name), _certificate(name, public, None), 0o644)
    return KeyPair(name, public, secret)


def load_or_create(keys_dir: Path, name: str) -> KeyPair:
    """Load the identity ``name``, generating it only if its secret key does not exist.

    The key directory is created private or checked (:func:`spine.fsutil.private_dir`).
    """
    private_dir(Path(keys_dir))
    if secret_path(keys_dir, name).exists():
        return load_keypair(keys_dir, name)
    try:
        return create_keypair(keys_dir, name)
    except KeyFileError:
        if secret_path(keys_dir, name).exists():  # another process created it first
            return load_keypair(keys_dir, name)
        raise


def load_public(path: Path) -> bytes:
    """Read the public key from a certificate file (public or secret)."""
    try:
        public, _ = zmq.auth.load_certificate(path)
    except (ValueError, OSError) as exc:
        raise KeyFileError(f"cannot read a public key from {path}: {exc}") from None
    return check_public_key(public)
