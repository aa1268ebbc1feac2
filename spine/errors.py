"""The one exception hierarchy of spine: every error spine raises derives from SpineError.

Each message says what went wrong and what a person can do about it.
"""

from __future__ import annotations


class SpineError(Exception):
    """Root of every error raised by spine."""


class ConfigError(SpineError):
    """A configuration file, flag or environment variable is invalid."""


class KeyFileError(SpineError):
    """A key file is missing, corrupt, mismatched or has unsafe permissions."""


class WhitelistError(SpineError):
    """The whitelist (or revocation list) file is corrupt or an edit is invalid."""


class AuthError(SpineError):
    """Authentication failed: the peer or this component is not who it must be."""


class PairingError(SpineError):
    """Bootstrap pairing failed or was refused."""


class ProtocolError(SpineError):
    """A frame or envelope broke the wire contract (bad header, size, protobuf)."""


class EnvelopeError(ProtocolError):
    """A NeuralSpike envelope lacks a required field or carries an invalid one."""


class StaleMessageError(ProtocolError):
    """A message is older than its class allows, or dated in the future."""


class RoutingError(SpineError):
    """The broker could not deliver a message (unknown or unreachable recipient)."""


class RequestTimeout(SpineError, TimeoutError):
    """A request got no reply within its timeout."""


class BrokerUnavailable(SpineError):
    """The broker is not answering (dead, restarting or unreachable)."""


class SendFailed(SpineError):
    """A reliable send gave up after its retries: the message did not go."""


class CircuitOpenError(SpineError):
    """A circuit breaker is open: the call was refused without touching the dependency."""


class StateStoreError(SpineError):
    """Persisted state (e.g. the circuit-breaker database) is unreadable or corrupt."""


class SecureChannelError(ProtocolError):
    """A secure-channel (SEC-01) frame was rejected."""


class ShmError(SpineError):
    """The shared-memory waveform channel failed."""


class ShmLayoutError(ShmError):
    """A shared-memory segment does not have the expected layout (magic, version, size)."""


class SupervisorError(SpineError):
    """The supervisor could not start or revive a component."""


class BadMagicError(SecureChannelError):
    """A secure-channel frame did not start with the magic 0xDEADBEEF."""


class BadLengthError(SecureChannelError):
    """A secure-channel frame declared a payload longer than the channel allows."""


class BadChecksumError(SecureChannelError):
    """A secure-channel payload does not match the CRC-32 in its header."""


class ReplayError(SecureChannelError):
    """A secure-channel frame was replayed, reordered or skipped (unexpected sequence_id)."""


class ShmFrameOverwritten(ShmError):
    """The frame asked for was overwritten (or its writer died mid-write) before it could be read whole."""


class ShmWriterGone(ShmError):
    """The process that writes a shared-memory segment is no longer alive."""


class MortonRangeError(ProtocolError, ValueError):
    """A coordinate or key is outside what a 9-D Morton key with 14 bits per axis can hold."""


class SparseWaveformError(ProtocolError):
    """A SparseWaveform is malformed: array lengths differ, a key is not 16 bytes, or a node is off the grid."""


class CommandUnavailable(SpineError):
    """A ``spine`` subcommand cannot run: the module implementing it is not installed."""


class HarnessError(SpineError):
    """The latency harness could not complete a run (a role process failed, hung or never got ready)."""


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
