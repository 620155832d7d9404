"""The common end of the resumable benchmarks (identity_celeba, held_out, paper_tables_celeba,
vae_control, other_styles): each appends numbers-only records to a JSONL file and rewrites its
report from all the records, so a run can stop, resume, or only rewrite the report."""

from __future__ import annotations

from collections.abc import Callable


def finish(args, run: Callable[[object], None], summarize: Callable[[object], str]) -> int:
    """Run (unless --report-only), then write the report to `args.out` and print it. The report's
    header names the torch version, so `args.torch` is set first."""
    import torch

    args.torch = torch.__version__
    if not args.report_only:
        run(args)
    args.out.write_text(summarize(args))
    print(args.out.read_text())
    return 0
