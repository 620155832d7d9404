"""Reproducing the paper's evaluation (Tables I-III) on any data and models, and beyond it:
robustness of the protection to JPEG, rescaling and blur.

    >>> ev = Evaluation(engine, open_dataset("data/celeba", 128, engine.attributes), EvaluationPlan(sizes=(50,)), "out")
    >>> ev.open(); ev.run(); write_report(ev)

Never imports grpc; the service's Evaluate RPC can reuse `evaluate_pair`. Names resolve on first
use (as in `faceshield.engine`), so `faceshield evaluate --help` reads the row names without
loading PyTorch.
"""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "Dataset": ".datasets",
    "Sample": ".datasets",
    "open_dataset": ".datasets",
    "stargan_order": ".datasets",
    "write_report": ".report",
    "TRANSFORMS": "..io.processing",
    "PairEvaluation": ".robustness",
    "TransformedBatch": ".robustness",
    "control_metrics": ".robustness",
    "evaluate_pair": ".robustness",
    "transformed_metrics": ".robustness",
    "ABLATION_ROWS": ".rows",
    "ALL_ROWS": ".rows",
    "METHOD_ROWS": ".rows",
    "Row": ".rows",
    "stage_key": ".rows",
    "PROTOCOLS": ".names",
    "Evaluation": ".runner",
    "EvaluationPlan": ".plan",
    "Progress": ".plan",
    "sample_seed": ".runner",
    "Estimate": ".stats",
    "mean_ci": ".stats",
    "paired_difference": ".stats",
    "wilson": ".stats",
    "build_tables": ".tables",
}

__all__ = list(_EXPORTS)


_resolve, __dir__ = lazy_exports(__name__, _EXPORTS)


def __getattr__(name: str):  # a def, not the bare function, so type checkers see a lazy module
    return _resolve(name)
