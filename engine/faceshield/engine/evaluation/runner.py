"""The evaluation protocol: every requested row, over the data set, resumable.

Work is done a chunk of samples at a time (chunk-major), so that an interrupted run has results
for every row on its first images rather than for the first rows on every image. Within a chunk:
for each protocol, for each distinct configuration, one engine call per target ("per-target",
the paper's and Ruiz et al.'s protocol: the image is attacked against one target at a time) or
one call for all targets at once ("joint": one protected image must disrupt every edit).

Each call's records go to the `ResultStore` in one write; a rerun skips what is recorded, so
Ctrl-C loses at most the calls in flight, and a resumed run equals an uninterrupted one (same
chunks, same seeds, same batches).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ..defaults import EOT_SAMPLES, ROBUST_SAMPLES
from ..errors import InvalidInputError
from ..metrics import TargetMetrics
from ..models.victims import select_targets
from ..pipeline import FaceShieldEngine, ProtectOutcome, ProtectRequest
from .datasets import Dataset
from .grids import grid_rows, save_grid
from .identity import default_targets, model_fingerprint, sample_seed, state_hash  # noqa: F401 (re-exported)
from .plan import EvaluationPlan, Progress  # noqa: F401 (re-exported)
from .robustness import TRANSFORMS_VERSION, TransformedBatch
from .rows import ALL_ROWS, Row
from .sample import SampleCache
from .store import ResultStore

log = logging.getLogger(__name__)

CONTROL = "control"
ALL_TARGETS = "*"
RESULTS_FILE = "results.jsonl"
MANIFEST_FILE = "run.json"
FIGURES_DIR = "figures"


class Evaluation:
    """One evaluation run in `out_dir`: its plan, its records, and the loop that fills them."""

    def __init__(self, engine: FaceShieldEngine, dataset: Dataset, plan: EvaluationPlan, out_dir: str | Path):
        plan.validate()
        self.engine = engine
        self.dataset = dataset
        self.plan = plan
        self.out_dir = Path(out_dir)
        self.store = ResultStore(self.out_dir / RESULTS_FILE)
        if plan.n > len(dataset):
            extra = (
                " (StarGAN's CelebA test split has 1999; pass --split all for more)"
                if dataset.kind == "celeba" and dataset.split == "test"
                else ""
            )
            raise InvalidInputError("n", f"asked for {plan.n} images, the data set has {len(dataset)}{extra}")
        self.targets = list(plan.targets or default_targets(engine))
        select_targets(engine.models.victims, self.targets)  # refuses unknown names, naming them
        self.sample_ids = dataset.ids[: plan.n]
        self.rows = [ALL_ROWS[k] for k in plan.rows]
        self.skipped: dict[str, str] = {}
        if engine.models.saliency is None:
            for r in self.rows:
                if r.needs_saliency:
                    self.skipped[r.key] = "needs a saliency model (TRACER) and the loaded model set has none"
        self.work: dict[str, Row] = {}  # work key -> first row that runs it
        for r in self.rows:
            if r.key not in self.skipped:
                self.work.setdefault(r.work_key, r)
        # Figures show the figure row (union-saliency) where it runs, else the last row that does.
        wanted = ALL_ROWS[plan.figure_row]
        runnable = [r for r in self.rows if r.key not in self.skipped]
        self.figure_row = wanted if wanted.work_key in self.work else (runnable[-1] if runnable else None)
        self.started = time.time()
        self.elapsed_before = 0.0
        # The command that computes (and resumes) this run, kept in run.json so that a report
        # rewritten later (--report-only) still names it; the caller sets it.
        self.command: str | None = None
        self.transformed = TransformedBatch(engine)

    # -- identity and resuming ---------------------------------------------------------------
    def fingerprint(self) -> dict:
        """Everything that changes a record's numbers; a resumed run must match it."""
        attack = dataclasses.asdict(self.plan.attack)
        for k in ("method", "stages", "seed"):
            attack.pop(k)
        return {
            "models": model_fingerprint(self.engine),
            "data": self.dataset.describe(),
            "attack": attack,
            "seed": self.plan.seed,
            "batch_size": self.plan.batch_size,
            "transforms_version": TRANSFORMS_VERSION,
            "device": self.engine.device.type,
            "autocast": str(self.engine.protector.autocast_dtype),
        }

    def open(self, restart: bool = False) -> None:
        """Create `out_dir` or resume the run in it; refuse to mix in a different run."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        manifest_path = self.out_dir / MANIFEST_FILE
        fp = self.fingerprint()
        if restart:
            for p in (self.store.path, manifest_path):
                p.unlink(missing_ok=True)
            for fig in (self.out_dir / FIGURES_DIR).glob("sample-*.png"):
                fig.unlink()
        if manifest_path.exists():
            old = json.loads(manifest_path.read_text())
            if old.get("fingerprint") != fp:
                diff = sorted(
                    k
                    for k in set(fp) | set(old.get("fingerprint", {}))
                    if fp.get(k) != old.get("fingerprint", {}).get(k)
                )
                raise InvalidInputError(
                    "out",
                    f"{self.out_dir} holds a run with different settings ({', '.join(diff)}); "
                    "choose another output folder, or pass --restart to discard it",
                )
            self.elapsed_before = float(old.get("compute_seconds", 0.0))
            self.command = self.command or old.get("command")
        elif self.store.path.exists() and self.store.path.stat().st_size:
            raise InvalidInputError(
                "out", f"{self.store.path} exists without {MANIFEST_FILE}; pass --restart or choose another folder"
            )
        self.store.load()
        self._write_manifest(fp)

    def _write_manifest(self, fp: dict | None = None) -> None:
        path = self.out_dir / MANIFEST_FILE
        data = {
            "format": 1,
            "fingerprint": fp or self.fingerprint(),
            "updated": datetime.now(UTC).isoformat(timespec="seconds"),
            "compute_seconds": round(self.elapsed_before + getattr(self, "_spent", 0.0), 3),
            "command": self.command,
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(path)

    # -- what is left to do ------------------------------------------------------------------
    def _calls(self, protocol: str) -> list[list[str] | None]:
        return [[t] for t in self.targets] if protocol == "per-target" else [None]

    @staticmethod
    def _target_key(call: list[str] | None) -> str:
        return ALL_TARGETS if call is None else call[0]

    def _complete(self, record: dict | None) -> bool:
        return record is not None and all(t in record.get("transformed", {}) for t in self.plan.transforms)

    def _cost(self, row: Row, n_targets: int) -> float:
        a = self.plan.attack
        per_step = {"eot": EOT_SAMPLES, "robust": ROBUST_SAMPLES}.get(row.stages.blur, 1)
        noise = a.noise_steps if row.stages.start == "noise-generator" else 0
        transforms = len(self.plan.transforms) / 3  # one forward per transform, ~1/3 of a step
        # ensure: about half its budget on average (early stop ends most images sooner)
        steps = a.steps if row.policy.kind != "ensure" else max(a.steps, row.policy.budget_steps // 2)
        return n_targets * (steps * per_step + noise + 1 + transforms)

    def expected_keys(self) -> list[tuple[str, str, str, str]]:
        keys = []
        for s in self.sample_ids:
            for protocol in self.plan.protocols:
                for wk in self.work:
                    for call in self._calls(protocol):
                        keys.append((wk, protocol, s, self._target_key(call)))
            if self.plan.transforms:
                keys.append((CONTROL, CONTROL, s, ALL_TARGETS))
        return keys

    def progress(self) -> Progress:
        p = Progress()
        for s in self.sample_ids:
            for protocol in self.plan.protocols:
                for wk, row in self.work.items():
                    for call in self._calls(protocol):
                        w = self._cost(row, len(call) if call else len(self.targets))
                        done = self._complete(self.store.records.get((wk, protocol, s, self._target_key(call))))
                        p.total_items += 1
                        p.total_work += w
                        if done:
                            p.done_items += 1
                            p.done_work += w
        return p

    # -- the loop ----------------------------------------------------------------------------
    def run(self, on_progress: Callable[[Progress], None] | None = None) -> Progress:
        """Fill in every missing record. Safe to interrupt at any point."""
        progress = self.progress()
        self._t_start = time.perf_counter()
        self._spent = 0.0
        notify = on_progress or (lambda p: None)
        notify(progress)
        try:
            for c0 in range(0, len(self.sample_ids), self.plan.batch_size):
                self._run_chunk(self.sample_ids[c0 : c0 + self.plan.batch_size], progress, notify)
        finally:
            self._spent = time.perf_counter() - self._t_start
            self._write_manifest()
        return progress

    def _run_chunk(self, ids: list[str], progress: Progress, notify: Callable[[Progress], None]) -> None:
        load = SampleCache(self.dataset)
        self.transformed.clear()  # the previous chunk's reference edits
        if self.plan.transforms and self._chunk_has_work(ids):
            self.transformed.prepare(
                ids,
                [load(i).image for i in ids],
                [load(i).attributes for i in ids],
                self.targets,
                self.plan.transforms,
                [load(i).face_box for i in ids],
            )
            self._run_control(ids, load)
        for protocol in self.plan.protocols:
            for wk, row in self.work.items():
                self._run_row(ids, load, protocol, wk, row, progress, notify)

    def _run_row(
        self,
        ids: list[str],
        load: SampleCache,
        protocol: str,
        wk: str,
        row: Row,
        progress: Progress,
        notify: Callable[[Progress], None],
    ) -> None:
        """One configuration under one protocol for one chunk: an engine call per target (or one)."""
        wanted = self._figure_ids(ids, protocol, row)
        figure_rows: dict[str, list[dict]] = {}
        for call in self._calls(protocol):
            tk = self._target_key(call)
            missing = [i for i in ids if not self._complete(self.store.records.get((wk, protocol, i, tk)))]
            got: dict[str, ProtectOutcome] = {}
            if missing:
                progress.label = f"{row.key} {protocol}" + (f" {tk}" if tk != ALL_TARGETS else "")
                notify(progress)
                outcomes = self._protect(missing, load, row, call, extras=bool(wanted))
                self._record(missing, load, outcomes, wk, protocol, call)
                got.update(zip(missing, outcomes, strict=True))
                progress.done_items += len(missing)
                progress.done_work += self._cost(row, len(call) if call else len(self.targets)) * len(missing)
                self._spent = time.perf_counter() - self._t_start
                self._write_manifest()  # the time spent survives even a kill -9 (a small file)
                notify(progress)
            need = [i for i in wanted if i not in got]
            if need:  # the figure of a sample recorded earlier: recompute it, record nothing
                got.update(zip(need, self._protect(need, load, row, call, extras=True), strict=True))
            for i in wanted:
                figure_rows.setdefault(i, []).extend(grid_rows(load(i), got[i], joint=call is None))
        for i, rows in figure_rows.items():
            title = f"{row.label}, {protocol} protocol, sample {self.sample_ids.index(i)}"
            save_grid(self.figure_path(i, protocol), rows, title)

    def _chunk_has_work(self, ids: list[str]) -> bool:
        keys = [(CONTROL, CONTROL, i, ALL_TARGETS) for i in ids]
        keys += [
            (wk, protocol, i, self._target_key(call))
            for i in ids
            for protocol in self.plan.protocols
            for wk in self.work
            for call in self._calls(protocol)
        ]
        return not all(self._complete(self.store.records.get(k)) for k in keys)

    def _run_control(self, ids: list[str], load) -> None:
        todo = [i for i in ids if not self._complete(self.store.records.get((CONTROL, CONTROL, i, ALL_TARGETS)))]
        if not todo:
            return
        samples = [load(i) for i in todo]
        metrics = self.transformed.control(
            todo,
            [s.image for s in samples],
            [s.attributes for s in samples],
            self.targets,
            self.plan.transforms,
            [s.face_box for s in samples],
        )
        self.store.append(
            [
                {
                    "row": CONTROL,
                    "protocol": CONTROL,
                    "sample": i,
                    "target": ALL_TARGETS,
                    "transformed": {k: [m.as_dict() for m in v] for k, v in tm.items()},
                }
                for i, tm in zip(todo, metrics, strict=True)
            ]
        )

    def _protect(self, ids: list[str], load, row: Row, call: list[str] | None, extras: bool) -> list[ProtectOutcome]:
        config = self.plan.attack.replace(method=row.method or row.key, stages=row.stages)
        policy = row.policy
        if policy.kind == "ensure" and policy.budget_steps < config.steps:
            policy = dataclasses.replace(policy, budget_steps=config.steps)
        targets = call if call is not None else self.targets
        requests = [
            ProtectRequest(
                image=load(i).image,
                original_attributes=load(i).attributes,
                targets=targets,
                face_box=load(i).face_box,
                seed=sample_seed(self.plan.seed, i),
            )
            for i in ids
        ]
        outcomes: list[ProtectOutcome | None] = []
        step = self.engine.limits.max_batch
        for k in range(0, len(requests), step):
            outcomes.extend(self.engine.protect(requests[k : k + step], config, extras=extras, policy=policy))
        protected = [o for o in outcomes if o is not None]
        if len(protected) != len(outcomes):
            raise RuntimeError("the engine cancelled an evaluation item")  # no cancel hook is passed
        return protected

    def _record(
        self, ids: list[str], load, outcomes: list[ProtectOutcome], wk: str, protocol: str, call: list[str] | None
    ) -> None:
        targets = call if call is not None else self.targets
        transformed: list[dict[str, list[TargetMetrics]]] = [{}] * len(ids)
        if self.plan.transforms:
            samples = [load(i) for i in ids]
            transformed = self.transformed.metrics(
                ids,
                [s.image for s in samples],
                [o.protected for o in outcomes],
                [s.attributes for s in samples],
                targets,
                self.plan.transforms,
                [s.face_box for s in samples],
            )
        records = []
        for i, o, tm in zip(ids, outcomes, transformed, strict=True):
            rec = {
                "row": wk,
                "protocol": protocol,
                "sample": i,
                "target": self._target_key(call),
                "seed": sample_seed(self.plan.seed, i),
                "input": o.input.as_dict(),
                "targets": [m.as_dict() for m in o.targets],
                "seconds": round(o.compute_seconds / len(ids), 4),
                "verdict": {
                    "protected": o.verdict.protected,
                    "steps": o.verdict.steps,
                    "rounds": o.verdict.rounds,
                    "passes": o.verdict.passes,
                },
                "mask_coverage": round(o.mask_coverage, 4),
                "mask_mean": round(o.mask_mean, 4),
            }
            if self.plan.transforms:
                rec["transformed"] = {k: [m.as_dict() for m in v] for k, v in tm.items()}
            records.append(rec)
        self.store.append(records)

    # -- figures -----------------------------------------------------------------------------
    def figure_path(self, sample_id: str, protocol: str) -> Path:
        index = self.sample_ids.index(sample_id)
        return self.out_dir / FIGURES_DIR / f"sample-{index:03d}-{protocol}.png"

    def _figure_ids(self, ids: list[str], protocol: str, row: Row) -> list[str]:
        if self.figure_row is None or row.work_key != self.figure_row.work_key:
            return []
        first = set(self.sample_ids[: self.plan.figures])
        return [i for i in ids if i in first and not self.figure_path(i, protocol).exists()]

    # -- results -----------------------------------------------------------------------------
    def records(self) -> list[dict]:
        return list(self.store.records.values())

    def status(self) -> dict:
        expected = self.expected_keys()
        have = sum(1 for k in expected if self._complete(self.store.records.get(k)))
        return {
            "expected": len(expected),
            "done": have,
            "complete": have == len(expected),
            "compute_seconds": round(self.elapsed_before + getattr(self, "_spent", 0.0), 3),
        }
