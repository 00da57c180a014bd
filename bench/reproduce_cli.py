"""``bench reproduce``: run a published protocol on its suite, then compare.

Kept apart from `bench.cli` so that building the argument parser imports
nothing heavy; the run itself is an ordinary `bench.pipeline.run_suite`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.config import Preset

logger = logging.getLogger("bench")

# Reduced budget of `bench reproduce` when --trials, --seeds and --max-epochs
# are not given: 60 epochs per (dataset, encoder) pair. The four default
# encoders on both datasets took 34 min on a 2-core CPU with it (see
# docs/benchmarks.md).
DEFAULT_BUDGET = {"trials": 4, "seeds": 2, "max_epochs": 10}


def reproduce(args: argparse.Namespace, protocol: str) -> int:
    """Run ``protocol`` on the suite of its published results and print the
    comparison; return the exit status (1 when a study failed or nothing ran)."""
    from bench.cli import _data_sources, _dataset_ids
    from bench.config import load_preset
    from bench.pipeline import RunOptions, run_suite
    from bench.reproduce import compare, load_published, our_results, render_markdown
    from bench.tracking import local_tracking_uri
    from tasks import load_suite

    budget = {"trials": args.trials, "seeds": args.seeds, "max_epochs": args.max_epochs}
    budget_options = [
        f"--{key.replace('_', '-')}"
        for key, value in budget.items()
        if value is not None
    ]
    if args.full and budget_options:
        named = ", ".join(budget_options)
        raise ValueError(
            f"--full uses the preset's own budget, so {named} would be ignored; "
            "give either --full or the budget options."
        )
    preset = load_preset(protocol)
    published = load_published(preset.name)
    out = args.out or args.results / "reports" / f"reproduce-{preset.name}.md"
    notes = _edited_copy_notes(protocol, preset)
    for note in notes:
        logger.warning("%s", note)
    if not args.full:
        chosen = {
            key: DEFAULT_BUDGET[key] if value is None else value
            for key, value in budget.items()
        }
        preset = preset.with_budget(
            n_trials=chosen["trials"],
            n_seeds=chosen["seeds"],
            max_epochs=chosen["max_epochs"],
        )
    suite = load_suite(published.suite)
    encoders = _split(args.encoders) or list(suite.encoders) or ["none"]
    datasets = _dataset_ids(args.datasets, suite)
    tracking_uri = (
        args.tracking_uri
        or os.environ.get("MLFLOW_TRACKING_URI")
        or local_tracking_uri(args.results.resolve())
    )
    options = RunOptions(
        results=args.results,
        sources=_data_sources(args),
        encoders=encoders,
        dataset_ids=datasets,
        tracking_uri=tracking_uri,
        device=args.device,
        verbosity=args.verbose,
    )
    summary = run_suite(suite, preset, options)
    for pair, error in summary.failed.items():
        logger.error("Study %s failed: %s", pair, error)

    ours = our_results(
        tracking_uri, suite.name, published.metric, preset.study_fingerprint()
    )
    rows = compare(published, ours, encoders, datasets)
    budget = (
        f"Budget: {preset.n_trials} TPE trials, {preset.n_seeds} final seeds, at "
        f"most {preset.max_epochs} epochs per run (the published numbers use "
        "the full protocol)."
    )
    markdown = render_markdown(rows, published, budget, notes)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown)
    sys.stdout.write(markdown)
    logger.info("Comparison written to %s", out)
    statuses = [o.status for o in summary.outcomes.values()]
    complete = statuses.count("complete")
    return 0 if complete and not summary.failed else 1


def _edited_copy_notes(protocol: str, preset: Preset) -> list[str]:
    """Return a warning when a preset file changes the built-in preset it names.

    The published numbers belong to the built-in protocol, so a copy with
    other values that keeps its name would be compared with the wrong numbers.
    """
    from bench.config import builtin_presets, load_preset

    if protocol in builtin_presets() or preset.name not in builtin_presets():
        return []
    builtin = load_preset(preset.name)
    if builtin.study_fingerprint() == preset.study_fingerprint():
        return []
    return [
        f"the preset file {protocol} is named {preset.name} but changes what a "
        f"trial computes (fingerprint {preset.study_fingerprint()}, built-in "
        f"{builtin.study_fingerprint()}). The published numbers belong to the "
        "built-in protocol, so the differences below also measure those changes."
    ]


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]
