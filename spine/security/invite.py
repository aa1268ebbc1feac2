"""The pairing invite and the pairing plane's wire contract (SEC-04).

The invite is one shell-safe word the broker logs when a window opens::

    spine1.<broker public key, 32 bytes in hex>.<token, 32 bytes in hex>

It carries the token *and* the broker's public key, so the newcomer pins the broker from
the start: its CURVE handshake fails with anyone else, and there is no trust-on-first-use
gap on its side. The pairing plane carries one request and one answer::

    request  [b"spine-pair/1", NAME (UTF-8), KIND (ComponentID name), PROOF (32 bytes)]
    answer   [b"spine-pair/1", b"OK" | b"REFUSED", TEXT (UTF-8, what to do)]

PROOF is the SHA-256 of the token (``spine.security.pairing.proof_for``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zmq.utils import z85

from spine.errors import PairingError
from spine.security.pairing import TOKEN_BYTES

PROTOCOL = b"spine-pair/1"
OK, REFUSED = b"OK", b"REFUSED"
INVITE_PREFIX = "spine1"
_HEX = 2 * TOKEN_BYTES  # a key and a token are both 32 bytes
_INVITE_RE = re.compile(rf"^{INVITE_PREFIX}\.([0-9a-f]{{{_HEX}}})\.([0-9a-f]{{{_HEX}}})$")


@dataclass(frozen=True, slots=True)
class Invite:
    """What the operator carries from the broker's log to the newcomer."""

    broker_key: bytes  # Z85, 40 bytes
    token: bytes  # 32 bytes

    def text(self) -> str:
        """The invite as one copy-pasteable, shell-safe word."""
        raw_key = z85.decode(self.broker_key)
        return f"{INVITE_PREFIX}.{raw_key.hex()}.{self.token.hex()}"

    @classmethod
    def parse(cls, text: str) -> "Invite":
        """Read an invite; raise PairingError saying what is wrong with it."""
        match = _INVITE_RE.match(text.strip())
        if match is None:
            raise PairingError("this is not a spine invite: expected 'spine1.<64 hex>.<64 hex>' "
                               "as printed in the broker's log (copy the whole word)")
        raw_key, token = bytes.fromhex(match[1]), bytes.fromhex(match[2])
        return cls(z85.encode(raw_key), token)
