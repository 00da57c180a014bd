"""A store with more final runs than one page of MLflow's search results."""

from __future__ import annotations

import polars as pl
from mlflow.tracking import MlflowClient
from reports_fixtures import bulk_final_runs, empty_store

from reports import build_report, collect

DATASETS = [("alpha", 1), ("beta", 2), ("gamma", 3), ("delta", 4)]
ENCODERS = ["none", "ple-quantile", "soft-bins"]
N_SEEDS = 92


def test_every_page_reaches_leaderboard(tmp_path_factory, tmp_path):
    uri = empty_store(tmp_path_factory, tmp_path)
    client = MlflowClient(uri)
    experiment_id = client.create_experiment(
        "suite", artifact_location=(tmp_path / "artifacts").as_uri()
    )
    studies = [(d, i, e) for d, i in DATASETS for e in ENCODERS]
    inserted = bulk_final_runs(uri, experiment_id, studies, N_SEEDS)
    assert inserted == len(studies) * N_SEEDS
    assert inserted > collect.PAGE_SIZE

    _, board = build_report(uri, "suite", tmp_path / "out")

    assert board.n_final_runs == inserted
    assert board.per_dataset.height == len(studies)
    assert board.per_dataset["n_seeds"].to_list() == [N_SEEDS] * len(studies)
    assert board.missing.height == 0
    raw = pl.read_parquet(tmp_path / "out" / "results.parquet")
    assert raw.height == inserted
    assert raw["run_id"].n_unique() == inserted
    assert sorted(set(raw["seed"])) == list(range(N_SEEDS))
