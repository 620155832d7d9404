"""benchmarks/celeba_report.py's policy-against-policy table, from hand-made records: the paired
differences are the mean of per-face differences over the faces both rows have, rates count each
face's share of its edits, and the identity share counts only edits whose clean edit passes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
try:
    import celeba_report as report
finally:
    sys.path.pop(0)


def record(face: str, row: str, psnr: float, mse: list[float], protected: list[float], clean=None) -> dict:
    """One face's record with two edits; processing leaves the edits as they are."""
    clean = clean or [0.4] * len(mse)
    after = {"mse": mse, "distance": protected}
    return {"face": face, "row": row, "psnr": psnr, "mse": mse, "clean": clean, "protected": protected,
            "after": {p: after for p in report.AFTER}}  # fmt: skip


def testpolicy_pairs_are_paired_over_common_faces_in_points():
    from faceshield.engine.evaluation.rows import ALL_ROWS

    ensure = {
        "a": record("a", "union-saliency+ensure", 34.0, [0.01, 0.01], [0.5, 0.5]),
        "b": record("b", "union-saliency+ensure", 35.0, [0.06, 0.01], [0.5, 0.7]),
        "c": record("c", "union-saliency+ensure", 30.0, [0.01, 0.01], [0.5, 0.5]),  # only this row has c
    }
    robust = {
        "a": record("a", "union-saliency-robust+ensure", 34.5, [0.06, 0.06], [0.7, 0.5]),
        # the second edit's clean edit already fails the check: it has no identity to break
        "b": record("b", "union-saliency-robust+ensure", 35.5, [0.06, 0.01], [0.5, 0.9], clean=[0.4, 0.65]),
    }
    by_work = {ALL_ROWS[r["row"]].work_key: {} for r in (*ensure.values(), *robust.values())}
    for r in (*ensure.values(), *robust.values()):
        by_work[ALL_ROWS[r["row"]].work_key][r["face"]] = r

    lines = report.policy_pairs(by_work)
    (row,) = [line for line in lines if line.startswith(f"| {ALL_ROWS['union-saliency-robust+ensure'].label} |")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == ALL_ROWS["union-saliency+ensure"].label
    assert cells[2] == "2"  # face c is left out
    # PSNR: +0.5 on both faces; Ruiz: +100 points on a, 0 on b; identity: a +50 points, b 0 - 50 = -50
    assert cells[3] == "+0.50 [+0.50, +0.50]"
    ruiz = cells[4].split(" ")[0]
    assert float(ruiz) == pytest.approx(50.0)
    assert cells[5] == cells[4] and cells[6] == cells[4]  # processing left the edits alone
    assert float(cells[7].split(" ")[0]) == pytest.approx(0.0)


def testpolicy_pairs_leave_out_pairs_without_common_faces():
    from faceshield.engine.evaluation.rows import ALL_ROWS

    only = record("a", "pgd+ensure", 34.0, [0.06], [0.7])
    assert report.policy_pairs({ALL_ROWS["pgd+ensure"].work_key: {"a": only}}) == []
