"""`faceshield protect IN -o OUT`: protect one image file, write a lossless PNG, and say whether
every edit's deepfake now fails a face check as the person while the photo still passes it.
Several files, folders or `--list FILE` with `-o DIR`: the folder job (`batch_cli`), on this
machine or, with `--ray`, on a Ray cluster.

Without `--box`, the face detector finds every face (`--faces centre`: the centre square); when
it finds none the image is refused unless `--no-face centre`.

By default the protection is *verified* (`--policy ensure`): after the method's steps, an image
whose edits are not all broken gets further rounds until each is, with margin, or stops moving,
or the step budget is spent; the verdict says which. `--policy fixed` runs the schedule once.

Exit status: 0 written and protected; 3 written but NOT protected (the verdict says why);
2 bad input or options, nothing written; 1 a folder job finished with some images failed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from faceshield.engine.errors import InvalidInputError

from .batch_cli import add_batch_options, add_face_options, box_list, is_batch, run_batch
from .batch_work import identity_json
from .common import add_model_options, add_policy_options, load_models, policy_from, read_image, resolve_device
from .progress import StepProgress

LEVEL = 127.5  # generator space [-1, 1] spans 255 levels: epsilon 0.05 = 6.4 levels
# The exit status of a run that wrote its output but whose verdict is "not protected" (0:
# protected; 1: the folder job finished with some images failed; 2: bad input, nothing written).
EXIT_NOT_PROTECTED = 3


def register(sub: argparse._SubParsersAction) -> None:
    from faceshield.engine.config import METHODS, PRODUCT_METHOD
    from faceshield.engine.defaults import VERDICT_RULES

    p = sub.add_parser("protect", help="protect face images: a file, several, folders", description=__doc__)
    p.add_argument("input", nargs="*", help="PNG or JPEG images, or folders of them (recursively)")
    p.add_argument("-o", "--output", required=True, help="the protected PNG (one image), or the output folder")
    p.add_argument(
        "--method",
        default=PRODUCT_METHOD,
        choices=list(METHODS),
        help=f"the attack (default {PRODUCT_METHOD}: the deepfake must fail a face check as the person; "
        "union-saliency: the paper's method, judged by output MSE)",
    )
    p.add_argument(
        "--figure",
        metavar="PNG",
        help="also draw what the protection did: the face before and after, the change enlarged, and each "
        "victim's edit of the original and of the protected photo with the face recogniser's verdict (one image)",
    )
    p.add_argument(
        "--verdict",
        default="identity",
        choices=VERDICT_RULES,
        help="what 'protected' means: identity (default): every edit's deepfake fails a face check as the person "
        "(dlib's recogniser, distance >= 0.6) while the protected photo still passes (< 0.3); disruption: "
        "every edit's output MSE > 0.05 (Ruiz et al.'s rule, the paper's tables)",
    )
    p.add_argument(
        "--epsilon",
        type=float,
        default=0.05,
        help="largest change of any pixel, in [-1, 1] pixel units (default 0.05 = 6 of 255 levels)",
    )
    p.add_argument("--steps", type=int, default=10, help="I-FGSM steps per round (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--targets",
        help="edits to protect against, comma-separated: vintage, styles/07, stargan/Young ... (default: each "
        "victim's default edits; every edit of a victim that has no defaults)",
    )
    p.add_argument("--attrs", help="the image's original attribute values, comma-separated 0/1")
    p.add_argument(
        "--box",
        action="append",
        help="face box left,top,right,bottom (default: the faces the detector finds); repeat for several faces",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    add_face_options(p)
    add_batch_options(p)
    add_policy_options(p)
    add_model_options(p)
    p.set_defaults(func=run)


def _ints(text: str | None, field: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise InvalidInputError(field, f"expected comma-separated integers, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    if is_batch(args):
        return run_batch(args)
    from faceshield.engine import AttackConfig, FaceShieldEngine, ProtectRequest
    from faceshield.engine.faces import NoFaceError, choose_faces
    from faceshield.engine.io.images import encode_png
    from faceshield.engine.io.metadata import kept_exif
    from faceshield.engine.pipeline import Limits

    from .batch_job import write_atomic

    # Cheap checks first: parameters, then the image and its faces, then the (slower) model load.
    config = AttackConfig.for_method(args.method, epsilon=args.epsilon, steps=args.steps, seed=args.seed)
    policy = policy_from(args, config)
    limits = Limits()
    source = args.input[0]
    image = read_image(source, limits.max_pixels)
    try:
        faces = choose_faces(image, box_list(args.box), args.faces == "detect", args.no_face, field="input")
    except NoFaceError:
        raise InvalidInputError(
            "input",
            f"no face was found in {source}; give its face with --box, or --no-face centre for the centre square",
        ) from None
    exif = kept_exif(Path(source).read_bytes(), tuple(args.keep_metadata))
    progress = StepProgress.for_stderr()
    progress.stage("loading models")
    models = load_models(args)
    engine = FaceShieldEngine(
        models,
        device=resolve_device(args.device),
        limits=limits,
        compile=args.compile,
        precision=args.precision,
        verdict=args.verdict,
    )
    request = engine.check(
        ProtectRequest(
            image,
            original_attributes=_ints(args.attrs, "attrs"),
            targets=args.targets.split(",") if args.targets else None,
            face_box=None if faces.boxes is None else list(faces.boxes),
        )
    )
    outcome = engine.protect([request], config, policy=policy, progress=progress.step, extras=bool(args.figure))[0]
    progress.done()
    assert outcome is not None
    out = Path(args.output)
    try:
        write_atomic(out, encode_png(outcome.protected, exif=exif))
    except OSError as exc:
        raise InvalidInputError("output", f"cannot write {out}: {exc.strerror}") from None
    if args.figure:
        from .figure import write_figure

        idr = outcome.verdict.identity
        write_figure(
            Path(args.figure),
            image,
            outcome,
            {} if idr is None else {(e.victim, e.target, e.face): e for e in idr.edits},
        )
    info = engine.info()
    report = build_report(out, image, args.method, config, policy, models, info, outcome)
    report["faces"] = {"source": faces.source, "detected": len(faces.detected), "dropped": faces.dropped}
    if not models.trained:
        print(f"note: {models.description}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render_text(report))
    return 0 if outcome.verdict.protected else EXIT_NOT_PROTECTED


def build_report(out, image, method, config, policy, models, info, outcome) -> dict:
    """Everything the command measured, JSON-ready (non-finite numbers as null)."""
    v = outcome.verdict
    victims = {x.name: x for x in models.victims}
    per_victim: dict[str, list[dict]] = {}
    for t in outcome.targets:
        per_victim.setdefault(t.victim, []).append(_finite(t.as_dict()))
    return {
        "output": str(out),
        "size": [int(image.shape[1]), int(image.shape[0])],
        "method": method,
        "policy": {
            "kind": policy.kind,
            "budget_steps": policy.budget_steps,
            "margin": policy.margin,
            "early_stop": policy.early_stop,
            "verify_after": list(policy.verify_after),
        },
        "epsilon": config.epsilon,
        "epsilon_levels": config.epsilon * LEVEL,
        "models": {"name": models.name, "version": models.version, "trained": models.trained},
        "execution": {
            "device": info.device,
            "precision": info.precision,
            "compile": info.compile,
            "saliency_runtime": info.saliency_runtime,
        },
        "boxes": [list(b) for b in outcome.boxes],
        "input": {**_finite(outcome.input.as_dict()), "linf_levels": outcome.input.linf * 255},
        "victims": [
            {
                "name": name,
                "kind": victims[name].kind,
                "resolution": victims[name].resolution,
                "description": victims[name].description,
                "targets": rows,
            }
            for name, rows in per_victim.items()
        ],
        "targets": [_finite(t.as_dict()) for t in outcome.targets],
        "success_rate": sum(t.success for t in outcome.targets) / len(outcome.targets),
        "protected": v.protected,
        "verdict_rule": v.rule,
        "identity": None if v.identity is None else identity_json(v.identity),
        "disrupted": v.disrupted,
        "not_disrupted": list(v.not_disrupted),
        "after_processing": dict(v.after),
        "steps": v.steps,
        "rounds": v.rounds,
        "seconds": round(outcome.compute_seconds, 3),
    }


def render_text(r: dict) -> str:
    """The report for a person: every number labelled, in units a person reads."""
    i = r["input"]
    p = r["policy"]
    schedule = f"{r['steps']} steps" + (f" in {r['rounds']} rounds" if r["rounds"] > 1 else "")
    lines = [
        f"wrote {r['output']} ({r['size'][0]}x{r['size'][1]}; {r['method']}, policy {p['kind']}: {schedule}; "
        f"{r['seconds']} s)",
        f"face box{'es' if len(r['boxes']) > 1 else ''}: "
        + "; ".join(",".join(map(str, b)) for b in r["boxes"])
        + _face_source(r.get("faces")),
        f"change: at most {r['epsilon_levels']:.1f} of 255 levels allowed (epsilon {r['epsilon']}), "
        f"largest made {i['linf_levels']:.0f}/255; PSNR {_num(i['psnr'], '.2f')} dB, SSIM {_num(i['ssim'], '.4f')}, "
        f"mean change {i['l1'] * 255:.2f}/255",
    ]
    identity = r.get("identity")
    edits = {(e["victim"], e["target"], e["face"]): e for e in (identity or {}).get("edits", [])}
    if identity:
        for f in identity["faces"]:
            kept = "still the person" if f["kept"] else "NO LONGER the person"
            what = (
                f"distance {f['distance']:.2f} ({kept})"
                if f["distance"] is not None
                else f"not measured: {f['reason']}"
            )
            lines.append(f"face {f['face']}: protected photo vs original, face recogniser {what}")
    for v in r["victims"]:
        about = f" - {v['description']}" if v["description"] else ""
        lines.append(f"victim {v['name']} ({v['kind']}, {v['resolution']} px){about}")
        for t in v["targets"]:
            face = f" face {t['face']}" if len(r["boxes"]) > 1 else ""
            state = "disrupted" if t["success"] else "NOT disrupted"
            e = edits.get((v["name"], t["target"], t["face"]))
            who = "" if e is None else "  " + _edit_text(e)
            lines.append(
                f"  {t['target']:<10}{face} output MSE {t['mse']:.4f} ({state}), SSIM {t['output_ssim']:.2f}{who}"
            )
    if identity:
        lines.append(
            "  (deepfake: the victim's edit of the protected photo, judged by dlib's face recogniser against the "
            "original: 'fails' at distance >= 0.6, dlib's same-person threshold; 'disrupted': output MSE > 0.05; "
            "SSIM: the edit of the protected photo against the clean edit, near 1 = the same picture)"
        )
    else:
        lines.append(
            "  ('disrupted': the victim's output for the protected image differs from its output for the original "
            "by MSE > 0.05, pixels in [-1, 1])"
        )
    for name, ok in r["after_processing"].items():
        lines.append(f"after {name}: {'every edit still disrupted' if ok else 'NOT every edit disrupted'} (MSE rule)")
    if r["protected"]:
        what = "every deepfake fails to match the person; the photo still does" if identity else "every edit disrupted"
        lines.append(f"verdict: protected ({what})")
    elif identity:
        problems = identity["problems"]
        shown = "; ".join(problems[:4]) + (" ..." if len(problems) > 4 else "")
        lines.append(f"verdict: NOT protected: {shown}")
    else:
        missed = r["not_disrupted"]
        total = len(r["targets"])
        shown = ", ".join(missed[:6]) + (" ..." if len(missed) > 6 else "")
        lines.append(f"verdict: NOT protected: {len(missed)} of {total} edits not disrupted ({shown})")
    return "\n".join(lines)


def _edit_text(e: dict) -> str:
    if e["state"] == "not measured":
        return "deepfake: identity not measured"
    after = "".join(f", after {p} {a['distance']:.2f}" for p, a in e["after"].items())
    verdict = {"broken": "fails as the person", "passes": "STILL PASSES as the person"}.get(e["state"], e["state"])
    return f"deepfake {e['protected_distance']:.2f} from the person{after} (clean edit {e['clean_distance']:.2f}): {verdict}"


def _face_source(faces: dict | None) -> str:
    if not faces:
        return ""
    if faces["source"] == "detected":
        dropped = f"; {faces['dropped']} smaller ones left out, past the limit" if faces["dropped"] else ""
        return f" (head regions of the {faces['detected']} face(s) the detector found{dropped})"
    shown = {"given": " (given)", "centre": " (the centre square)"}
    return shown.get(faces["source"], " (the centre square: no face found)")


def _num(v, fmt: str) -> str:
    return "inf" if v is None else format(v, fmt)


def _finite(d: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}
