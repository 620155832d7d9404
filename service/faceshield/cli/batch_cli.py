"""`faceshield protect` on many images: its options, and the run that dispatches to the local or
the Ray path (`batch_local`, `batch_ray`) over one plan (`batch_job`).

Exit status: 0 when every image of the job has an output, 1 when some failed (their number is
the last line on stderr and in the results log), 2 for an error that stops the job before it
starts (bad inputs, options, an unreachable Ray cluster), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from faceshield.engine.errors import InvalidInputError

if TYPE_CHECKING:
    from .batch_work import JobOptions

DEFAULT_BATCH = 8
MAX_SHOWN_FAILURES = 20


def add_face_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--faces",
        choices=("detect", "centre"),
        default="detect",
        help="without --box: detect (default) protects every face the detector finds; centre protects the centre square",
    )
    p.add_argument(
        "--no-face",
        choices=("refuse", "centre"),
        default="refuse",
        help="when the detector finds no face: refuse the image (default) or protect the centre square",
    )
    p.add_argument(
        "--keep-metadata",
        choices=("exif",),
        action="append",
        default=[],
        help="keep the photo's EXIF in the output (never GPS, maker note, thumbnail; default: no metadata at all)",
    )


def add_batch_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("many images (several inputs, a folder, or --list; -o is then a folder)")
    g.add_argument("--list", metavar="FILE", help="a file naming one image a line (relative to the file's folder)")
    g.add_argument("--log", metavar="PATH", help="the JSONL results log (default: OUT_DIR/faceshield-results.jsonl)")
    g.add_argument(
        "--batch", type=int, default=DEFAULT_BATCH, help=f"images per engine batch (default {DEFAULT_BATCH})"
    )
    g.add_argument(
        "--workers",
        default="1",
        metavar="N",
        help="processes that protect batches side by side on this machine, each holding the models: a number "
        "(default 1) or auto (on a CPU, one per idle core, one thread each; on a GPU, one). For many-core "
        "machines; on a 2-core CPU no faster than one process on two threads (benchmarks/results/folder-default-cpu.md)",
    )
    g.add_argument("--retry-failed", action="store_true", help="try again the images the log records as failed")
    g.add_argument(
        "--ray", metavar="ADDRESS", help="run on a Ray cluster: auto, local, or HOST:PORT (needs faceshield[cluster])"
    )
    g.add_argument("--ray-workers", type=int, default=1, help="Ray actors that hold the models (default 1)")
    g.add_argument("--ray-gpus", type=float, default=0.0, help="GPUs per Ray actor (default 0: CPU)")


def is_batch(args: argparse.Namespace) -> bool:
    """Several inputs, a folder, a list, --ray, or -o naming a folder: the folder job."""
    inputs = args.input or []
    out = str(args.output)
    folder_out = Path(out).is_dir() or out.endswith(("/", os.sep))
    return bool(args.list or args.ray or len(inputs) != 1 or Path(inputs[0]).is_dir() or folder_out)


def box_list(values: list[str] | None) -> list[tuple[int, int, int, int]] | None:
    if not values:
        return None
    boxes: list[tuple[int, int, int, int]] = []
    for v in values:
        try:
            b = tuple(int(x) for x in v.split(","))
        except ValueError:
            raise InvalidInputError("box", f"expected comma-separated integers, got {v!r}") from None
        if len(b) != 4:
            raise InvalidInputError("box", "a face box is four integers: left,top,right,bottom")
        boxes.append(b)
    return boxes


def job_options(args: argparse.Namespace, config, policy) -> JobOptions:
    from faceshield.engine.pipeline import Limits

    from .batch_work import JobOptions

    attrs = None
    if args.attrs:
        try:
            attrs = tuple(float(v) for v in args.attrs.split(","))
        except ValueError:
            raise InvalidInputError("attrs", f"expected comma-separated 0/1 values, got {args.attrs!r}") from None
    boxes = box_list(args.box)
    return JobOptions(
        method=args.method,
        epsilon=config.epsilon,
        steps=config.steps,
        seed=config.seed,
        targets=tuple(args.targets.split(",")) if args.targets else None,
        attrs=attrs,
        boxes=None if boxes is None else tuple(boxes),
        detect=args.faces == "detect",
        no_face=args.no_face,
        keep_metadata=tuple(args.keep_metadata),
        policy=dataclasses.asdict(policy),
        max_pixels=Limits().max_pixels,
    )


def run_batch(args: argparse.Namespace) -> int:
    from faceshield.engine import AttackConfig

    from .batch_job import make_plan
    from .common import policy_from
    from .progress import BatchProgress

    if not args.input and not args.list:
        raise InvalidInputError("input", "name at least one image, folder or --list file")
    if not 1 <= args.batch <= 32:
        raise InvalidInputError("batch", f"must be between 1 and 32 images, got {args.batch}")
    from .batch_pool import check_workers

    check_workers(args.workers)
    if args.ray and args.workers != "1":
        raise InvalidInputError("workers", "--workers runs processes on this machine; on Ray use --ray-workers")
    config = AttackConfig.for_method(args.method, epsilon=args.epsilon, steps=args.steps, seed=args.seed)
    policy = policy_from(args, config)
    options = job_options(args, config, policy)
    if Path(args.output).is_file():
        raise InvalidInputError("output", f"{args.output} is a file; with several images -o names a folder")
    plan = make_plan(args.input or [], args.list, args.output, args.log, args.retry_failed)
    todo = plan.todo
    print(
        f"{len(plan.items)} images: {len(todo)} to protect, {len(plan.items) - len(todo)} recorded in {plan.log_path}",
        file=sys.stderr,
    )
    progress = BatchProgress.for_stderr(len(todo))
    if todo and args.ray:
        from .batch_ray import run_ray

        run_ray(plan, options, args, args.batch, progress)
    elif todo:
        run_here(plan, options, args, progress)
    progress.done()
    return summarize(plan, args.json)


def run_here(plan, options: JobOptions, args: argparse.Namespace, progress) -> int:
    """The folder job on this machine: in this process, or on --workers processes."""
    from .batch_pool import choose_workers, run_pool, threads_each
    from .batch_work import MODEL_OPTIONS, engine_from_options
    from .common import resolve_device

    workers = choose_workers(args.workers, len(plan.todo), resolve_device(args.device))
    model_options = {k: getattr(args, k, None) for k in MODEL_OPTIONS}
    if workers > 1:
        model_options["threads"] = threads_each(args.threads, workers)
        return run_pool(plan, options, model_options, workers, args.batch, progress)
    from .batch_local import run_local

    return run_local(plan, options, engine_from_options(model_options, options), args.batch, progress)


def summarize(plan, as_json: bool) -> int:
    records = [plan.done[i.output] for i in plan.items if i.output in plan.done]
    failed = [r for r in records if r["status"] == "failed"]
    protected = sum(r["status"] == "protected" for r in records)
    summary = {
        "images": len(plan.items),
        "written": len(records) - len(failed),
        "protected": protected,
        "not_protected": len(records) - len(failed) - protected,
        "failed": len(failed),
        "output": str(plan.out_dir),
        "log": str(plan.log_path),
    }
    for r in failed[:MAX_SHOWN_FAILURES]:
        print(f"failed: {r['input']}: {r['error']['message']}", file=sys.stderr)
    if len(failed) > MAX_SHOWN_FAILURES:
        print(f"... and {len(failed) - MAX_SHOWN_FAILURES} more (see {plan.log_path})", file=sys.stderr)
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"wrote {summary['written']} of {summary['images']} images to {plan.out_dir} ({protected} protected against "
            f"every edit, {summary['not_protected']} not); log {plan.log_path}"
        )
    if failed:
        print(f"faceshield: {len(failed)} of {len(plan.items)} images failed", file=sys.stderr)
        return 1
    return 0
