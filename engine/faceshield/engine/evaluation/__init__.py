"""Reproducing the paper's evaluation (Tables I-III) on any data and models, and beyond it:
robustness of the protection to JPEG, rescaling and blur.

    >>> ev = Evaluation(engine, open_dataset("data/celeba", 128, engine.attributes), EvaluationPlan(sizes=(50,)), "out")
    >>> ev.open(); ev.run(); write_report(ev)

Never imports grpc; the service's Evaluate RPC can reuse `evaluate_pair`.
"""

from ..io.processing import TRANSFORMS
from .datasets import Dataset, Sample, open_dataset, stargan_order
from .report import write_report
from .robustness import (
    PairEvaluation,
    TransformedBatch,
    control_metrics,
    evaluate_pair,
    transformed_metrics,
)
from .rows import ABLATION_ROWS, ALL_ROWS, METHOD_ROWS, Row, stage_key
from .runner import PROTOCOLS, Evaluation, EvaluationPlan, Progress, sample_seed
from .stats import Estimate, mean_ci, paired_difference, wilson
from .tables import build_tables

__all__ = [
    "ABLATION_ROWS",
    "ALL_ROWS",
    "METHOD_ROWS",
    "PROTOCOLS",
    "TRANSFORMS",
    "Dataset",
    "Estimate",
    "Evaluation",
    "EvaluationPlan",
    "PairEvaluation",
    "Progress",
    "Row",
    "Sample",
    "TransformedBatch",
    "build_tables",
    "control_metrics",
    "evaluate_pair",
    "mean_ci",
    "open_dataset",
    "paired_difference",
    "sample_seed",
    "stage_key",
    "stargan_order",
    "transformed_metrics",
    "wilson",
    "write_report",
]
