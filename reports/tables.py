"""Per-dataset tables: mean ± std over seeds, ranks, normalized scores, gaps.

Every statistic here is computed per dataset over the encoders that have final
results on it. Rank 1 is the lowest mean test RMSE, and tied means share the
average rank. The normalized score follows Grinsztajn et al. (2022, "Why do
tree-based models still outperform deep learning on tabular data?"): on each
dataset the best encoder scores 1, the median encoder scores 0, and scores
below 0 are clipped to 0. Their figures rescale the test R² of regression
tasks; by default this report rescales the mean test RMSE instead, and
``value="r2_mean", higher_is_better=True`` gives their definition. A missing
cell is a (dataset, encoder) pair of the experiment's grid without any counted
final run.
"""

from __future__ import annotations

import polars as pl

from reports.collect import Results


def summarize_seeds(finals: pl.DataFrame) -> pl.DataFrame:
    """Aggregate final-seed rows into one row per (dataset, encoder).

    Returns:
        Columns ``openml_id``, ``dataset``, ``encoder``, ``rmse_mean``,
        ``rmse_std`` (sample standard deviation, 0 for one seed), ``mae_mean``,
        ``r2_mean``, ``n_seeds`` and ``n_params`` (mean over seeds).
    """
    return finals.group_by("openml_id", "dataset", "encoder").agg(
        rmse_mean=pl.col("test_rmse").mean(),
        rmse_std=pl.col("test_rmse").std().fill_null(0.0),
        mae_mean=pl.col("test_mae").mean(),
        r2_mean=pl.col("test_r2").mean(),
        n_seeds=pl.len(),
        n_params=pl.col("n_params").mean(),
    )


def add_ranks(per_dataset: pl.DataFrame, value: str = "rmse_mean") -> pl.DataFrame:
    """Add ``rank`` per dataset: 1 for the lowest ``value``, ties averaged."""
    return per_dataset.with_columns(
        rank=pl.col(value).rank(method="average").over("openml_id")
    )


def add_normalized_scores(
    per_dataset: pl.DataFrame, value: str = "rmse_mean", higher_is_better: bool = False
) -> pl.DataFrame:
    """Add ``normalized_score``: 1 for the best, 0 at the median, clipped at 0.

    The score is ``(median - x) / (median - best)`` with the median over the
    encoders on that dataset (the mean of the middle two for an even count).
    When the best equals the median (one encoder, or ties), encoders at the
    best value score 1 and the others 0.

    Args:
        value: Column to rescale, e.g. ``rmse_mean`` or ``r2_mean``.
        higher_is_better: True for a score such as R², where the best value
            is the largest; the column is then negated before rescaling.
    """
    x = -pl.col(value) if higher_is_better else pl.col(value)
    median = x.median().over("openml_id")
    best = x.min().over("openml_id")
    spread = median - best
    score = (
        pl.when(spread > 0)
        .then(((median - x) / spread).clip(lower_bound=0.0))
        .when(x == best)
        .then(1.0)
        .otherwise(0.0)
    )
    return per_dataset.with_columns(normalized_score=score)


def average_ranks(per_dataset: pl.DataFrame) -> pl.DataFrame:
    """Return ``average_rank``, mean ``normalized_score`` and ``n_datasets``.

    Each encoder is averaged over the datasets where it has results, so an
    encoder with missing cells is compared on fewer datasets than the others.
    """
    return per_dataset.group_by("encoder").agg(
        average_rank=pl.col("rank").mean(),
        normalized_score=pl.col("normalized_score").mean(),
        n_datasets=pl.len(),
        n_seeds=pl.col("n_seeds").sum(),
    )


def missing_cells(results: Results, per_dataset: pl.DataFrame) -> pl.DataFrame:
    """Return every (dataset, encoder) pair of the grid without final results.

    The grid crosses every dataset and every encoder that appears in a study
    or a final run. ``status`` is the study's status, or ``no study`` when the
    pair never started.
    """
    names = pl.concat(
        [
            results.studies.select("openml_id", "dataset"),
            per_dataset.select("openml_id", "dataset"),
        ]
    ).unique(subset="openml_id", keep="first")
    encoders = pl.concat(
        [results.studies.select("encoder"), per_dataset.select("encoder")]
    ).unique()
    grid = names.join(encoders, how="cross")
    return (
        grid.join(
            per_dataset.select("openml_id", "encoder"),
            on=["openml_id", "encoder"],
            how="anti",
        )
        .join(
            results.studies.select("openml_id", "encoder", "status", "status_reason"),
            on=["openml_id", "encoder"],
            how="left",
        )
        .with_columns(
            pl.col("status").fill_null("no study"),
            pl.col("status_reason").fill_null(""),
        )
        .sort("openml_id", "encoder")
    )
