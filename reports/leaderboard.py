"""Assemble every table and test of a report from the rows read from MLflow.

`build_leaderboard` joins the per-dataset statistics (`reports.tables`), the
cost columns (`reports.costs`), the comparisons with the baseline and the
Friedman test (`reports.significance`) and the Elo ratings (`reports.elo`)
into one `Leaderboard`. An incomplete experiment still gets its tables, because
analyses that cannot run (no baseline, one encoder, too few complete datasets)
are skipped and named in ``notes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from reports.collect import SKIPPED_SCHEMA, Results, preset_counts
from reports.costs import median_costs, per_dataset_costs
from reports.elo import N_BOOTSTRAP, elo_table
from reports.significance import (
    ALPHA,
    FriedmanResult,
    friedman,
    welch_outcomes,
    wilcoxon_vs_baseline,
)
from reports.tables import (
    add_normalized_scores,
    add_ranks,
    average_ranks,
    missing_cells,
    summarize_seeds,
)

BASELINE = "none"
# Column rescaled by each choice of ``normalized_score``, and whether larger
# values are better. "r2" is the definition of Grinsztajn et al. (2022).
NORMALIZED_SCORE_BASES: dict[str, tuple[str, bool]] = {
    "rmse": ("rmse_mean", False),
    "r2": ("r2_mean", True),
}


@dataclass
class Leaderboard:
    """The tables of one report.

    Attributes:
        per_dataset: One row per (dataset, encoder) with final results:
            ``rmse_mean`` and ``rmse_std`` (target units), ``mae_mean``,
            ``r2_mean``, ``n_seeds``, ``rank``, ``normalized_score``, the cost
            columns, ``status`` of the study, and ``p_welch`` and ``outcome``
            against the baseline.
        overall: One row per encoder: ``average_rank``, ``normalized_score``,
            ``n_datasets``, ``elo`` with ``elo_low`` and ``elo_high``,
            ``wins``, ``ties``, ``losses`` and ``untested`` against the
            baseline, the Wilcoxon columns, and the median cost columns.
        missing: (dataset, encoder) cells of the grid without final results.
        friedman: The Friedman test with the critical difference, or None.
        n_bootstrap: Resamples behind the Elo intervals.
        notes: Analyses skipped and runs left out, as sentences.
        skipped: Datasets the benchmark could not use, with ``openml_id``,
            ``dataset`` and ``reason``; they have no row in the other tables.
        presets: (preset name, fingerprint, number of studies) of the
            studies in the report, most used first.
    """

    per_dataset: pl.DataFrame
    overall: pl.DataFrame
    missing: pl.DataFrame
    friedman: FriedmanResult | None
    baseline: str
    alpha: float
    n_final_runs: int
    n_bootstrap: int = N_BOOTSTRAP
    notes: list[str] = field(default_factory=list)
    skipped: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema=SKIPPED_SCHEMA)
    )
    presets: list[tuple[str, str, int]] = field(default_factory=list)


def build_leaderboard(
    results: Results,
    split_sizes: pl.DataFrame | None = None,
    *,
    baseline: str = BASELINE,
    alpha: float = ALPHA,
    n_bootstrap: int = N_BOOTSTRAP,
    normalized_score: str = "rmse",
) -> Leaderboard:
    """Aggregate final-seed results into the leaderboard tables.

    Args:
        results: Studies and final-seed rows from `reports.collect`.
        split_sizes: Row counts per dataset (``openml_id``, ``n_train``,
            ``n_val``, ``n_test``); without them the per-row times are blank.
        baseline: Encoder that the others are tested against.
        alpha: Significance level of every test.
        n_bootstrap: Resamples for the Elo interval.
        normalized_score: Metric the normalized score rescales: ``rmse``
            (mean test RMSE) or ``r2`` (mean test R², as Grinsztajn et al.).

    Raises:
        ValueError: if ``normalized_score`` is not a key of
            `NORMALIZED_SCORE_BASES`.
    """
    if normalized_score not in NORMALIZED_SCORE_BASES:
        raise ValueError(
            f"normalized_score={normalized_score!r} is invalid; use one of "
            f"{', '.join(NORMALIZED_SCORE_BASES)}."
        )
    value, higher_is_better = NORMALIZED_SCORE_BASES[normalized_score]
    notes = list(results.notes)
    if normalized_score != "rmse":
        notes.append(
            "The normalized score rescales the mean test R² per dataset (best "
            "encoder 1, median encoder 0, clipped at 0), as Grinsztajn et al. "
            "(2022) do."
        )
    if split_sizes is None:
        split_sizes = pl.DataFrame(
            schema={c: pl.Int64 for c in ("openml_id", "n_train", "n_val", "n_test")}
        )
    finals = results.finals
    per = add_normalized_scores(
        add_ranks(summarize_seeds(finals)), value, higher_is_better
    )
    per = (
        per.join(
            per_dataset_costs(finals, results.studies, split_sizes),
            on=["openml_id", "encoder"],
            how="left",
        )
        .join(
            results.studies.select("openml_id", "encoder", "status"),
            on=["openml_id", "encoder"],
            how="left",
        )
        .join(
            welch_outcomes(finals, baseline, alpha),
            on=["openml_id", "encoder"],
            how="left",
        )
        .sort("openml_id", "rank", "encoder")
    )

    encoders = sorted(per["encoder"].unique().to_list())
    has_baseline = baseline in encoders
    if not encoders:
        notes.append("No finished final runs: there is nothing to rank.")
    elif not has_baseline:
        notes.append(
            f"The baseline encoder {baseline!r} has no results, so wins, ties, "
            "losses and the Wilcoxon tests are left out and Elo ratings are "
            "centred on a mean of 1000."
        )
    overall = _overall(per, encoders, baseline, n_bootstrap)

    result = friedman(per, alpha) if encoders else None
    if encoders and result is None:
        notes.append(
            "The Friedman test and the critical-difference diagram need at least "
            "two encoders with results on at least two common datasets."
        )
    elif result is not None and result.statistic is None:
        notes.append(
            "The Friedman test needs at least three encoders; the "
            "critical-difference diagram still compares the two."
        )
    return Leaderboard(
        per_dataset=per,
        overall=overall,
        missing=missing_cells(results, per),
        friedman=result,
        baseline=baseline,
        alpha=alpha,
        n_final_runs=finals.height,
        n_bootstrap=n_bootstrap,
        notes=notes,
        skipped=results.skipped,
        presets=preset_counts(results.studies),
    )


def _overall(
    per: pl.DataFrame, encoders: list[str], baseline: str, n_bootstrap: int
) -> pl.DataFrame:
    counts = (
        per.filter(pl.col("outcome").is_not_null())
        .group_by("encoder")
        .agg(
            wins=(pl.col("outcome") == "win").sum(),
            ties=(pl.col("outcome") == "tie").sum(),
            losses=(pl.col("outcome") == "loss").sum(),
            untested=(pl.col("outcome") == "untested").sum(),
        )
    )
    overall = (
        average_ranks(per)
        .join(median_costs(per), on="encoder", how="left")
        .join(counts, on="encoder", how="left")
        .join(wilcoxon_vs_baseline(per, baseline), on="encoder", how="left")
    )
    if encoders:
        elo = elo_table(per, baseline, n_bootstrap=n_bootstrap)
        overall = overall.join(elo, on="encoder", how="left")
    else:
        overall = overall.with_columns(
            pl.lit(None, pl.Float64).alias(name)
            for name in ("elo", "elo_low", "elo_high")
        )
    return overall.sort("average_rank", "encoder")
