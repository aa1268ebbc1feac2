"""spine: the message bus of a 1 kHz real-time system, on ZeroMQ.

What a component author needs is exported here: the client (:class:`Component`), the
message types and component kinds of the NeuralSpike protocol, the waveform channel, the
resilience tools and the errors, all rooted in :class:`SpineError`.
"""

from spine.client.component import Component, Message, Plane
from spine.errors import (AuthError, BadChecksumError, BadLengthError, BadMagicError,
                          BrokerUnavailable, CircuitOpenError, ConfigError, EnvelopeError,
                          KeyFileError, PairingError, ProtocolError, ReplayError, RequestTimeout,
                          RoutingError, SecureChannelError, SendFailed, ShmError,
                          ShmFrameOverwritten, ShmLayoutError, ShmWriterGone, SpineError,
                          StaleMessageError, StateStoreError, WhitelistError)
from spine.protocol import neural_spike_pb2 as pb
from spine.protocol.envelope import new_spike
from spine.protocol.framing import Kind, MsgClass
from spine.protocol.neural_spike_pb2 import (CommandRequest, CommandResponse, ComponentID,
                                             NeuralSpike, NeurogenesisEvent, RetrieveRequest,
                                             SparseWaveform, StatusReport, WaveformSHM)
from spine.resilience import (BreakerStore, CircuitBreaker, CoherenceChecker, CoherenceLimits,
                              DedupWindow, FrameDecoder, FrameEncoder, ReliableSender, RetryPolicy)
from spine.shm import (DescriptorFollower, DescriptorPublisher, WaveformReader, WaveformWriter)

__version__ = "0.1.0"

__all__ = [
    "AuthError", "BadChecksumError", "BadLengthError", "BadMagicError", "BreakerStore",
    "BrokerUnavailable", "CircuitBreaker", "CircuitOpenError", "CoherenceChecker",
    "CoherenceLimits", "CommandRequest", "CommandResponse", "Component", "ComponentID",
    "ConfigError", "DedupWindow", "DescriptorFollower", "DescriptorPublisher", "EnvelopeError",
    "FrameDecoder", "FrameEncoder", "KeyFileError", "Kind", "Message", "MsgClass", "NeuralSpike",
    "NeurogenesisEvent", "PairingError", "Plane", "ProtocolError", "ReliableSender", "ReplayError",
    "RequestTimeout", "RetrieveRequest", "RetryPolicy", "RoutingError", "SecureChannelError",
    "SendFailed", "ShmError", "ShmFrameOverwritten", "ShmLayoutError", "ShmWriterGone",
    "SparseWaveform", "SpineError", "StaleMessageError", "StateStoreError", "StatusReport",
    "WaveformReader", "WaveformSHM", "WaveformWriter", "WhitelistError", "new_spike", "pb",
]
