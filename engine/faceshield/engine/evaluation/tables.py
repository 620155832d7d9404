"""From records to the paper's tables: means with 95% intervals, success rates, findings.

Statistics are over images. Under the per-target protocol an image is attacked once per target,
and its input-side metrics are first averaged over its targets (an image's targets are not
independent observations); the mean equals the mean over (image, target) pairs. Success rates
pool every (image, target) decision, successes / (images x targets) as docs/method.md §5 defines them,
with a Wilson interval that treats the decisions as independent (narrower than a clustered one).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from .rows import TABLE_METHODS, Row
from .stats import Estimate, mean_ci, paired_difference, wilson

INPUT_METRICS = ("l1", "l2", "linf", "psnr", "ssim")
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "l1": False, "l2": False, "linf": False}
CONTROL = "control"


def _group(records: Sequence[dict]) -> dict[tuple[str, str], dict[str, list[dict]]]:
    """(row work key, protocol) -> sample -> records."""
    out: dict[tuple[str, str], dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        out[(r["row"], r["protocol"])][r["sample"]].append(r)
    return out


def per_image(samples: dict[str, list[dict]], ids: Sequence[str], metric: str) -> dict[str, float]:
    """Input-side metric per image (mean over the image's records), for images in `ids`."""
    out = {}
    for i in ids:
        vals = [r["input"][metric] for r in samples.get(i, ()) if r.get("input") and r["input"].get(metric) is not None]
        if vals:
            out[i] = sum(vals) / len(vals)
    return out


def _successes(entries: list[dict]) -> dict[str, Estimate]:
    return {
        "success": wilson(sum(bool(m["success"]) for m in entries), len(entries)),
        "masked_success": wilson(sum(bool(m["masked_success"]) for m in entries), len(entries)),
    }


def row_statistics(samples: dict[str, list[dict]], ids: Sequence[str], transforms: Sequence[str]) -> dict:
    """Table entries of one row under one protocol, over the images `ids`."""
    present = [i for i in ids if i in samples]
    entries = [m for i in present for r in samples[i] for m in r.get("targets", ())]
    out = {
        "images": len(present),
        "decisions": len(entries),
        "input": {k: mean_ci(list(per_image(samples, present, k).values())) for k in INPUT_METRICS},
        "output_mse": mean_ci([m["mse"] for m in entries]),
        "output_masked_mse": mean_ci([m["masked_mse"] for m in entries]),
        **_successes(entries),
    }
    secs = [sum(r.get("seconds", 0.0) for r in samples[i]) for i in present]
    out["seconds_per_image"] = sum(secs) / len(secs) if secs else None
    victims = sorted({m.get("victim", "") for m in entries})
    out["by_victim"] = {
        v: {
            **_successes([m for m in entries if m.get("victim", "") == v]),
            "output_mse": mean_ci([m["mse"] for m in entries if m.get("victim", "") == v]),
        }
        for v in victims
    }
    verdicts = [r["verdict"] for i in present for r in samples[i] if "verdict" in r]
    out["protected"] = wilson(sum(bool(v["protected"]) for v in verdicts), len(verdicts)) if verdicts else None
    out["steps"] = mean_ci([float(v["steps"]) for v in verdicts]) if verdicts else None
    out["passes"] = mean_ci([float(v["passes"]) for v in verdicts]) if verdicts else None
    robust: dict[str, dict[str, object]] = {}
    for t in transforms:
        te = [m for i in present for r in samples[i] for m in r.get("transformed", {}).get(t, ())]
        by_victim = {v: _successes([m for m in te if m.get("victim", "") == v]) for v in victims}
        robust[t] = {**_successes(te), "by_victim": by_victim}
    out["robustness"] = robust
    return out


def build_tables(
    records: Sequence[dict],
    sample_ids: Sequence[str],
    rows: Sequence[Row],
    protocols: Sequence[str],
    sizes: Sequence[int],
    transforms: Sequence[str],
    skipped: dict[str, str],
) -> dict:
    """Everything the report shows, as plain data (Estimates included)."""
    grouped = _group(records)
    out: dict = {"protocols": {}, "control": {}, "findings": {}}
    for protocol in protocols:
        by_size = {}
        for n in sizes:
            ids = sample_ids[:n]
            by_size[n] = {
                r.key: row_statistics(grouped.get((r.work_key, protocol), {}), ids, transforms)
                for r in rows
                if r.key not in skipped
            }
        out["protocols"][protocol] = by_size
        out["findings"][protocol] = findings(
            grouped, sample_ids[: max(sizes)], rows, protocol, skipped, by_size[max(sizes)]
        )
    control = grouped.get((CONTROL, CONTROL), {})
    for n in sizes:
        ids = [i for i in sample_ids[:n] if i in control]
        out["control"][n] = {
            "images": len(ids),
            **{
                t: _successes([m for i in ids for r in control[i] for m in r.get("transformed", {}).get(t, ())])
                for t in transforms
            },
        }
    return out


def findings(
    grouped, ids: Sequence[str], rows: Sequence[Row], protocol: str, skipped: dict[str, str], stats: dict[str, dict]
) -> dict:
    """Does the paper's ordering hold here? Union-saliency against each comparison method.

    "Comparable" methods are those whose success rate is not clearly different from
    union-saliency's (the two 95% Wilson intervals overlap): a method that perturbs less but
    disrupts less often, or more but disrupts more often, is not a like-for-like PSNR comparison.
    Methods clearly above or below are listed apart.
    """
    methods = [r for r in rows if r.table == TABLE_METHODS and r.key not in skipped and stats[r.key]["images"]]
    ranked = {
        m: [
            r.key
            for r in sorted(
                methods, key=lambda r: stats[r.key]["input"][m].mean or float("-inf"), reverse=HIGHER_IS_BETTER[m]
            )
        ]
        for m in ("psnr", "ssim")
    }
    result: dict = {"ranking": ranked, "comparisons": {}, "verdict": None}
    ours = next((r for r in methods if r.key == "union-saliency"), None)
    if ours is None:  # the verdict reads after "the paper's ordering"
        if "union-saliency" in skipped:
            why = f"union-saliency was skipped ({skipped['union-saliency']})"
        elif any(r.key == "union-saliency" for r in rows):
            why = f"union-saliency has no results under the {protocol} protocol yet"
        else:
            why = "union-saliency was not part of this run"
        result["verdict"] = f"cannot be judged: {why}"
        result["holds"] = None
        return result
    ours_s = grouped.get((ours.work_key, protocol), {})
    ours_rate = stats[ours.key]["success"]
    comparable, higher, lower = [], [], []
    for r in methods:
        if r.key == ours.key:
            continue
        other = grouped.get((r.work_key, protocol), {})
        rate = stats[r.key]["success"]
        if rate.low is not None and ours_rate.high is not None and rate.low > ours_rate.high:
            relation = "higher"
            higher.append(r.key)
        elif rate.high is not None and ours_rate.low is not None and rate.high < ours_rate.low:
            relation = "lower"
            lower.append(r.key)
        else:
            relation = "comparable"
        is_comparable = relation == "comparable"
        comp = {"comparable": is_comparable, "success_relation": relation, "success": rate, "success_ours": ours_rate}
        for m in ("psnr", "ssim"):
            comp[m] = paired_difference(per_image(ours_s, ids, m), per_image(other, ids, m))
        result["comparisons"][r.key] = comp
        if is_comparable:
            comparable.append(r.key)
    result["comparable"] = comparable
    result["success_higher"] = higher
    result["success_lower"] = lower
    best = {}
    for m in ("psnr", "ssim"):
        pool = [k for k in ranked[m] if k in comparable or k == ours.key]
        best[m] = pool[0] if pool else None
    result["best_among_comparable"] = best
    wins = [
        k
        for k in comparable
        if all((d := result["comparisons"][k][m]).low is not None and d.low > 0 for m in ("psnr", "ssim"))
    ]
    result["significantly_better_than"] = wins
    if not ours_rate.mean:
        result["verdict"] = (
            "cannot be judged: union-saliency disrupted no edit (success rate 0), so a higher PSNR "
            "only means a smaller perturbation that does not work"
        )
        result["holds"] = None
    elif not comparable:
        result["verdict"] = (
            "cannot be judged at equal disruption: no comparison method has a success rate "
            "comparable to union-saliency's"
        )
        result["holds"] = None
    elif best["psnr"] == ours.key and best["ssim"] == ours.key:
        sig = (
            "significantly (paired 95% interval above 0) against every one"
            if len(wins) == len(comparable)
            else f"significantly against {', '.join(wins) or 'none'} (paired 95% interval above 0)"
        )
        result["verdict"] = (
            f"holds: union-saliency has the highest PSNR and SSIM among the methods with a "
            f"comparable success rate ({', '.join(comparable)}), {sig}"
        )
        result["holds"] = True
    else:
        result["verdict"] = (
            f"does not hold: among methods with a comparable success rate the best PSNR is "
            f"{best['psnr']} and the best SSIM is {best['ssim']}"
        )
        result["holds"] = False
    notes = []
    if higher:
        notes.append(f"{_names(higher)} clearly more often than union-saliency")
    if lower:
        notes.append(f"{_names(lower)} clearly less often than union-saliency")
    if ours_rate.mean is not None and 0 < ours_rate.mean < 0.5:
        notes.append(f"union-saliency disrupts only {100 * ours_rate.mean:.0f}% of the edits")
    if notes:
        result["verdict"] += "; " + "; ".join(notes)
    return result


def _names(keys: list[str]) -> str:
    """'a disrupts' / 'a and b disrupt' / 'a, b and c disrupt'."""
    if len(keys) == 1:
        return f"{keys[0]} disrupts"
    return f"{', '.join(keys[:-1])} and {keys[-1]} disrupt"
