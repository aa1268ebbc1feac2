"""spine: the message bus of a 1 kHz real-time system, on ZeroMQ.

What a component author needs is exported here: the client (:class:`Component`), the
message types and component kinds of the NeuralSpike protocol, the waveform channel, the
resilience tools and the errors, all rooted in :class:`SpineError`.

The names are loaded on first use (PEP 562), so ``import spine`` or importing one pure
module such as ``spine.protocol.framing`` costs only what that module needs: no zmq, numpy
or shared-memory extension until a name that uses them is touched.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("Component", "Message", "Plane"), "spine.client.component"),
    **dict.fromkeys((
        "AuthError", "BadChecksumError", "BadLengthError", "BadMagicError", "BrokerUnavailable",
        "CircuitOpenError", "ConfigError", "EnvelopeError", "KeyFileError", "PairingError",
        "ProtocolError", "RecipientBusy", "RecipientQueueFull", "RecipientUnreachable",
        "RefusalReason", "ReplayError",
        "RequestTimeout", "RoutingError", "SecureChannelError", "SendFailed", "ShmError",
        "ShmFrameOverwritten", "ShmLayoutError", "ShmWriterGone", "SpineError",
        "StaleMessageError", "StateStoreError", "UnknownRecipient", "WhitelistError"),
        "spine.errors"),
    "new_spike": "spine.protocol.envelope",
    **dict.fromkeys(("Kind", "MsgClass"), "spine.protocol.framing"),
    **dict.fromkeys((
        "CommandRequest", "CommandResponse", "ComponentID", "NeuralSpike", "NeurogenesisEvent",
        "RetrieveRequest", "SparseWaveform", "StatusReport", "WaveformSHM"),
        "spine.protocol.neural_spike_pb2"),
    "BreakerStore": "spine.resilience.breaker_store",
    "CircuitBreaker": "spine.resilience.guard",
    **dict.fromkeys(("CoherenceChecker", "CoherenceLimits"), "spine.resilience.coherence"),
    "DedupWindow": "spine.resilience.dedup",
    **dict.fromkeys(("FrameDecoder", "FrameEncoder"), "spine.resilience.secure_channel"),
    "ReliableSender": "spine.resilience.reliable_send",
    "RetryPolicy": "spine.resilience.retry",
    **dict.fromkeys(("DescriptorFollower", "DescriptorPublisher"), "spine.shm.bus"),
    "WaveformReader": "spine.shm.reader",
    "WaveformWriter": "spine.shm.writer",
}
_MODULES = {"pb": "spine.protocol.neural_spike_pb2"}

__all__ = sorted([*_EXPORTS, *_MODULES])


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first use, then cache the name here."""
    if name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    else:
        raise AttributeError(f"module 'spine' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS, *_MODULES])


if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, eagerly
    from spine.client.component import Component, Message, Plane
    from spine.errors import (AuthError, BadChecksumError, BadLengthError, BadMagicError,
                              BrokerUnavailable, CircuitOpenError, ConfigError, EnvelopeError,
                              KeyFileError, PairingError, ProtocolError, RecipientBusy,
                              RecipientQueueFull,
                              RecipientUnreachable, RefusalReason, ReplayError, RequestTimeout,
                              RoutingError, SecureChannelError, SendFailed, ShmError,
                              ShmFrameOverwritten, ShmLayoutError, ShmWriterGone, SpineError,
                              StaleMessageError, StateStoreError, UnknownRecipient,
                              WhitelistError)
    from spine.protocol import neural_spike_pb2 as pb
    from spine.protocol.envelope import new_spike
    from spine.protocol.framing import Kind, MsgClass
    from spine.protocol.neural_spike_pb2 import (CommandRequest, CommandResponse, ComponentID,
                                                 NeuralSpike, NeurogenesisEvent,
                                                 RetrieveRequest, SparseWaveform, StatusReport,
                                                 WaveformSHM)
    from spine.resilience.breaker_store import BreakerStore
    from spine.resilience.coherence import CoherenceChecker, CoherenceLimits
    from spine.resilience.dedup import DedupWindow
    from spine.resilience.guard import CircuitBreaker
    from spine.resilience.reliable_send import ReliableSender
    from spine.resilience.retry import RetryPolicy
    from spine.resilience.secure_channel import FrameDecoder, FrameEncoder
    from spine.shm.bus import DescriptorFollower, DescriptorPublisher
    from spine.shm.reader import WaveformReader
    from spine.shm.writer import WaveformWriter
