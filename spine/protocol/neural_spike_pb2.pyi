from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ComponentID(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORCHESTRATOR: _ClassVar[ComponentID]
    PHYSICS_ENGINE: _ClassVar[ComponentID]
    MEMORY_SYSTEM: _ClassVar[ComponentID]
    REASONING_ENGINE: _ClassVar[ComponentID]
    EXECUTOR_KVM: _ClassVar[ComponentID]
    TAVILY_AGENT: _ClassVar[ComponentID]
    FIRECRAWL_AGENT: _ClassVar[ComponentID]
    GEMINI_AGENT: _ClassVar[ComponentID]
    HTTP_CLIENT: _ClassVar[ComponentID]
    CLI_CONTROLLER: _ClassVar[ComponentID]
    VISUAL_CORTEX: _ClassVar[ComponentID]
    AUDIO_CORTEX: _ClassVar[ComponentID]
ORCHESTRATOR: ComponentID
PHYSICS_ENGINE: ComponentID
MEMORY_SYSTEM: ComponentID
REASONING_ENGINE: ComponentID
EXECUTOR_KVM: ComponentID
TAVILY_AGENT: ComponentID
FIRECRAWL_AGENT: ComponentID
GEMINI_AGENT: ComponentID
HTTP_CLIENT: ComponentID
CLI_CONTROLLER: ComponentID
VISUAL_CORTEX: ComponentID
AUDIO_CORTEX: ComponentID

class NeuralSpike(_message.Message):
    __slots__ = ("request_id", "timestamp", "sender", "recipient", "data_wave", "command_req", "command_resp", "neurogenesis", "text_data", "rich_payload", "sparse_wave", "waveform_shm", "status", "retrieve", "meta", "neurochemistry", "training", "sender_instance", "recipient_instance", "refusal")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    DATA_WAVE_FIELD_NUMBER: _ClassVar[int]
    COMMAND_REQ_FIELD_NUMBER: _ClassVar[int]
    COMMAND_RESP_FIELD_NUMBER: _ClassVar[int]
    NEUROGENESIS_FIELD_NUMBER: _ClassVar[int]
    TEXT_DATA_FIELD_NUMBER: _ClassVar[int]
    RICH_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SPARSE_WAVE_FIELD_NUMBER: _ClassVar[int]
    WAVEFORM_SHM_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RETRIEVE_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    NEUROCHEMISTRY_FIELD_NUMBER: _ClassVar[int]
    TRAINING_FIELD_NUMBER: _ClassVar[int]
    SENDER_INSTANCE_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_INSTANCE_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    timestamp: int
    sender: ComponentID
    recipient: ComponentID
    data_wave: DenseWaveform
    command_req: CommandRequest
    command_resp: CommandResponse
    neurogenesis: NeurogenesisEvent
    text_data: str
    rich_payload: RichPayload
    sparse_wave: SparseWaveform
    waveform_shm: WaveformSHM
    status: StatusReport
    retrieve: RetrieveRequest
    meta: Metadata
    neurochemistry: NeurochemicalState
    training: TrainingMetadata
    sender_instance: str
    recipient_instance: str
    refusal: Refusal
    def __init__(self, request_id: _Optional[str] = ..., timestamp: _Optional[int] = ..., sender: _Optional[_Union[ComponentID, str]] = ..., recipient: _Optional[_Union[ComponentID, str]] = ..., data_wave: _Optional[_Union[DenseWaveform, _Mapping]] = ..., command_req: _Optional[_Union[CommandRequest, _Mapping]] = ..., command_resp: _Optional[_Union[CommandResponse, _Mapping]] = ..., neurogenesis: _Optional[_Union[NeurogenesisEvent, _Mapping]] = ..., text_data: _Optional[str] = ..., rich_payload: _Optional[_Union[RichPayload, _Mapping]] = ..., sparse_wave: _Optional[_Union[SparseWaveform, _Mapping]] = ..., waveform_shm: _Optional[_Union[WaveformSHM, _Mapping]] = ..., status: _Optional[_Union[StatusReport, _Mapping]] = ..., retrieve: _Optional[_Union[RetrieveRequest, _Mapping]] = ..., meta: _Optional[_Union[Metadata, _Mapping]] = ..., neurochemistry: _Optional[_Union[NeurochemicalState, _Mapping]] = ..., training: _Optional[_Union[TrainingMetadata, _Mapping]] = ..., sender_instance: _Optional[str] = ..., recipient_instance: _Optional[str] = ..., refusal: _Optional[_Union[Refusal, _Mapping]] = ...) -> None: ...

class Refusal(_message.Message):
    __slots__ = ("reason", "recipient", "retry_after_ms")
    class Reason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        REASON_UNSPECIFIED: _ClassVar[Refusal.Reason]
        UNKNOWN_RECIPIENT: _ClassVar[Refusal.Reason]
        RECIPIENT_BUSY: _ClassVar[Refusal.Reason]
        UNREACHABLE: _ClassVar[Refusal.Reason]
        HEARTBEAT_ON_DATA: _ClassVar[Refusal.Reason]
        CONTROL_ONLY: _ClassVar[Refusal.Reason]
        OVERSIZED_COMMAND: _ClassVar[Refusal.Reason]
        BAD_COMMAND: _ClassVar[Refusal.Reason]
        QUEUE_FULL: _ClassVar[Refusal.Reason]
    REASON_UNSPECIFIED: Refusal.Reason
    UNKNOWN_RECIPIENT: Refusal.Reason
    RECIPIENT_BUSY: Refusal.Reason
    UNREACHABLE: Refusal.Reason
    HEARTBEAT_ON_DATA: Refusal.Reason
    CONTROL_ONLY: Refusal.Reason
    OVERSIZED_COMMAND: Refusal.Reason
    BAD_COMMAND: Refusal.Reason
    QUEUE_FULL: Refusal.Reason
    REASON_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    reason: Refusal.Reason
    recipient: str
    retry_after_ms: int
    def __init__(self, reason: _Optional[_Union[Refusal.Reason, str]] = ..., recipient: _Optional[str] = ..., retry_after_ms: _Optional[int] = ...) -> None: ...

class Metadata(_message.Message):
    __slots__ = ("trace_id", "priority", "tags", "deadline_ms")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    trace_id: str
    priority: int
    tags: _containers.ScalarMap[str, str]
    deadline_ms: int
    def __init__(self, trace_id: _Optional[str] = ..., priority: _Optional[int] = ..., tags: _Optional[_Mapping[str, str]] = ..., deadline_ms: _Optional[int] = ...) -> None: ...

class NeurochemicalState(_message.Message):
    __slots__ = ("dopamine", "serotonin", "norepinephrine", "acetylcholine")
    DOPAMINE_FIELD_NUMBER: _ClassVar[int]
    SEROTONIN_FIELD_NUMBER: _ClassVar[int]
    NOREPINEPHRINE_FIELD_NUMBER: _ClassVar[int]
    ACETYLCHOLINE_FIELD_NUMBER: _ClassVar[int]
    dopamine: float
    serotonin: float
    norepinephrine: float
    acetylcholine: float
    def __init__(self, dopamine: _Optional[float] = ..., serotonin: _Optional[float] = ..., norepinephrine: _Optional[float] = ..., acetylcholine: _Optional[float] = ...) -> None: ...

class TrainingMetadata(_message.Message):
    __slots__ = ("episode_id", "step", "reward", "is_training")
    EPISODE_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    IS_TRAINING_FIELD_NUMBER: _ClassVar[int]
    episode_id: str
    step: int
    reward: float
    is_training: bool
    def __init__(self, episode_id: _Optional[str] = ..., step: _Optional[int] = ..., reward: _Optional[float] = ..., is_training: _Optional[bool] = ...) -> None: ...

class RichPayload(_message.Message):
    __slots__ = ("mime_type", "data")
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    mime_type: str
    data: bytes
    def __init__(self, mime_type: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class DenseWaveform(_message.Message):
    __slots__ = ("real_part", "imag_part", "dimension_size")
    REAL_PART_FIELD_NUMBER: _ClassVar[int]
    IMAG_PART_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_SIZE_FIELD_NUMBER: _ClassVar[int]
    real_part: _containers.RepeatedScalarFieldContainer[float]
    imag_part: _containers.RepeatedScalarFieldContainer[float]
    dimension_size: int
    def __init__(self, real_part: _Optional[_Iterable[float]] = ..., imag_part: _Optional[_Iterable[float]] = ..., dimension_size: _Optional[int] = ...) -> None: ...

class NeurogenesisEvent(_message.Message):
    __slots__ = ("morton_indices", "new_node_count", "trigger_threshold", "timestamp", "reason")
    MORTON_INDICES_FIELD_NUMBER: _ClassVar[int]
    NEW_NODE_COUNT_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    morton_indices: _containers.RepeatedScalarFieldContainer[bytes]
    new_node_count: int
    trigger_threshold: float
    timestamp: int
    reason: str
    def __init__(self, morton_indices: _Optional[_Iterable[bytes]] = ..., new_node_count: _Optional[int] = ..., trigger_threshold: _Optional[float] = ..., timestamp: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class RetrieveRequest(_message.Message):
    __slots__ = ("query_id", "semantic_query", "direct_morton_index", "resonance_threshold")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    SEMANTIC_QUERY_FIELD_NUMBER: _ClassVar[int]
    DIRECT_MORTON_INDEX_FIELD_NUMBER: _ClassVar[int]
    RESONANCE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    semantic_query: str
    direct_morton_index: bytes
    resonance_threshold: float
    def __init__(self, query_id: _Optional[str] = ..., semantic_query: _Optional[str] = ..., direct_morton_index: _Optional[bytes] = ..., resonance_threshold: _Optional[float] = ...) -> None: ...

class SparseWaveform(_message.Message):
    __slots__ = ("indices", "real_part", "imag_part", "total_energy", "dimension_size", "active_node_count", "significance_threshold")
    INDICES_FIELD_NUMBER: _ClassVar[int]
    REAL_PART_FIELD_NUMBER: _ClassVar[int]
    IMAG_PART_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ENERGY_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_SIZE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_NODE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SIGNIFICANCE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    indices: _containers.RepeatedScalarFieldContainer[bytes]
    real_part: _containers.RepeatedScalarFieldContainer[float]
    imag_part: _containers.RepeatedScalarFieldContainer[float]
    total_energy: float
    dimension_size: int
    active_node_count: int
    significance_threshold: float
    def __init__(self, indices: _Optional[_Iterable[bytes]] = ..., real_part: _Optional[_Iterable[float]] = ..., imag_part: _Optional[_Iterable[float]] = ..., total_energy: _Optional[float] = ..., dimension_size: _Optional[int] = ..., active_node_count: _Optional[int] = ..., significance_threshold: _Optional[float] = ...) -> None: ...

class WaveformSHM(_message.Message):
    __slots__ = ("segment_id", "data_size", "sequence_num", "timestamp_ns", "segment_name", "slot_index", "frame_index")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_SIZE_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_NUM_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_NAME_FIELD_NUMBER: _ClassVar[int]
    SLOT_INDEX_FIELD_NUMBER: _ClassVar[int]
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    segment_id: int
    data_size: int
    sequence_num: int
    timestamp_ns: int
    segment_name: str
    slot_index: int
    frame_index: int
    def __init__(self, segment_id: _Optional[int] = ..., data_size: _Optional[int] = ..., sequence_num: _Optional[int] = ..., timestamp_ns: _Optional[int] = ..., segment_name: _Optional[str] = ..., slot_index: _Optional[int] = ..., frame_index: _Optional[int] = ...) -> None: ...

class CommandRequest(_message.Message):
    __slots__ = ("task_id", "command", "args", "env", "permissions", "timeout_ms", "capture_stdout", "capture_stderr")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_STDOUT_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_STDERR_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    command: str
    args: _containers.RepeatedScalarFieldContainer[str]
    env: _containers.ScalarMap[str, str]
    permissions: _containers.RepeatedScalarFieldContainer[str]
    timeout_ms: int
    capture_stdout: bool
    capture_stderr: bool
    def __init__(self, task_id: _Optional[str] = ..., command: _Optional[str] = ..., args: _Optional[_Iterable[str]] = ..., env: _Optional[_Mapping[str, str]] = ..., permissions: _Optional[_Iterable[str]] = ..., timeout_ms: _Optional[int] = ..., capture_stdout: _Optional[bool] = ..., capture_stderr: _Optional[bool] = ...) -> None: ...

class CommandResponse(_message.Message):
    __slots__ = ("task_id", "exit_code", "stdout", "stderr", "time_started", "time_ended", "timeout_occurred")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    TIME_STARTED_FIELD_NUMBER: _ClassVar[int]
    TIME_ENDED_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_OCCURRED_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    exit_code: int
    stdout: bytes
    stderr: bytes
    time_started: int
    time_ended: int
    timeout_occurred: bool
    def __init__(self, task_id: _Optional[str] = ..., exit_code: _Optional[int] = ..., stdout: _Optional[bytes] = ..., stderr: _Optional[bytes] = ..., time_started: _Optional[int] = ..., time_ended: _Optional[int] = ..., timeout_occurred: _Optional[bool] = ...) -> None: ...

class StatusReport(_message.Message):
    __slots__ = ("state", "pid", "cpu_percent", "memory_rss_bytes", "uptime_s", "metrics", "instance", "kind")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[StatusReport.State]
        STARTING: _ClassVar[StatusReport.State]
        READY: _ClassVar[StatusReport.State]
        BUSY: _ClassVar[StatusReport.State]
        DEGRADED: _ClassVar[StatusReport.State]
        STOPPING: _ClassVar[StatusReport.State]
    STATE_UNSPECIFIED: StatusReport.State
    STARTING: StatusReport.State
    READY: StatusReport.State
    BUSY: StatusReport.State
    DEGRADED: StatusReport.State
    STOPPING: StatusReport.State
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    STATE_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    CPU_PERCENT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    UPTIME_S_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    state: StatusReport.State
    pid: int
    cpu_percent: float
    memory_rss_bytes: int
    uptime_s: float
    metrics: _containers.ScalarMap[str, float]
    instance: str
    kind: ComponentID
    def __init__(self, state: _Optional[_Union[StatusReport.State, str]] = ..., pid: _Optional[int] = ..., cpu_percent: _Optional[float] = ..., memory_rss_bytes: _Optional[int] = ..., uptime_s: _Optional[float] = ..., metrics: _Optional[_Mapping[str, float]] = ..., instance: _Optional[str] = ..., kind: _Optional[_Union[ComponentID, str]] = ...) -> None: ...
