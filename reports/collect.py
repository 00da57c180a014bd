"""Read study and final-seed runs of one experiment into polars tables.

The tag names are the benchmark's MLflow conventions. Parent runs carry the
tags ``phase=study``, ``dataset``, ``openml_id``, ``encoder``, ``status`` and
``best_params_hash``. Final-seed runs carry the tags ``phase=final``, ``seed``,
``study_key`` and ``params_hash``, and the metrics ``test_rmse``, ``test_mae``
and ``test_r2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

PAGE_SIZE = 1000

FINAL_METRICS = (
    "test_rmse",
    "test_mae",
    "test_r2",
    "train_time_s",
    "predict_time_s",
    "n_params",
)


@dataclass
class Results:
    """Rows read from MLflow.

    Attributes:
        studies: One row per (dataset, encoder) parent run.
        finals: One row per finished final-seed run whose configuration is the
            study's current best (older configurations are left out).
    """

    studies: pl.DataFrame
    finals: pl.DataFrame


def search_all(
    client: MlflowClient, experiment_id: str, filter_string: str
) -> list[Run]:
    """Return every matching run, following MLflow's result pages to the end."""
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string, max_results=PAGE_SIZE, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def collect_results(client: MlflowClient, experiment_id: str) -> Results:
    """Read the studies and their current final-seed runs of one experiment."""
    parents = search_all(client, experiment_id, "tags.phase = 'study'")
    studies = pl.DataFrame(
        [
            {
                "study_key": r.data.tags.get("study_key", ""),
                "dataset": r.data.tags.get("dataset", ""),
                "openml_id": int(r.data.tags.get("openml_id", -1)),
                "encoder": r.data.tags.get("encoder", ""),
                "status": r.data.tags.get("status", "running"),
                "status_reason": r.data.tags.get("status_reason", ""),
                "best_params_hash": r.data.tags.get("best_params_hash", ""),
                "tune_time_s": r.data.metrics.get("tune_time_s"),
                "n_trials_done": r.data.metrics.get("n_trials_done"),
            }
            for r in parents
        ],
        schema={
            "study_key": pl.String,
            "dataset": pl.String,
            "openml_id": pl.Int64,
            "encoder": pl.String,
            "status": pl.String,
            "status_reason": pl.String,
            "best_params_hash": pl.String,
            "tune_time_s": pl.Float64,
            "n_trials_done": pl.Float64,
        },
    )

    finals_raw = search_all(
        client,
        experiment_id,
        "tags.phase = 'final' and attributes.status = 'FINISHED'",
    )
    schema = {
        "study_key": pl.String,
        "params_hash": pl.String,
        "seed": pl.Int64,
        "run_id": pl.String,
        **{m: pl.Float64 for m in FINAL_METRICS},
    }
    finals = pl.DataFrame(
        [
            {
                "study_key": r.data.tags.get("study_key", ""),
                "params_hash": r.data.tags.get("params_hash", ""),
                "seed": int(r.data.tags.get("seed", -1)),
                "run_id": r.info.run_id,
                **{m: r.data.metrics.get(m) for m in FINAL_METRICS},
            }
            for r in finals_raw
        ],
        schema=schema,
    )
    current = (
        finals.join(
            studies.select(
                "study_key", "dataset", "openml_id", "encoder", "best_params_hash"
            ),
            on="study_key",
        )
        .filter(pl.col("params_hash") == pl.col("best_params_hash"))
        .unique(subset=["study_key", "seed"], keep="first", maintain_order=True)
        .drop("best_params_hash")
    )
    return Results(studies=studies, finals=current)
