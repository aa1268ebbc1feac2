"""The one exception hierarchy of spine: every error spine raises derives from SpineError.

Each message says what went wrong and what a person can do about it; what a program needs
to decide (a refusal's reason, a breaker's retry time) is carried as attributes, never only
in the text. The families, in the order below::

    SpineError
    ├── configuration and files
    │   ├── ConfigError                  a config file, flag or environment variable
    │   │   └── UnsafeDirectoryError     a directory others could write (path, problem, fix)
    │   ├── KeyFileError                 a key file: missing, corrupt, unsafe
    │   ├── WhitelistError               the whitelist or revocation list
    │   └── StateStoreError              persisted state (breaker database)
    ├── security
    │   ├── AuthError                    not who it must be
    │   └── PairingError                 bootstrap pairing refused or failed
    ├── the wire
    │   └── ProtocolError
    │       ├── EnvelopeError            a NeuralSpike field missing or invalid
    │       ├── StaleMessageError        too old, or dated in the future
    │       ├── MortonRangeError         (also ValueError)
    │       ├── SparseWaveformError
    │       └── SecureChannelError       SEC-01 frames
    │           ├── BadMagicError
    │           ├── BadLengthError
    │           ├── BadChecksumError
    │           └── ReplayError
    ├── delivery
    │   ├── RoutingError                 the broker refused a message (reason, recipient)
    │   │   ├── UnknownRecipient
    │   │   ├── RecipientBusy
    │   │   │   └── RecipientQueueFull   its queue in the broker is full (slow consumer)
    │   │   └── RecipientUnreachable
    │   ├── RequestTimeout               (also TimeoutError)
    │   ├── BrokerUnavailable
    │   ├── SendFailed
    │   └── CircuitOpenError             (breaker, retry_at, retry_after)
    ├── shared memory
    │   └── ShmError
    │       ├── ShmLayoutError
    │       ├── ShmFrameOverwritten
    │       └── ShmWriterGone
    └── operations
        ├── SupervisorError
        ├── CommandUnavailable
        └── HarnessError                 the latency harness, benchmarks, spine.testing
            └── BenchError               (reason, role, timeout)
"""

from __future__ import annotations

import enum
from datetime import datetime


class SpineError(Exception):
    """Root of every error raised by spine."""


# ------------------------------------------------------------------ configuration and files

class ConfigError(SpineError):
    """A configuration file, flag or environment variable is invalid.

    When one value is out of its range, ``key``, ``value`` and ``allowed`` (the range, as
    a person reads it) say which; otherwise they are None.
    """

    def __init__(self, message: str, *, key: str | None = None, value: object = None,
                 allowed: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.value = value
        self.allowed = allowed


class UnsafeDirectoryError(ConfigError):
    """A runtime, key or state directory could be changed by someone else, so it is refused.

    ``path`` is the directory, ``problem`` what is wrong with it and ``fix`` the command
    that makes it safe (as ssh refuses a ``~/.ssh`` that others can write).
    """

    def __init__(self, path: object, problem: str, fix: str) -> None:
        super().__init__(f"{path}: {problem}, so it is refused. Fix it with: {fix}")
        self.path = path
        self.problem = problem
        self.fix = fix


class KeyFileError(SpineError):
    """A key file is missing, corrupt, mismatched or has unsafe permissions."""


class WhitelistError(SpineError):
    """The whitelist (or revocation list) file is corrupt or an edit is invalid."""


class StateStoreError(SpineError):
    """Persisted state (e.g. the circuit-breaker database) is unreadable or corrupt."""


# ------------------------------------------------------------------ security

class AuthError(SpineError):
    """Authentication failed: the peer or this component is not who it must be."""


class PairingError(SpineError):
    """Bootstrap pairing failed or was refused."""


# ------------------------------------------------------------------ the wire

class ProtocolError(SpineError):
    """A frame or envelope broke the wire contract (bad header, size, protobuf)."""


class EnvelopeError(ProtocolError):
    """A NeuralSpike envelope lacks a required field or carries an invalid one."""


class StaleMessageError(ProtocolError):
    """A message is older than its class allows, or dated in the future."""


class MortonRangeError(ProtocolError, ValueError):
    """A coordinate or key is outside what a 9-D Morton key with 14 bits per axis can hold."""


class SparseWaveformError(ProtocolError):
    """A SparseWaveform is malformed: array lengths differ, a key is not 16 bytes, or a node is off the grid."""


class SecureChannelError(ProtocolError):
    """A secure-channel (SEC-01) frame was rejected."""


class BadMagicError(SecureChannelError):
    """A secure-channel frame did not start with the magic 0xDEADBEEF."""


class BadLengthError(SecureChannelError):
    """A secure-channel frame declared a payload longer than the channel allows."""


class BadChecksumError(SecureChannelError):
    """A secure-channel payload does not match the CRC-32 in its header."""


class ReplayError(SecureChannelError):
    """A secure-channel frame was replayed, reordered or skipped (unexpected sequence_id)."""


# ------------------------------------------------------------------ delivery

class RefusalReason(enum.IntEnum):
    """Why the broker refused a message: the values of ``Refusal.Reason`` in
    ``protos/spine/v1/neural_spike.proto``, carried in the ERROR it sends back.

    ``name.lower()`` is the key the broker counts the drop under in ``spine status``.
    """

    UNSPECIFIED = 0
    UNKNOWN_RECIPIENT = 1
    RECIPIENT_BUSY = 2
    UNREACHABLE = 3
    HEARTBEAT_ON_DATA = 4
    CONTROL_ONLY = 5
    OVERSIZED_COMMAND = 6
    BAD_COMMAND = 7
    QUEUE_FULL = 8

    @property
    def label(self) -> str:
        """The lower-case name: the drop counter's key and the first word of the ERROR text."""
        return self.name.lower()


class RoutingError(SpineError):
    """The broker refused a message; ``reason`` says why, ``recipient`` to whom it was
    addressed, ``retry_after`` (seconds, or None) when trying again may succeed."""

    def __init__(self, message: str, *, reason: RefusalReason = RefusalReason.UNSPECIFIED,
                 recipient: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.recipient = recipient
        self.retry_after = retry_after

    @classmethod
    def for_reason(cls, message: str, reason: RefusalReason, recipient: str = "",
                   retry_after: float | None = None) -> RoutingError:
        """The most specific RoutingError for ``reason`` (a plain RoutingError for the rest)."""
        kind = _REFUSAL_ERRORS.get(reason, RoutingError)
        return kind(message, reason=reason, recipient=recipient, retry_after=retry_after)


class UnknownRecipient(RoutingError):
    """No component of the addressed name or kind is connected on that plane (yet)."""


class RecipientBusy(RoutingError):
    """The recipient is not reading its queue; the message was not delivered."""


class RecipientQueueFull(RecipientBusy):
    """The recipient's own queue in the broker is full (it is not keeping up): this BULK,
    COGNITIVE or CONTROL data message was refused. ``retry_after`` says when to try again."""


class RecipientUnreachable(RoutingError):
    """The recipient disconnected before the message could be handed to it."""


_REFUSAL_ERRORS: dict[RefusalReason, type[RoutingError]] = {
    RefusalReason.UNKNOWN_RECIPIENT: UnknownRecipient,
    RefusalReason.RECIPIENT_BUSY: RecipientBusy,
    RefusalReason.UNREACHABLE: RecipientUnreachable,
    RefusalReason.QUEUE_FULL: RecipientQueueFull,
}


class RequestTimeout(SpineError, TimeoutError):
    """A request got no reply within its timeout."""


class BrokerUnavailable(SpineError):
    """The broker is not answering (dead, restarting or unreachable)."""


class SendFailed(SpineError):
    """A reliable send gave up after its retries: the message did not go."""


class CircuitOpenError(SpineError):
    """A circuit breaker is open: the call was refused without touching the dependency.

    ``breaker`` names it; ``retry_at`` (aware UTC) and ``retry_after`` (seconds from now)
    say when the next trial call will be allowed.
    """

    def __init__(self, message: str, *, breaker: str, retry_at: datetime,
                 retry_after: float) -> None:
        super().__init__(message)
        self.breaker = breaker
        self.retry_at = retry_at
        self.retry_after = retry_after


# ------------------------------------------------------------------ shared memory

class ShmError(SpineError):
    """The shared-memory waveform channel failed."""


class ShmLayoutError(ShmError):
    """A shared-memory segment does not have the expected layout (magic, version, size)."""


class ShmFrameOverwritten(ShmError):
    """The frame asked for was overwritten (or its writer died mid-write) before it could be read whole."""


class ShmWriterGone(ShmError):
    """The process that writes a shared-memory segment is no longer alive."""


# ------------------------------------------------------------------ operations

class SupervisorError(SpineError):
    """The supervisor could not start or revive a component."""


class CommandUnavailable(SpineError):
    """A ``spine`` subcommand cannot run: the module implementing it is not installed."""


class HarnessError(SpineError):
    """The latency harness, a benchmark or a test rig (``spine.testing``) could not complete:
    a role process failed, hung or never got ready, or an expected condition never came."""


class BenchError(HarnessError):
    """A benchmark could not complete: a role process failed, hung or never got ready, or a condition
    the measurement needs (a data backlog, every message delivered) was not reached.

    ``reason`` says which, one of the constants below; ``role`` names the process concerned (None when
    it is the coordinator's own condition); ``timeout`` is how long was waited, in seconds (None if no
    wait was involved).
    """

    NOT_READY = "not_ready"              # a role did not say it was set up in time
    NO_START_SIGNAL = "no_start_signal"  # a role got no start signal from the coordinator in time
    NO_RESULT = "no_result"              # a role sent no result (or stopped acknowledging) in time
    EXITED = "exited"                    # a role's process ended before it sent what was expected
    ROLE_FAILED = "role_failed"          # a role raised; the message carries its traceback
    UNEXPECTED = "unexpected"            # a role or the coordinator sent something out of turn
    INCOMPLETE = "incomplete"            # the run did not reach what it measures (messages, backlog)

    def __init__(self, message: str, *, reason: str, role: str | None = None,
                 timeout: float | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.role = role
        self.timeout = timeout
