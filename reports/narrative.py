"""Sentences of a report: summary, significance results and method notes.

Markdown and HTML both print these lines unchanged, so the two formats carry
the same text. Each line is one paragraph or list item of plain text.
"""

from __future__ import annotations

from reports.elo import L2_PENALTY
from reports.leaderboard import Leaderboard


def summary_lines(board: Leaderboard) -> list[str]:
    """Return the counts of the report: datasets, encoders, runs, gaps."""
    per = board.per_dataset
    n_datasets = per["openml_id"].n_unique()
    n_encoders = per["encoder"].n_unique()
    grid = per.height + board.missing.height
    lines = [
        f"{n_datasets} datasets, {n_encoders} encoders, "
        f"{board.n_final_runs} final runs counted.",
    ]
    if board.missing.height:
        statuses = board.missing["status"].value_counts().sort("status")
        detail = ", ".join(f"{n} {s}" for s, n in statuses.iter_rows())
        lines.append(
            f"Incomplete: {board.missing.height} of {grid} (dataset, encoder) "
            f"cells are missing ({detail}); they are marked in the tables and "
            "left out of every statistic."
        )
    if board.skipped.height:
        lines.append(
            f"Skipped: {board.skipped.height} datasets could not be used and "
            "have no results; the section Skipped datasets gives the reasons."
        )
    return lines


def significance_lines(board: Leaderboard) -> list[str]:
    """Return the Friedman result and how to read the diagram."""
    result = board.friedman
    if result is None:
        return ["No test across datasets could run (see the notes)."]
    n_all = board.per_dataset["openml_id"].n_unique()
    lines = []
    used = (
        f"{len(result.datasets)} datasets where all {len(result.encoders)} "
        "encoders have results"
    )
    if len(result.datasets) < n_all:
        left_out = n_all - len(result.datasets)
        used += f" ({left_out} {_plural(left_out, 'dataset')} with gaps left out)"
    if result.statistic is not None and result.p_value is not None:
        verdict = "differ" if result.p_value < result.alpha else "do not differ"
        lines.append(
            f"Friedman test on {used}: chi-square = {result.statistic:.3f}, "
            f"p = {result.p_value:.3g}; at alpha = {result.alpha} the encoders' "
            f"ranks {verdict} significantly."
        )
    else:
        lines.append(f"Average ranks on {used}.")
    lines.append(
        f"Nemenyi critical difference at alpha = {result.alpha}: "
        f"{result.critical_difference:.3f} ranks. In the diagram, encoders "
        "joined by a bar are not significantly different."
    )
    return lines


def method_lines(board: Leaderboard) -> list[str]:
    """Return one line per statistic, saying how it was computed."""
    base = board.baseline
    alpha = board.alpha
    return [
        *_preset_lines(board),
        "Test RMSE, MAE and R² are in the target's original units, mean ± sample "
        "standard deviation over final seeds of the study's best configuration "
        "(the mean alone for one seed).",
        "Rank: 1 is the lowest mean test RMSE on a dataset; tied means share the "
        "average rank. Average rank is over the datasets where an encoder has "
        "results.",
        "Normalized score (Grinsztajn et al., 2022): per dataset 1 for the best "
        "encoder and 0 at the median encoder, negatives clipped to 0, averaged "
        "over datasets.",
        f"W/T/L vs {base}: per dataset, Welch's two-sided t-test on the per-seed "
        f"test RMSE at alpha = {alpha}. Seeds share the split, or take the "
        "resampled splits in turn when the preset draws several, but nothing "
        "else pairs them, so the samples are treated as independent. A dataset "
        "with fewer than two seeds on either side is untested.",
        f"Wilcoxon p (Holm): signed-rank test of log(RMSE / RMSE of {base}) over "
        "the shared datasets, Holm-corrected over all encoders; n is the number "
        "of shared datasets.",
        "Elo (as in TabArena): Bradley-Terry fit to pairwise battles, one per "
        "dataset and pair of encoders, where the lower mean RMSE wins and equal "
        f"means draw. An L2 penalty of {L2_PENALTY} on the log-odds strengths "
        "keeps an encoder that wins every battle finite. Ratings are shifted so "
        f"that {base} is 1000 (the mean is 1000 without it). The interval is the "
        f"2.5 and 97.5 percentiles over {board.n_bootstrap} bootstrap resamples of the "
        "datasets.",
        "Friedman test with Nemenyi critical difference (Demšar, 2006) on the "
        "datasets where every encoder has results.",
        "Costs are medians over datasets: tuning time (seconds of wall-clock "
        "time where the study logs tune_wall_time_s, else the sum of its trials' "
        "training times), finished trials, parameters, and training and "
        "prediction time per 1,000 training or test rows.",
    ]


def _preset_lines(board: Leaderboard) -> list[str]:
    """Return the line naming the presets of the studies, if they are known."""
    if all(name == "?" for name, _, _ in board.presets):
        return []
    parts = [
        f"{name} (fingerprint {fingerprint}, {n} {'study' if n == 1 else 'studies'})"
        for name, fingerprint, n in board.presets
    ]
    return [f"Preset: {'; '.join(parts)}."]


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"
