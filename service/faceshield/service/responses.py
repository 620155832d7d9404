"""Engine results -> response messages: the protected PNG, metrics per face, victim and target, the
verdict, the attack and policy as run, and what the server runs (GetModelInfo)."""

from __future__ import annotations

from collections.abc import Sequence

from faceshield.engine import METHODS, FaceShieldEngine
from faceshield.engine.config import DEFAULT_EPSILON, DEFAULT_STEP_SIZE, DEFAULT_STEPS, PRODUCT_METHOD, Policy
from faceshield.engine.io.images import encode_png
from faceshield.engine.metrics import InputMetrics, TargetMetrics
from faceshield.engine.models.victims import qualified
from faceshield.engine.pipeline import ProtectOutcome, Verdict
from faceshield.v1 import faceshield_pb2 as pb

from .convert import DEFAULT_FACE_DETECTION, FACE_SOURCES, default_policy
from .jobs import EvaluateJob, ProtectJob

# What GetModelInfo says of where each victim's weights came from (faceshield.v1.Provenance).
PROVENANCE_FIELDS = ("trained_by", "trained_on", "license", "distribution", "version", "path", "credit")


def model_versions(info) -> pb.ModelVersions:
    return pb.ModelVersions(
        name=info.name, version=info.version, trained=info.trained, saliency=info.saliency, hashes=info.hashes
    )


def input_metrics(m: InputMetrics) -> pb.InputMetrics:
    return pb.InputMetrics(l1=m.l1, l2=m.l2, mse=m.mse, linf=m.linf, psnr=m.psnr, ssim=m.ssim)


def target_metrics(rows: Sequence[TargetMetrics]) -> list[pb.TargetMetrics]:
    return [
        pb.TargetMetrics(
            target=t.target,
            l1=t.l1,
            mse=t.mse,
            success=t.success,
            masked_mse=t.masked_mse,
            masked_success=t.masked_success,
            edited_fraction=t.edited_fraction,
            victim=t.victim,
            face=t.face,
            output_ssim=t.output_ssim,
        )
        for t in rows
    ]


def verdict(v: Verdict) -> pb.Verdict:
    return pb.Verdict(
        protected=v.protected,
        not_disrupted=list(v.not_disrupted),
        steps=v.steps,
        rounds=v.rounds,
        after=dict(v.after),
        rule=v.rule,
        identity=None if v.identity is None else identity_verdict(v.identity),
        disrupted=v.disrupted,
    )


def identity_verdict(report) -> pb.IdentityVerdict:
    return pb.IdentityVerdict(
        faces=[
            pb.FaceIdentity(
                face=f.face, measured=f.distance is not None, distance=f.distance or 0.0, kept=f.kept, reason=f.reason
            )
            for f in report.faces
        ],
        edits=[
            pb.EditIdentity(
                victim=e.victim,
                target=e.target,
                face=e.face,
                clean_distance=e.clean if e.clean is not None else 0.0,
                protected_distance=e.protected if e.protected is not None else 0.0,
                state=e.state,
                after_distance=dict(e.after),
                after_state={p: e.state_after(p) for p in e.after},
            )
            for e in report.edits
        ],
        problems=report.problems(),
    )


def boxes(values) -> list[pb.FaceBox]:
    return [pb.FaceBox(left=b[0], top=b[1], right=b[2], bottom=b[3]) for b in values]


def rates(rows: Sequence[TargetMetrics]) -> tuple[float, float]:
    n = max(len(rows), 1)
    return sum(t.success for t in rows) / n, sum(t.masked_success for t in rows) / n


def policy_message(p: Policy) -> pb.Policy:
    return pb.Policy(
        kind=p.kind,
        budget_steps=p.budget_steps,
        margin=p.margin,
        early_stop=p.early_stop,
        verify_after=list(p.verify_after),
    )


def attack_parameters(job: ProtectJob) -> pb.AttackParameters:
    c = job.config
    return pb.AttackParameters(
        method=c.method,
        epsilon=c.epsilon,
        steps=c.steps,
        step_size=c.step_size,
        seed=int(job.request.seed or 0),
        targets=[qualified(v, t) for v, targets in job.request.targets.items() for t in targets],
        policy=policy_message(job.policy),
    )


def protect_response(
    job: ProtectJob, outcome: ProtectOutcome, models: pb.ModelVersions, timings: pb.Timings
) -> pb.ProtectImageResponse:
    h, w = outcome.protected.shape[:2]
    success, masked = rates(outcome.targets)
    resp = pb.ProtectImageResponse(
        request_id=job.request_id,
        protected_png=encode_png(outcome.protected),
        width=w,
        height=h,
        input_metrics=input_metrics(outcome.input),
        target_metrics=target_metrics(outcome.targets),
        success_rate=success,
        masked_success_rate=masked,
        attack=attack_parameters(job),
        models=models,
        timings=timings,
        verdict=verdict(outcome.verdict),
        faces=boxes(outcome.boxes),
        face_source=FACE_SOURCES[job.face_source],
        faces_detected=job.faces_detected,
    )
    if job.want_masks:
        for name, m in outcome.masks.items():
            resp.masks.add(name=name, width=m.shape[1], height=m.shape[0], float32=m.astype("<f4").tobytes())
    if job.want_outputs:
        for o in outcome.generator_outputs:
            resp.generator_outputs.add(
                target=o.target,
                victim=o.victim,
                face=o.face,
                original_png=encode_png(o.original),
                protected_png=encode_png(o.protected),
            )
    return resp


def evaluate_response(
    job: EvaluateJob, metrics: tuple, models: pb.ModelVersions, timings: pb.Timings
) -> pb.EvaluateResponse:
    """metrics: (input metrics, target metrics[, the identity report or None])."""
    inp, rows = metrics[0], metrics[1]
    identity = metrics[2] if len(metrics) > 2 else None
    success, masked = rates(rows)
    missed = tuple(qualified(m.victim, m.target) + (f"@{m.face}" if m.face else "") for m in rows if not m.success)
    return pb.EvaluateResponse(
        request_id=job.request_id,
        input_metrics=input_metrics(inp),
        target_metrics=target_metrics(rows),
        success_rate=success,
        masked_success_rate=masked,
        models=models,
        timings=timings,
        verdict=pb.Verdict(
            protected=not missed if identity is None else identity.protected,
            not_disrupted=list(missed),
            rule="disruption" if identity is None else "identity",
            identity=None if identity is None else identity_verdict(identity),
            disrupted=not missed,
        ),
        faces=boxes(job.request.boxes),
        face_source=FACE_SOURCES[job.face_source],
        faces_detected=job.faces_detected,
    )


def evaluate_from_protect(protected: pb.ProtectImageResponse) -> pb.EvaluateResponse:
    return pb.EvaluateResponse(
        request_id=protected.request_id,
        input_metrics=protected.input_metrics,
        target_metrics=protected.target_metrics,
        success_rate=protected.success_rate,
        masked_success_rate=protected.masked_success_rate,
        protected_by_server=True,
        protected_png=protected.protected_png,
        attack=protected.attack,
        models=protected.models,
        timings=protected.timings,
        verdict=protected.verdict,
        faces=protected.faces,
        face_source=protected.face_source,
        faces_detected=protected.faces_detected,
    )


def model_info(engine: FaceShieldEngine, settings, expected_seconds_per_image: float = 0.0) -> pb.GetModelInfoResponse:
    info = engine.info()
    return pb.GetModelInfoResponse(
        models=model_versions(info),
        description=info.description,
        resolution=info.resolution,
        attributes=info.attributes,
        methods=list(METHODS),
        defaults=pb.AttackDefaults(
            method=PRODUCT_METHOD,
            epsilon=DEFAULT_EPSILON,
            steps=DEFAULT_STEPS,
            step_size=DEFAULT_STEP_SIZE,
            policy=policy_message(default_policy(settings)),
            detect_faces=DEFAULT_FACE_DETECTION,
        ),
        device=info.device,
        execution_providers=info.providers,
        limits=pb.Limits(
            max_pixels=info.limits.max_pixels,
            max_steps=info.limits.max_steps,
            max_batch=info.limits.max_batch,
            max_message_bytes=settings.max_message_bytes,
            queue_length=settings.queue_length,
            stream_window=settings.stream_window,
        ),
        execution=pb.Execution(
            precision=info.precision,
            saliency_runtime=info.saliency_runtime,
            memory_batch=info.memory_batch or 0,
            compile=info.compile,
        ),
        expected_seconds_per_image=expected_seconds_per_image,
        victims=[
            pb.Victim(
                name=v.name,
                kind=v.kind,
                resolution=v.resolution,
                targets=v.targets,
                attributes=v.attributes,
                sha256=v.sha256,
                description=v.description,
                default_targets=v.chosen_targets if v.default_targets else [],
                provenance=pb.Provenance(**{k: str(v.provenance[k]) for k in PROVENANCE_FIELDS if k in v.provenance}),
            )
            for v in info.victims
        ],
    )
