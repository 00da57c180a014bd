"""Leaderboard tables: per-dataset mean ± std of test RMSE, ranks, average rank."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from reports.collect import Results


@dataclass
class Leaderboard:
    """The tables of one report.

    Attributes:
        per_dataset: One row per (dataset, encoder) with finished seeds:
            ``rmse_mean``, ``rmse_std`` (sample std, 0 for one seed),
            ``n_seeds``, ``rank`` (1 = lowest mean RMSE; ties share the
            average rank).
        overall: One row per encoder: ``average_rank`` over the datasets where
            it has results, and ``n_datasets``.
        missing: (dataset, encoder) studies without final results, with status.
    """

    per_dataset: pl.DataFrame
    overall: pl.DataFrame
    missing: pl.DataFrame


def build_leaderboard(results: Results) -> Leaderboard:
    """Aggregate final-seed results into the leaderboard tables."""
    per_dataset = (
        results.finals.group_by("openml_id", "dataset", "encoder")
        .agg(
            rmse_mean=pl.col("test_rmse").mean(),
            rmse_std=pl.col("test_rmse").std().fill_null(0.0),
            mae_mean=pl.col("test_mae").mean(),
            r2_mean=pl.col("test_r2").mean(),
            n_seeds=pl.len(),
        )
        .with_columns(rank=pl.col("rmse_mean").rank(method="average").over("openml_id"))
        .sort("openml_id", "rank", "encoder")
    )
    overall = (
        per_dataset.group_by("encoder")
        .agg(average_rank=pl.col("rank").mean(), n_datasets=pl.len())
        .sort("average_rank", "encoder")
    )
    have = per_dataset.select("openml_id", "encoder")
    missing = (
        results.studies.join(have, on=["openml_id", "encoder"], how="anti")
        .select("dataset", "openml_id", "encoder", "status", "status_reason")
        .sort("openml_id", "encoder")
    )
    return Leaderboard(per_dataset=per_dataset, overall=overall, missing=missing)
