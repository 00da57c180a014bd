"""Cost columns: tuning time, trials, parameters, time per 1,000 rows.

Tuning time (``tune_time_s``, seconds) and the number of finished trials come
from the parent run. Parameters and the training and prediction times come
from the final-seed runs, averaged over seeds. Times are divided by the row
count of the part they ran on (training rows for training, test rows for
prediction, from ``data.json``), then scaled to 1,000 rows, as TabArena
reports them. Across datasets, each cost is the median over the datasets where
the encoder has a value, so one large dataset does not dominate.
"""

from __future__ import annotations

import polars as pl

COST_COLUMNS = (
    "tune_time_s",
    "n_trials_done",
    "n_params",
    "train_s_per_1k_rows",
    "predict_s_per_1k_rows",
)


def per_dataset_costs(
    finals: pl.DataFrame, studies: pl.DataFrame, split_sizes: pl.DataFrame
) -> pl.DataFrame:
    """Return the cost columns for each (dataset, encoder) with final results.

    Returns:
        Columns ``openml_id``, ``encoder``, ``tune_time_s``, ``n_trials_done``,
        ``train_s_per_1k_rows`` and ``predict_s_per_1k_rows`` (seconds per
        1,000 rows, null when the row counts are unknown).
    """
    timed = finals.join(split_sizes, on="openml_id", how="left").with_columns(
        train_s_per_1k_rows=pl.col("train_time_s") / pl.col("n_train") * 1000.0,
        predict_s_per_1k_rows=pl.col("predict_time_s") / pl.col("n_test") * 1000.0,
    )
    per_pair = timed.group_by("openml_id", "encoder").agg(
        pl.col("train_s_per_1k_rows").mean(),
        pl.col("predict_s_per_1k_rows").mean(),
    )
    return per_pair.join(
        studies.select("openml_id", "encoder", "tune_time_s", "n_trials_done"),
        on=["openml_id", "encoder"],
        how="left",
    )


def median_costs(per_dataset: pl.DataFrame) -> pl.DataFrame:
    """Return the median of every cost column per encoder, over datasets."""
    return per_dataset.group_by("encoder").agg(
        pl.col(name).median() for name in COST_COLUMNS
    )
