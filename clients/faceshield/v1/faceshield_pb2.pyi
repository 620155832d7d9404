from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FaceSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FACE_SOURCE_UNSPECIFIED: _ClassVar[FaceSource]
    FACE_SOURCE_GIVEN: _ClassVar[FaceSource]
    FACE_SOURCE_CENTRE: _ClassVar[FaceSource]
    FACE_SOURCE_DETECTED: _ClassVar[FaceSource]
    FACE_SOURCE_NO_FACE_CENTRE: _ClassVar[FaceSource]
FACE_SOURCE_UNSPECIFIED: FaceSource
FACE_SOURCE_GIVEN: FaceSource
FACE_SOURCE_CENTRE: FaceSource
FACE_SOURCE_DETECTED: FaceSource
FACE_SOURCE_NO_FACE_CENTRE: FaceSource

class Image(_message.Message):
    __slots__ = ("encoded", "raw")
    ENCODED_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    encoded: bytes
    raw: RawImage
    def __init__(self, encoded: _Optional[bytes] = ..., raw: _Optional[_Union[RawImage, _Mapping]] = ...) -> None: ...

class RawImage(_message.Message):
    __slots__ = ("data", "width", "height")
    DATA_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    width: int
    height: int
    def __init__(self, data: _Optional[bytes] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class FaceBox(_message.Message):
    __slots__ = ("left", "top", "right", "bottom")
    LEFT_FIELD_NUMBER: _ClassVar[int]
    TOP_FIELD_NUMBER: _ClassVar[int]
    RIGHT_FIELD_NUMBER: _ClassVar[int]
    BOTTOM_FIELD_NUMBER: _ClassVar[int]
    left: int
    top: int
    right: int
    bottom: int
    def __init__(self, left: _Optional[int] = ..., top: _Optional[int] = ..., right: _Optional[int] = ..., bottom: _Optional[int] = ...) -> None: ...

class FaceDetection(_message.Message):
    __slots__ = ("enabled", "no_face")
    class NoFace(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        NO_FACE_REFUSE: _ClassVar[FaceDetection.NoFace]
        NO_FACE_CENTRE: _ClassVar[FaceDetection.NoFace]
    NO_FACE_REFUSE: FaceDetection.NoFace
    NO_FACE_CENTRE: FaceDetection.NoFace
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    NO_FACE_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    no_face: FaceDetection.NoFace
    def __init__(self, enabled: _Optional[bool] = ..., no_face: _Optional[_Union[FaceDetection.NoFace, str]] = ...) -> None: ...

class Mask(_message.Message):
    __slots__ = ("png", "float32")
    PNG_FIELD_NUMBER: _ClassVar[int]
    FLOAT32_FIELD_NUMBER: _ClassVar[int]
    png: bytes
    float32: bytes
    def __init__(self, png: _Optional[bytes] = ..., float32: _Optional[bytes] = ...) -> None: ...

class Extras(_message.Message):
    __slots__ = ("masks", "generator_outputs")
    MASKS_FIELD_NUMBER: _ClassVar[int]
    GENERATOR_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    masks: bool
    generator_outputs: bool
    def __init__(self, masks: _Optional[bool] = ..., generator_outputs: _Optional[bool] = ...) -> None: ...

class Policy(_message.Message):
    __slots__ = ("kind", "budget_steps", "margin", "early_stop", "verify_after")
    KIND_FIELD_NUMBER: _ClassVar[int]
    BUDGET_STEPS_FIELD_NUMBER: _ClassVar[int]
    MARGIN_FIELD_NUMBER: _ClassVar[int]
    EARLY_STOP_FIELD_NUMBER: _ClassVar[int]
    VERIFY_AFTER_FIELD_NUMBER: _ClassVar[int]
    kind: str
    budget_steps: int
    margin: float
    early_stop: bool
    verify_after: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, kind: _Optional[str] = ..., budget_steps: _Optional[int] = ..., margin: _Optional[float] = ..., early_stop: _Optional[bool] = ..., verify_after: _Optional[_Iterable[str]] = ...) -> None: ...

class ProtectImageRequest(_message.Message):
    __slots__ = ("request_id", "image", "original_attributes", "targets", "method", "epsilon", "steps", "step_size", "seed", "face_box", "saliency_mask", "extras", "policy", "face_boxes", "detect_faces")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    STEP_SIZE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    FACE_BOX_FIELD_NUMBER: _ClassVar[int]
    SALIENCY_MASK_FIELD_NUMBER: _ClassVar[int]
    EXTRAS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    FACE_BOXES_FIELD_NUMBER: _ClassVar[int]
    DETECT_FACES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    image: Image
    original_attributes: _containers.RepeatedScalarFieldContainer[float]
    targets: _containers.RepeatedScalarFieldContainer[str]
    method: str
    epsilon: float
    steps: int
    step_size: float
    seed: int
    face_box: FaceBox
    saliency_mask: Mask
    extras: Extras
    policy: Policy
    face_boxes: _containers.RepeatedCompositeFieldContainer[FaceBox]
    detect_faces: FaceDetection
    def __init__(self, request_id: _Optional[str] = ..., image: _Optional[_Union[Image, _Mapping]] = ..., original_attributes: _Optional[_Iterable[float]] = ..., targets: _Optional[_Iterable[str]] = ..., method: _Optional[str] = ..., epsilon: _Optional[float] = ..., steps: _Optional[int] = ..., step_size: _Optional[float] = ..., seed: _Optional[int] = ..., face_box: _Optional[_Union[FaceBox, _Mapping]] = ..., saliency_mask: _Optional[_Union[Mask, _Mapping]] = ..., extras: _Optional[_Union[Extras, _Mapping]] = ..., policy: _Optional[_Union[Policy, _Mapping]] = ..., face_boxes: _Optional[_Iterable[_Union[FaceBox, _Mapping]]] = ..., detect_faces: _Optional[_Union[FaceDetection, _Mapping]] = ...) -> None: ...

class InputMetrics(_message.Message):
    __slots__ = ("l1", "l2", "mse", "linf", "psnr", "ssim")
    L1_FIELD_NUMBER: _ClassVar[int]
    L2_FIELD_NUMBER: _ClassVar[int]
    MSE_FIELD_NUMBER: _ClassVar[int]
    LINF_FIELD_NUMBER: _ClassVar[int]
    PSNR_FIELD_NUMBER: _ClassVar[int]
    SSIM_FIELD_NUMBER: _ClassVar[int]
    l1: float
    l2: float
    mse: float
    linf: float
    psnr: float
    ssim: float
    def __init__(self, l1: _Optional[float] = ..., l2: _Optional[float] = ..., mse: _Optional[float] = ..., linf: _Optional[float] = ..., psnr: _Optional[float] = ..., ssim: _Optional[float] = ...) -> None: ...

class TargetMetrics(_message.Message):
    __slots__ = ("target", "l1", "mse", "success", "masked_mse", "masked_success", "edited_fraction", "victim", "face", "output_ssim")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    L1_FIELD_NUMBER: _ClassVar[int]
    MSE_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MASKED_MSE_FIELD_NUMBER: _ClassVar[int]
    MASKED_SUCCESS_FIELD_NUMBER: _ClassVar[int]
    EDITED_FRACTION_FIELD_NUMBER: _ClassVar[int]
    VICTIM_FIELD_NUMBER: _ClassVar[int]
    FACE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SSIM_FIELD_NUMBER: _ClassVar[int]
    target: str
    l1: float
    mse: float
    success: bool
    masked_mse: float
    masked_success: bool
    edited_fraction: float
    victim: str
    face: int
    output_ssim: float
    def __init__(self, target: _Optional[str] = ..., l1: _Optional[float] = ..., mse: _Optional[float] = ..., success: _Optional[bool] = ..., masked_mse: _Optional[float] = ..., masked_success: _Optional[bool] = ..., edited_fraction: _Optional[float] = ..., victim: _Optional[str] = ..., face: _Optional[int] = ..., output_ssim: _Optional[float] = ...) -> None: ...

class FaceIdentity(_message.Message):
    __slots__ = ("face", "measured", "distance", "kept", "reason")
    FACE_FIELD_NUMBER: _ClassVar[int]
    MEASURED_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    KEPT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    face: int
    measured: bool
    distance: float
    kept: bool
    reason: str
    def __init__(self, face: _Optional[int] = ..., measured: _Optional[bool] = ..., distance: _Optional[float] = ..., kept: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class EditIdentity(_message.Message):
    __slots__ = ("victim", "target", "face", "clean_distance", "protected_distance", "state", "after_distance", "after_state")
    class AfterDistanceEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class AfterStateEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    VICTIM_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    FACE_FIELD_NUMBER: _ClassVar[int]
    CLEAN_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    PROTECTED_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    AFTER_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    AFTER_STATE_FIELD_NUMBER: _ClassVar[int]
    victim: str
    target: str
    face: int
    clean_distance: float
    protected_distance: float
    state: str
    after_distance: _containers.ScalarMap[str, float]
    after_state: _containers.ScalarMap[str, str]
    def __init__(self, victim: _Optional[str] = ..., target: _Optional[str] = ..., face: _Optional[int] = ..., clean_distance: _Optional[float] = ..., protected_distance: _Optional[float] = ..., state: _Optional[str] = ..., after_distance: _Optional[_Mapping[str, float]] = ..., after_state: _Optional[_Mapping[str, str]] = ...) -> None: ...

class IdentityVerdict(_message.Message):
    __slots__ = ("faces", "edits", "problems")
    FACES_FIELD_NUMBER: _ClassVar[int]
    EDITS_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    faces: _containers.RepeatedCompositeFieldContainer[FaceIdentity]
    edits: _containers.RepeatedCompositeFieldContainer[EditIdentity]
    problems: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, faces: _Optional[_Iterable[_Union[FaceIdentity, _Mapping]]] = ..., edits: _Optional[_Iterable[_Union[EditIdentity, _Mapping]]] = ..., problems: _Optional[_Iterable[str]] = ...) -> None: ...

class Verdict(_message.Message):
    __slots__ = ("protected", "not_disrupted", "steps", "rounds", "after", "rule", "identity", "disrupted")
    class AfterEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bool
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bool] = ...) -> None: ...
    PROTECTED_FIELD_NUMBER: _ClassVar[int]
    NOT_DISRUPTED_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    DISRUPTED_FIELD_NUMBER: _ClassVar[int]
    protected: bool
    not_disrupted: _containers.RepeatedScalarFieldContainer[str]
    steps: int
    rounds: int
    after: _containers.ScalarMap[str, bool]
    rule: str
    identity: IdentityVerdict
    disrupted: bool
    def __init__(self, protected: _Optional[bool] = ..., not_disrupted: _Optional[_Iterable[str]] = ..., steps: _Optional[int] = ..., rounds: _Optional[int] = ..., after: _Optional[_Mapping[str, bool]] = ..., rule: _Optional[str] = ..., identity: _Optional[_Union[IdentityVerdict, _Mapping]] = ..., disrupted: _Optional[bool] = ...) -> None: ...

class ModelVersions(_message.Message):
    __slots__ = ("name", "version", "trained", "saliency", "hashes")
    class HashesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TRAINED_FIELD_NUMBER: _ClassVar[int]
    SALIENCY_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    trained: bool
    saliency: str
    hashes: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., trained: _Optional[bool] = ..., saliency: _Optional[str] = ..., hashes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Timings(_message.Message):
    __slots__ = ("queue_seconds", "compute_seconds", "total_seconds", "batch_size")
    QUEUE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    queue_seconds: float
    compute_seconds: float
    total_seconds: float
    batch_size: int
    def __init__(self, queue_seconds: _Optional[float] = ..., compute_seconds: _Optional[float] = ..., total_seconds: _Optional[float] = ..., batch_size: _Optional[int] = ...) -> None: ...

class AttackParameters(_message.Message):
    __slots__ = ("method", "epsilon", "steps", "step_size", "seed", "targets", "policy")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    STEP_SIZE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    method: str
    epsilon: float
    steps: int
    step_size: float
    seed: int
    targets: _containers.RepeatedScalarFieldContainer[str]
    policy: Policy
    def __init__(self, method: _Optional[str] = ..., epsilon: _Optional[float] = ..., steps: _Optional[int] = ..., step_size: _Optional[float] = ..., seed: _Optional[int] = ..., targets: _Optional[_Iterable[str]] = ..., policy: _Optional[_Union[Policy, _Mapping]] = ...) -> None: ...

class NamedMask(_message.Message):
    __slots__ = ("name", "width", "height", "float32")
    NAME_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FLOAT32_FIELD_NUMBER: _ClassVar[int]
    name: str
    width: int
    height: int
    float32: bytes
    def __init__(self, name: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., float32: _Optional[bytes] = ...) -> None: ...

class GeneratorOutput(_message.Message):
    __slots__ = ("target", "original_png", "protected_png", "victim", "face")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_PNG_FIELD_NUMBER: _ClassVar[int]
    PROTECTED_PNG_FIELD_NUMBER: _ClassVar[int]
    VICTIM_FIELD_NUMBER: _ClassVar[int]
    FACE_FIELD_NUMBER: _ClassVar[int]
    target: str
    original_png: bytes
    protected_png: bytes
    victim: str
    face: int
    def __init__(self, target: _Optional[str] = ..., original_png: _Optional[bytes] = ..., protected_png: _Optional[bytes] = ..., victim: _Optional[str] = ..., face: _Optional[int] = ...) -> None: ...

class ProtectImageResponse(_message.Message):
    __slots__ = ("request_id", "protected_png", "width", "height", "input_metrics", "target_metrics", "success_rate", "masked_success_rate", "attack", "models", "timings", "masks", "generator_outputs", "verdict", "faces", "face_source", "faces_detected")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PROTECTED_PNG_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    INPUT_METRICS_FIELD_NUMBER: _ClassVar[int]
    TARGET_METRICS_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RATE_FIELD_NUMBER: _ClassVar[int]
    MASKED_SUCCESS_RATE_FIELD_NUMBER: _ClassVar[int]
    ATTACK_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    MASKS_FIELD_NUMBER: _ClassVar[int]
    GENERATOR_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    FACES_FIELD_NUMBER: _ClassVar[int]
    FACE_SOURCE_FIELD_NUMBER: _ClassVar[int]
    FACES_DETECTED_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    protected_png: bytes
    width: int
    height: int
    input_metrics: InputMetrics
    target_metrics: _containers.RepeatedCompositeFieldContainer[TargetMetrics]
    success_rate: float
    masked_success_rate: float
    attack: AttackParameters
    models: ModelVersions
    timings: Timings
    masks: _containers.RepeatedCompositeFieldContainer[NamedMask]
    generator_outputs: _containers.RepeatedCompositeFieldContainer[GeneratorOutput]
    verdict: Verdict
    faces: _containers.RepeatedCompositeFieldContainer[FaceBox]
    face_source: FaceSource
    faces_detected: int
    def __init__(self, request_id: _Optional[str] = ..., protected_png: _Optional[bytes] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., input_metrics: _Optional[_Union[InputMetrics, _Mapping]] = ..., target_metrics: _Optional[_Iterable[_Union[TargetMetrics, _Mapping]]] = ..., success_rate: _Optional[float] = ..., masked_success_rate: _Optional[float] = ..., attack: _Optional[_Union[AttackParameters, _Mapping]] = ..., models: _Optional[_Union[ModelVersions, _Mapping]] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., masks: _Optional[_Iterable[_Union[NamedMask, _Mapping]]] = ..., generator_outputs: _Optional[_Iterable[_Union[GeneratorOutput, _Mapping]]] = ..., verdict: _Optional[_Union[Verdict, _Mapping]] = ..., faces: _Optional[_Iterable[_Union[FaceBox, _Mapping]]] = ..., face_source: _Optional[_Union[FaceSource, str]] = ..., faces_detected: _Optional[int] = ...) -> None: ...

class ProtectStreamResponse(_message.Message):
    __slots__ = ("request_id", "result", "error")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    result: ProtectImageResponse
    error: _status_pb2.Status
    def __init__(self, request_id: _Optional[str] = ..., result: _Optional[_Union[ProtectImageResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("request_id", "original", "protected", "original_attributes", "targets", "face_box", "method", "epsilon", "steps", "step_size", "seed", "saliency_mask", "face_boxes", "policy", "detect_faces")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_FIELD_NUMBER: _ClassVar[int]
    PROTECTED_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    FACE_BOX_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    STEP_SIZE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SALIENCY_MASK_FIELD_NUMBER: _ClassVar[int]
    FACE_BOXES_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    DETECT_FACES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    original: Image
    protected: Image
    original_attributes: _containers.RepeatedScalarFieldContainer[float]
    targets: _containers.RepeatedScalarFieldContainer[str]
    face_box: FaceBox
    method: str
    epsilon: float
    steps: int
    step_size: float
    seed: int
    saliency_mask: Mask
    face_boxes: _containers.RepeatedCompositeFieldContainer[FaceBox]
    policy: Policy
    detect_faces: FaceDetection
    def __init__(self, request_id: _Optional[str] = ..., original: _Optional[_Union[Image, _Mapping]] = ..., protected: _Optional[_Union[Image, _Mapping]] = ..., original_attributes: _Optional[_Iterable[float]] = ..., targets: _Optional[_Iterable[str]] = ..., face_box: _Optional[_Union[FaceBox, _Mapping]] = ..., method: _Optional[str] = ..., epsilon: _Optional[float] = ..., steps: _Optional[int] = ..., step_size: _Optional[float] = ..., seed: _Optional[int] = ..., saliency_mask: _Optional[_Union[Mask, _Mapping]] = ..., face_boxes: _Optional[_Iterable[_Union[FaceBox, _Mapping]]] = ..., policy: _Optional[_Union[Policy, _Mapping]] = ..., detect_faces: _Optional[_Union[FaceDetection, _Mapping]] = ...) -> None: ...

class EvaluateResponse(_message.Message):
    __slots__ = ("request_id", "input_metrics", "target_metrics", "success_rate", "masked_success_rate", "protected_by_server", "protected_png", "attack", "models", "timings", "verdict", "faces", "face_source", "faces_detected")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_METRICS_FIELD_NUMBER: _ClassVar[int]
    TARGET_METRICS_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RATE_FIELD_NUMBER: _ClassVar[int]
    MASKED_SUCCESS_RATE_FIELD_NUMBER: _ClassVar[int]
    PROTECTED_BY_SERVER_FIELD_NUMBER: _ClassVar[int]
    PROTECTED_PNG_FIELD_NUMBER: _ClassVar[int]
    ATTACK_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    FACES_FIELD_NUMBER: _ClassVar[int]
    FACE_SOURCE_FIELD_NUMBER: _ClassVar[int]
    FACES_DETECTED_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    input_metrics: InputMetrics
    target_metrics: _containers.RepeatedCompositeFieldContainer[TargetMetrics]
    success_rate: float
    masked_success_rate: float
    protected_by_server: bool
    protected_png: bytes
    attack: AttackParameters
    models: ModelVersions
    timings: Timings
    verdict: Verdict
    faces: _containers.RepeatedCompositeFieldContainer[FaceBox]
    face_source: FaceSource
    faces_detected: int
    def __init__(self, request_id: _Optional[str] = ..., input_metrics: _Optional[_Union[InputMetrics, _Mapping]] = ..., target_metrics: _Optional[_Iterable[_Union[TargetMetrics, _Mapping]]] = ..., success_rate: _Optional[float] = ..., masked_success_rate: _Optional[float] = ..., protected_by_server: _Optional[bool] = ..., protected_png: _Optional[bytes] = ..., attack: _Optional[_Union[AttackParameters, _Mapping]] = ..., models: _Optional[_Union[ModelVersions, _Mapping]] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., verdict: _Optional[_Union[Verdict, _Mapping]] = ..., faces: _Optional[_Iterable[_Union[FaceBox, _Mapping]]] = ..., face_source: _Optional[_Union[FaceSource, str]] = ..., faces_detected: _Optional[int] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AttackDefaults(_message.Message):
    __slots__ = ("method", "epsilon", "steps", "step_size", "policy", "detect_faces")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    STEP_SIZE_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    DETECT_FACES_FIELD_NUMBER: _ClassVar[int]
    method: str
    epsilon: float
    steps: int
    step_size: float
    policy: Policy
    detect_faces: FaceDetection
    def __init__(self, method: _Optional[str] = ..., epsilon: _Optional[float] = ..., steps: _Optional[int] = ..., step_size: _Optional[float] = ..., policy: _Optional[_Union[Policy, _Mapping]] = ..., detect_faces: _Optional[_Union[FaceDetection, _Mapping]] = ...) -> None: ...

class Victim(_message.Message):
    __slots__ = ("name", "kind", "resolution", "targets", "attributes", "sha256", "description", "default_targets", "provenance")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TARGETS_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    resolution: int
    targets: _containers.RepeatedScalarFieldContainer[str]
    attributes: _containers.RepeatedScalarFieldContainer[str]
    sha256: str
    description: str
    default_targets: _containers.RepeatedScalarFieldContainer[str]
    provenance: Provenance
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., resolution: _Optional[int] = ..., targets: _Optional[_Iterable[str]] = ..., attributes: _Optional[_Iterable[str]] = ..., sha256: _Optional[str] = ..., description: _Optional[str] = ..., default_targets: _Optional[_Iterable[str]] = ..., provenance: _Optional[_Union[Provenance, _Mapping]] = ...) -> None: ...

class Provenance(_message.Message):
    __slots__ = ("trained_by", "trained_on", "license", "distribution", "version", "path", "credit")
    TRAINED_BY_FIELD_NUMBER: _ClassVar[int]
    TRAINED_ON_FIELD_NUMBER: _ClassVar[int]
    LICENSE_FIELD_NUMBER: _ClassVar[int]
    DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    CREDIT_FIELD_NUMBER: _ClassVar[int]
    trained_by: str
    trained_on: str
    license: str
    distribution: str
    version: str
    path: str
    credit: str
    def __init__(self, trained_by: _Optional[str] = ..., trained_on: _Optional[str] = ..., license: _Optional[str] = ..., distribution: _Optional[str] = ..., version: _Optional[str] = ..., path: _Optional[str] = ..., credit: _Optional[str] = ...) -> None: ...

class Limits(_message.Message):
    __slots__ = ("max_pixels", "max_steps", "max_batch", "max_message_bytes", "queue_length", "stream_window")
    MAX_PIXELS_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    QUEUE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    STREAM_WINDOW_FIELD_NUMBER: _ClassVar[int]
    max_pixels: int
    max_steps: int
    max_batch: int
    max_message_bytes: int
    queue_length: int
    stream_window: int
    def __init__(self, max_pixels: _Optional[int] = ..., max_steps: _Optional[int] = ..., max_batch: _Optional[int] = ..., max_message_bytes: _Optional[int] = ..., queue_length: _Optional[int] = ..., stream_window: _Optional[int] = ...) -> None: ...

class Execution(_message.Message):
    __slots__ = ("precision", "saliency_runtime", "memory_batch", "compile")
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    SALIENCY_RUNTIME_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BATCH_FIELD_NUMBER: _ClassVar[int]
    COMPILE_FIELD_NUMBER: _ClassVar[int]
    precision: str
    saliency_runtime: str
    memory_batch: int
    compile: str
    def __init__(self, precision: _Optional[str] = ..., saliency_runtime: _Optional[str] = ..., memory_batch: _Optional[int] = ..., compile: _Optional[str] = ...) -> None: ...

class GetModelInfoResponse(_message.Message):
    __slots__ = ("models", "description", "resolution", "attributes", "methods", "defaults", "device", "execution_providers", "limits", "execution", "expected_seconds_per_image", "victims")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    METHODS_FIELD_NUMBER: _ClassVar[int]
    DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SECONDS_PER_IMAGE_FIELD_NUMBER: _ClassVar[int]
    VICTIMS_FIELD_NUMBER: _ClassVar[int]
    models: ModelVersions
    description: str
    resolution: int
    attributes: _containers.RepeatedScalarFieldContainer[str]
    methods: _containers.RepeatedScalarFieldContainer[str]
    defaults: AttackDefaults
    device: str
    execution_providers: _containers.RepeatedScalarFieldContainer[str]
    limits: Limits
    execution: Execution
    expected_seconds_per_image: float
    victims: _containers.RepeatedCompositeFieldContainer[Victim]
    def __init__(self, models: _Optional[_Union[ModelVersions, _Mapping]] = ..., description: _Optional[str] = ..., resolution: _Optional[int] = ..., attributes: _Optional[_Iterable[str]] = ..., methods: _Optional[_Iterable[str]] = ..., defaults: _Optional[_Union[AttackDefaults, _Mapping]] = ..., device: _Optional[str] = ..., execution_providers: _Optional[_Iterable[str]] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., execution: _Optional[_Union[Execution, _Mapping]] = ..., expected_seconds_per_image: _Optional[float] = ..., victims: _Optional[_Iterable[_Union[Victim, _Mapping]]] = ...) -> None: ...
