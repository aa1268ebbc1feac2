"""Bootstrap pairing (SEC-04): the one door into a whitelisted bus, as a pure state machine.

States (SPEC §3):

- LOCKED: the normal state. No window is open; every pairing attempt is refused.
- BOOTSTRAP: a window is open (the whitelist was empty at start, or an authorised operator
  opened one). A 256-bit token was drawn and handed back once to be printed; only its
  SHA-256 is kept. No newcomer has presented a proof yet.
- PAIRING: the window is open and at least one newcomer has presented a proof that did
  not match; newcomers may retry until the window closes or the lockout.
- VERIFICATION: a proof is being compared. `attempt` enters and leaves it before
  returning; it shows in the decision's `path`, which the broker logs.

Events and the machine's answers:

    LOCKED       --open_window-->        BOOTSTRAP     (returns the token, once)
    BOOTSTRAP    --attempt(match)-->     VERIFICATION --> LOCKED      Admit
    BOOTSTRAP    --attempt(mismatch)-->  VERIFICATION --> PAIRING     Refuse
    PAIRING      --attempt(...)-->       as from BOOTSTRAP
    any open     --attempt(kind not admitted)--> PAIRING              Refuse (before the proof)
    any open     --5th failure-->        LOCKED                       Refuse(window_closed)
    any open     --check at expiry-->    LOCKED                       WindowClosed(EXPIRED)
    any open     --close_window-->       LOCKED                       WindowClosed(OPERATOR)
    LOCKED       --attempt-->            LOCKED                       Refuse (no window)

Whatever a *peer* sends is answered with a decision (Admit or Refuse, and every Refuse is
a security alert to log with the peer's key and address). What only the broker or an
operator can do wrong (opening an open window, closing a closed one) raises PairingError.

The machine keeps no token: only the SHA-256 digest in a bytearray, overwritten with zeros
when the window closes. Python may hold other copies of the token in memory (the caller's
bytes object); the broker must print it and drop it.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import math
import secrets
from collections import OrderedDict
from dataclasses import dataclass

from spine.errors import PairingError
from spine.protocol import neural_spike_pb2 as pb

__all__ = [
    "TOKEN_BYTES",
    "PROOF_BYTES",
    "DEFAULT_WINDOW_SECONDS",
    "DEFAULT_MAX_FAILURES",
    "ADMINISTRATOR_KIND",
    "default_kinds",
    "PairingState",
    "OpenReason",
    "CloseReason",
    "Refusal",
    "PairingRequest",
    "Admit",
    "Refuse",
    "WindowClosed",
    "PairingMachine",
    "proof_for",
]

TOKEN_BYTES = 32
"""The token is 256 bits from the OS's secure random source."""

PROOF_BYTES = hashlib.sha256().digest_size
"""A proof is the SHA-256 digest of the token: 32 bytes."""

DEFAULT_WINDOW_SECONDS = 300.0
"""A pairing window closes 300 s (monotonic) after it opened, whatever happens."""

DEFAULT_MAX_FAILURES = 5
"""The window closes after this many refused attempts (brute-force lockout)."""

ADMINISTRATOR_KIND = pb.CLI_CONTROLLER
"""The kind that administers the broker: a window admits it only when the operator asks."""


def default_kinds() -> frozenset[int]:
    """The kinds a window admits unless told otherwise: every kind but the administrator's,
    so that an invite is never an administrator credential by accident."""
    return frozenset(pb.ComponentID.values()) - {ADMINISTRATOR_KIND}


_RETIRED_MEMORY = 32  # how many closed windows' fingerprints are remembered to name a reuse


class PairingState(enum.Enum):
    """Where the pairing door stands; see the module docstring."""

    LOCKED = "locked"
    BOOTSTRAP = "bootstrap"
    PAIRING = "pairing"
    VERIFICATION = "verification"


class OpenReason(enum.Enum):
    """Why a window was opened (logged; the broker decides who may open one)."""

    EMPTY_WHITELIST = "empty-whitelist"
    OPERATOR = "operator"


class CloseReason(enum.Enum):
    """Why a window closed."""

    PAIRED = "paired"
    EXPIRED = "expired"
    LOCKOUT = "lockout"
    OPERATOR = "operator"


class Refusal(enum.Enum):
    """Why a pairing attempt was refused."""

    NO_WINDOW = "no pairing window is open"
    EXPIRED = "the pairing window has expired"
    WRONG_TOKEN = "the proof does not match the token"
    SPENT_TOKEN = "the token was already used"
    LOCKED_OUT = "the window was closed after too many failed attempts"
    MALFORMED = "the pairing request is malformed"
    KIND_NOT_ADMITTED = "this window does not admit that kind"


@dataclass(frozen=True, slots=True)
class PairingRequest:
    """What a newcomer presents: its CURVE public key (as authenticated by the transport),
    where it connects from, the name and kind it asks for, and its proof."""

    public_key: str
    address: str
    name: str
    kind: int
    proof: bytes


@dataclass(frozen=True, slots=True)
class Admit:
    """The proof matched: append `request`'s key to the whitelist. The window is closed."""

    request: PairingRequest
    at: float
    path: tuple[PairingState, ...]


@dataclass(frozen=True, slots=True)
class Refuse:
    """The attempt is refused; log it as a security alert with the peer's key and address.

    `failures` counts refused attempts in the current window (0 when none was open);
    `window_closed` is True when this refusal closed the window (lockout).
    """

    public_key: str
    address: str
    reason: Refusal
    failures: int
    window_closed: bool
    at: float
    path: tuple[PairingState, ...]
    detail: str = ""

    @property
    def alert(self) -> str:
        """A one-line security alert for the log."""
        extra = f" ({self.detail})" if self.detail else ""
        closed = "; window closed" if self.window_closed else ""
        return (
            f"SECURITY: pairing refused for key {self.public_key} from {self.address}: "
            f"{self.reason.value}{extra} [failures in window: {self.failures}{closed}]"
        )


@dataclass(frozen=True, slots=True)
class WindowClosed:
    """The window closed for `reason` at `at`; the token digest has been wiped."""

    reason: CloseReason
    at: float


def proof_for(token: bytes) -> bytes:
    """The proof a newcomer presents for `token`: its SHA-256 digest (32 bytes)."""
    return hashlib.sha256(token).digest()


class PairingMachine:
    """The pairing door of one broker. Pure: every method takes `now` (monotonic seconds)."""

    def __init__(
        self,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        max_failures: int = DEFAULT_MAX_FAILURES,
    ) -> None:
        if not (math.isfinite(window_seconds) and window_seconds > 0):
            raise PairingError(
                f"pairing window must be a positive number of seconds, got {window_seconds!r}"
            )
        if max_failures < 1:
            raise PairingError(f"max_failures must be at least 1, got {max_failures!r}")
        self._window_seconds = window_seconds
        self._max_failures = max_failures
        self._state = PairingState.LOCKED
        self._digest = bytearray()
        self._expires_at: float | None = None
        self._failures = 0
        self._open_reason: OpenReason | None = None
        self._kinds: frozenset[int] = frozenset()
        # Keyed fingerprints of closed windows' proofs, so a reused token is named as such.
        # The key lives only in this process; a fingerprint cannot be turned into a proof.
        self._fingerprint_key = secrets.token_bytes(32)
        self._retired: OrderedDict[bytes, Refusal] = OrderedDict()

    @property
    def state(self) -> PairingState:
        """The current state (never VERIFICATION between calls)."""
        return self._state

    @property
    def window_open(self) -> bool:
        """True while a window is open (BOOTSTRAP or PAIRING) and not yet closed by `check`."""
        return self._state is not PairingState.LOCKED

    @property
    def failures(self) -> int:
        """Refused attempts in the current window (0 when LOCKED)."""
        return self._failures

    @property
    def open_reason(self) -> OpenReason | None:
        """Why the current window was opened, or None when LOCKED."""
        return self._open_reason

    @property
    def admitted_kinds(self) -> frozenset[int]:
        """The ComponentID values the open window admits (empty when LOCKED)."""
        return self._kinds

    @property
    def window_seconds(self) -> float:
        """How long a window stays open."""
        return self._window_seconds

    def expires_at(self) -> float | None:
        """Monotonic time at which the open window closes, or None when LOCKED."""
        return self._expires_at

    def remaining(self, now: float) -> float:
        """Seconds left in the open window at `now` (0.0 when LOCKED or expired)."""
        if self._expires_at is None:
            return 0.0
        return max(0.0, self._expires_at - now)

    def next_deadline(self, now: float | None = None) -> float | None:
        """When `check` has something to do (the window's expiry), or None when LOCKED."""
        return self._expires_at

    def open_window(self, now: float, reason: OpenReason,
                    kinds: frozenset[int] | None = None) -> bytes:
        """Open a window: LOCKED → BOOTSTRAP. Returns the fresh 32-byte token, once.

        The window admits newcomers of ``kinds`` only (default: ``default_kinds()``, every
        kind but ``CLI_CONTROLLER``). The broker prints the token (as part of the invite)
        and drops it; only its SHA-256 is kept here. Raises PairingError if a window is
        already open or ``kinds`` is empty or names an unknown kind.
        """
        kinds = default_kinds() if kinds is None else frozenset(kinds)
        unknown = kinds - set(pb.ComponentID.values())
        if not kinds or unknown:
            raise PairingError(f"a pairing window must admit at least one known kind, got "
                               f"{sorted(kinds)!r}")
        if self._state is not PairingState.LOCKED:
            raise PairingError(
                f"a pairing window is already open ({self.remaining(now):.0f} s left); "
                "use the printed invite, or close the window first"
            )
        token = secrets.token_bytes(TOKEN_BYTES)
        self._digest = bytearray(proof_for(token))
        self._expires_at = now + self._window_seconds
        self._failures = 0
        self._open_reason = reason
        self._kinds = kinds
        self._state = PairingState.BOOTSTRAP
        return token

    def close_window(self, now: float) -> WindowClosed:
        """An operator closes the open window: → LOCKED, digest wiped.

        Raises PairingError when no window is open.
        """
        if self._state is PairingState.LOCKED:
            raise PairingError("no pairing window is open: there is nothing to close")
        return self._close(CloseReason.OPERATOR, Refusal.EXPIRED, now)

    def check(self, now: float) -> WindowClosed | None:
        """Close the window if it has expired at `now` (exactly at opening + window)."""
        if self._expires_at is not None and now >= self._expires_at:
            return self._close(CloseReason.EXPIRED, Refusal.EXPIRED, now)
        return None

    def attempt(self, request: PairingRequest, now: float) -> Admit | Refuse:
        """A newcomer presents its proof; decide whether it may join.

        Admit only if a window is open, not expired at `now`, admits the request's kind,
        and the proof equals the
        token's SHA-256 (constant-time comparison). The window then closes (a token pairs
        one newcomer). Every other outcome is a Refuse to log as a security alert; each
        refusal inside a window counts towards the lockout.
        """
        key, address = request.public_key, request.address
        if len(request.proof) != PROOF_BYTES:
            detail = f"proof is {len(request.proof)} bytes, expected {PROOF_BYTES}"
            return self._refuse(key, address, Refusal.MALFORMED, now, detail)
        if self._state is PairingState.LOCKED:
            reason = self._retired.get(self._fingerprint(request.proof), Refusal.NO_WINDOW)
            return self._refuse(key, address, reason, now)
        expired = self._refuse_if_expired(key, address, now, "")
        if expired is not None:
            return expired
        if request.kind not in self._kinds:
            detail = (f"kind {pb.ComponentID.Name(request.kind)} asked; the window admits "
                      f"{', '.join(pb.ComponentID.Name(k) for k in sorted(self._kinds))}")
            return self._refuse(key, address, Refusal.KIND_NOT_ADMITTED, now, detail)
        before = self._state
        if hmac.compare_digest(request.proof, self._digest):
            self._close(CloseReason.PAIRED, Refusal.SPENT_TOKEN, now)
            return Admit(request, now, (before, PairingState.VERIFICATION, PairingState.LOCKED))
        reason = self._retired.get(self._fingerprint(request.proof), Refusal.WRONG_TOKEN)
        return self._refuse(key, address, reason, now, verified=True)

    def malformed(self, public_key: str, address: str, detail: str, now: float) -> Refuse:
        """The broker could not parse a pairing request: refuse it (counts as a failure)."""
        return self._refuse(public_key, address, Refusal.MALFORMED, now, detail)

    def _refuse_if_expired(
        self, public_key: str, address: str, now: float, detail: str
    ) -> Refuse | None:
        if self._expires_at is None or now < self._expires_at:
            return None
        failures = self._failures
        self._close(CloseReason.EXPIRED, Refusal.EXPIRED, now)
        return Refuse(
            public_key, address, Refusal.EXPIRED, failures, True, now,
            (PairingState.LOCKED,), detail,
        )

    def _refuse(
        self,
        public_key: str,
        address: str,
        reason: Refusal,
        now: float,
        detail: str = "",
        *,
        verified: bool = False,
    ) -> Refuse:
        if self._state is PairingState.LOCKED:
            return Refuse(
                public_key, address, reason, 0, False, now, (PairingState.LOCKED,), detail
            )
        expired = self._refuse_if_expired(public_key, address, now, detail)
        if expired is not None:
            return expired
        before = self._state
        via = (before, PairingState.VERIFICATION) if verified else (before,)
        self._failures += 1
        failures = self._failures
        if failures >= self._max_failures:
            self._close(CloseReason.LOCKOUT, Refusal.LOCKED_OUT, now)
            path = (*via, PairingState.LOCKED)
            return Refuse(public_key, address, reason, failures, True, now, path, detail)
        self._state = PairingState.PAIRING
        path = (*via, PairingState.PAIRING)
        return Refuse(public_key, address, reason, failures, False, now, path, detail)

    def _close(self, why: CloseReason, retired_as: Refusal, now: float) -> WindowClosed:
        if len(self._digest) == PROOF_BYTES:
            self._retired[self._fingerprint(self._digest)] = retired_as
            while len(self._retired) > _RETIRED_MEMORY:
                self._retired.popitem(last=False)
        for i in range(len(self._digest)):
            self._digest[i] = 0
        self._digest = bytearray()
        self._expires_at = None
        self._open_reason = None
        self._kinds = frozenset()
        self._failures = 0
        self._state = PairingState.LOCKED
        return WindowClosed(why, now)

    def _fingerprint(self, proof: bytes | bytearray) -> bytes:
        return hashlib.blake2b(proof, key=self._fingerprint_key, digest_size=16).digest()
