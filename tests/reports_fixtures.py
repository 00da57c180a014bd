"""Real MLflow SQLite stores laid out as the benchmark logs them, for report tests.

`StoreBuilder` logs through `MlflowClient`: a parent run per study (tagged
``phase=study``) with ``data.json``, a trial child run, and final-seed child
runs (tagged ``phase=final``) with their metrics, plus runs a report must
ignore: a failed final run and one from an older best configuration.
`bulk_final_runs` inserts thousands of runs in one transaction for the paging
test, because the client took about 30 ms per run on SQLite (MLflow 3.17, two
cores).
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from reports import Leaderboard, build_report

SPLIT_SIZES = {"train": 640, "val": 160, "test": 200}

# The main store: (dataset, OpenML id, RMSE scale) x encoder factor x seed.
MAIN_DATASETS = [
    ("alpha", 1, 10.0),
    ("beta", 2, 1.0),
    ("gamma", 3, 100.0),
    ("delta", 4, 5.0),
]
MAIN_FACTORS = {"none": 1.0, "ple-quantile": 0.9, "soft-bins": 0.95}
MAIN_FAILED = ("gamma", "ple-quantile")
MAIN_SEEDS = 3


@dataclass
class Study:
    """One (dataset, encoder) study to log, with its final test RMSE per seed."""

    dataset: str
    openml_id: int
    encoder: str
    rmse: list[float]
    status: str | None = "complete"
    reason: str = ""
    weights: bool = False
    data_json: bool = True
    wall_time_s: float | None = None
    preset: str = "default"
    preset_fingerprint: str = "0123abcd"
    normalized_score: str | None = None


_template: Path | None = None


def empty_store(factory: pytest.TempPathFactory, folder: Path) -> str:
    """Copy an empty, migrated MLflow SQLite store into ``folder``; return its URI.

    MLflow 3.17 took 2 to 4 seconds to create and migrate a new database on a
    2-core machine, so the session creates one template and every store
    starts as a copy of it.
    """
    global _template
    if _template is None or not _template.exists():
        path = factory.mktemp("mlflow-template") / "mlflow.db"
        MlflowClient(f"sqlite:///{path}").search_experiments()
        _template = path
    target = folder / "mlflow.db"
    source = sqlite3.connect(_template)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        source.close()
        copy.close()
    return f"sqlite:///{target}"


class StoreBuilder:
    """Log studies into a fresh SQLite tracking store under ``folder``."""

    def __init__(
        self, factory: pytest.TempPathFactory, folder: Path, experiment: str = "suite"
    ) -> None:
        self.folder = folder
        self.uri = empty_store(factory, folder)
        self.experiment = experiment
        self.client = MlflowClient(self.uri)
        self.experiment_id = self.client.create_experiment(
            experiment, artifact_location=(folder / "artifacts").as_uri()
        )

    def add(self, study: Study) -> str:
        """Log one study and its runs; return the parent run id."""
        key = f"key-{study.openml_id}-{study.encoder}"
        tags = {
            "phase": "study",
            "study_key": key,
            "dataset": study.dataset,
            "openml_id": str(study.openml_id),
            "encoder": study.encoder,
            "best_params_hash": "best",
            "preset": study.preset,
            "preset_fingerprint": study.preset_fingerprint,
        }
        if study.status is not None:
            tags["status"] = study.status
        if study.reason:
            tags["status_reason"] = study.reason
        parent = self.client.create_run(
            self.experiment_id, run_name=f"{study.dataset}/{study.encoder}", tags=tags
        ).info.run_id
        timing = {"tune_time_s": 12.0, "n_trials_done": 2.0}
        if study.wall_time_s is not None:
            timing["tune_wall_time_s"] = study.wall_time_s
        self._metrics(parent, timing)
        if study.data_json:
            self._json(parent, {"split_sizes": SPLIT_SIZES}, "data.json")
        if study.normalized_score is not None:
            record = {"name": study.preset, "normalized_score": study.normalized_score}
            self._json(parent, record, "preset.json")
        self._child(parent, "trial 0", {"phase": "trial", "study_key": key}, {})

        identity = {
            "phase": "final",
            "study_key": key,
            "dataset": study.dataset,
            "openml_id": str(study.openml_id),
            "encoder": study.encoder,
        }
        for seed, rmse in enumerate(study.rmse):
            run = self._child(
                parent,
                f"seed {seed}",
                {**identity, "seed": str(seed), "params_hash": "best"},
                final_metrics(rmse, seed),
            )
            if study.weights:
                self._json(
                    run, weight_grid(study.encoder, seed), "encoder_weights.json"
                )
        if study.rmse:
            # Runs the report must leave out: an older configuration and a crash.
            self._child(
                parent,
                "stale",
                {**identity, "seed": "0", "params_hash": "old"},
                final_metrics(999.0, 0),
            )
            failed = self._child(
                parent, "crashed", {**identity, "seed": "0", "params_hash": "best"}, {}
            )
            self.client.set_terminated(failed, "FAILED")
        if study.status in ("complete", "failed"):
            self.client.set_terminated(parent, "FINISHED")
        return parent

    def _child(
        self, parent: str, name: str, tags: dict[str, str], metrics: dict[str, float]
    ) -> str:
        run = self.client.create_run(
            self.experiment_id,
            tags={**tags, MLFLOW_PARENT_RUN_ID: parent, MLFLOW_RUN_NAME: name},
        ).info.run_id
        if metrics:
            self._metrics(run, metrics)
        self.client.set_terminated(run, "FINISHED")
        return run

    def _metrics(self, run_id: str, metrics: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
        self.client.log_batch(run_id, metrics=batch)

    def _json(self, run_id: str, data: object, name: str) -> None:
        folder = self.folder / "staging" / run_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(data))
        self.client.log_artifact(run_id, str(folder / name))


def final_metrics(rmse: float, seed: int) -> dict[str, float]:
    """Return the metrics of a final-seed run with the given test RMSE."""
    return {
        "test_rmse": rmse,
        "test_mae": 0.8 * rmse,
        "test_r2": 0.5,
        "val_rmse": rmse * 1.01,
        "train_time_s": 6.4 + seed,
        "predict_time_s": 0.02,
        "n_params": 1000.0,
    }


def weight_grid(encoder: str, seed: int, n_bins: int = 4) -> dict[str, object]:
    """Return an ``encoder_weights.json`` body: softmax weights over bins."""
    values = np.linspace(-3.0, 3.0, 200)
    centres = np.linspace(-2.0, 2.0, n_bins)
    logits = -((values[:, None] - centres[None, :]) ** 2) / 0.5
    weights = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return {
        "feature": "x0",
        "feature_index": 0,
        "values": values.tolist(),
        "weights": weights.tolist(),
        "encoder": encoder,
        "seed": seed,
    }


def bulk_final_runs(
    uri: str,
    experiment_id: str,
    studies: list[tuple[str, int, str]],
    n_seeds: int,
    rmse: Callable[[int, str, int], float] | None = None,
) -> int:
    """Insert parents and ``n_seeds`` final runs per study in one transaction.

    Args:
        studies: (dataset, openml_id, encoder) of each study.
        rmse: Test RMSE of (openml_id, encoder, seed); by default a value that
            grows with the id, the seed and the length of the encoder's name.

    Returns:
        The number of final runs inserted.

    NOTE: this writes rows into the tables of MLflow's own ORM models
    (``mlflow.store.tracking.dbmodels``), which are internal API of MLflow 3
    and may need updating on a major upgrade. The report reads them back with
    the public client, like any other runs.
    """
    from mlflow.store.tracking.dbmodels.models import (
        SqlLatestMetric,
        SqlMetric,
        SqlRun,
        SqlTag,
    )
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(uri, None)
    location = store.get_experiment(experiment_id).artifact_location
    now = int(time.time() * 1000)
    runs: list[dict] = []
    tags: list[dict] = []
    metrics: list[dict] = []

    def add_run(run_tags: dict[str, str], run_metrics: dict[str, float]) -> str:
        run_id = uuid.uuid4().hex
        runs.append(
            {
                "run_uuid": run_id,
                "name": run_tags.get(MLFLOW_RUN_NAME, run_id[:8]),
                "artifact_uri": f"{location}/{run_id}/artifacts",
                "experiment_id": int(experiment_id),
                "source_type": "UNKNOWN",
                "source_name": "",
                "entry_point_name": "",
                "user_id": "test",
                "status": "FINISHED",
                "start_time": now,
                "end_time": now,
                "source_version": "",
                "lifecycle_stage": "active",
            }
        )
        tags.extend(
            {"run_uuid": run_id, "key": k, "value": v} for k, v in run_tags.items()
        )
        metrics.extend(
            {
                "run_uuid": run_id,
                "key": k,
                "value": v,
                "timestamp": now,
                "step": 0,
                "is_nan": False,
            }
            for k, v in run_metrics.items()
        )
        return run_id

    count = 0
    for dataset, openml_id, encoder in studies:
        key = f"key-{openml_id}-{encoder}"
        identity = {"dataset": dataset, "openml_id": str(openml_id), "encoder": encoder}
        parent = add_run(
            {
                **identity,
                "phase": "study",
                "study_key": key,
                "status": "complete",
                "best_params_hash": "best",
            },
            {"tune_time_s": 10.0, "n_trials_done": 2.0},
        )
        for seed in range(n_seeds):
            if rmse is None:
                value = 1.0 + 0.1 * openml_id + 0.01 * seed + 0.05 * len(encoder)
            else:
                value = rmse(openml_id, encoder, seed)
            add_run(
                {
                    **identity,
                    "phase": "final",
                    "study_key": key,
                    "params_hash": "best",
                    "seed": str(seed),
                    MLFLOW_PARENT_RUN_ID: parent,
                    MLFLOW_RUN_NAME: f"seed {seed}",
                },
                final_metrics(value, seed),
            )
            count += 1
    with store.ManagedSessionMaker(read_only=False) as session:
        session.execute(SqlRun.__table__.insert(), runs)
        session.execute(SqlTag.__table__.insert(), tags)
        session.execute(SqlMetric.__table__.insert(), metrics)
        session.execute(SqlLatestMetric.__table__.insert(), metrics)
    return count


@dataclass
class BuiltReport:
    """A store, the report built from it, and where the files went."""

    store: StoreBuilder
    out_dir: Path
    markdown: Path
    board: Leaderboard


_main: BuiltReport | None = None


def main_rmse(scale: float, encoder: str, seed: int) -> float:
    """Return the test RMSE the main store logs for one seed."""
    return scale * MAIN_FACTORS[encoder] * (1.0 + 0.01 * seed)


def main_report(factory: pytest.TempPathFactory) -> BuiltReport:
    """Build the main store and its report once per session.

    Four datasets, three encoders and three seeds, where ``soft-bins`` logs bin
    weights and the study of ``ple-quantile`` on ``gamma`` failed.
    """
    global _main
    if _main is not None:
        return _main
    folder = factory.mktemp("main-store")
    store = StoreBuilder(factory, folder)
    for dataset, openml_id, scale in MAIN_DATASETS:
        for encoder in MAIN_FACTORS:
            if (dataset, encoder) == MAIN_FAILED:
                store.add(
                    Study(
                        dataset,
                        openml_id,
                        encoder,
                        [],
                        status="failed",
                        reason="no trial completed",
                    )
                )
                continue
            rmse = [main_rmse(scale, encoder, seed) for seed in range(MAIN_SEEDS)]
            store.add(
                Study(dataset, openml_id, encoder, rmse, weights=encoder == "soft-bins")
            )
    out_dir = folder / "report"
    markdown, board = build_report(store.uri, store.experiment, out_dir)
    _main = BuiltReport(store, out_dir, markdown, board)
    return _main
