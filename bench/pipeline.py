"""A whole benchmark run: every (dataset, encoder) pair of a suite, then a report.

Databases (the MLflow store and the Optuna storage) are created here, once,
before any worker starts, because two processes creating the same SQLite file
at the same moment can crash. The runner then starts the workers
(`bench.workers`), which share the studies.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import polars as pl
import sqlalchemy
import torch

from bench.claims import LeaseSettings
from bench.config import Preset
from bench.storage import check_storage_url, default_storage_url, open_storage
from bench.study import PairOutcome
from bench.tracking import Tracker, check_reachable, local_tracking_uri
from bench.training import DeviceData, Part
from encoders import get_encoder
from reports import build_report
from runners import InProcessRunner, Runner
from tasks import (
    DataSources,
    Preprocessor,
    Suite,
    SuiteEntry,
    load_dataset,
    make_split,
)
from tasks.duplicates import drop_duplicate_rows, rows_shared

logger = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """Everything `run_suite` needs besides the suite and the preset."""

    results: Path
    sources: DataSources
    encoders: list[str]
    dataset_ids: list[int] | None = None
    tracking_uri: str | None = None
    storage_url: str | None = None
    device: str = "auto"
    report: bool = True
    leases: LeaseSettings = field(default_factory=LeaseSettings)
    verbosity: int = 0


@dataclass(frozen=True)
class PairJob:
    """One (dataset, encoder) study of a suite."""

    index: int
    total: int
    entry: SuiteEntry
    encoder: str

    def __str__(self) -> str:
        return f"{self.entry.name} ({self.entry.openml_id}) x {self.encoder}"


@dataclass
class RunSummary:
    """Outcome of a run: status per pair, skipped datasets, report path.

    ``worker_errors`` holds, per worker index, the error of a worker that
    stopped early; the other workers carry on with its pairs.
    """

    outcomes: dict[str, PairOutcome] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    report: Path | None = None
    worker_errors: dict[int, str] = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    """Map ``auto`` to CUDA when available, else CPU; pass others through."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(
            f"--device {name} is invalid; use auto, cpu, cuda or cuda:N."
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine.")
    return device


def optuna_storage(
    url: str, leases: LeaseSettings | None = None
) -> optuna.storages.BaseStorage:
    """Open (and create on first use) the Optuna storage at ``url``.

    See `bench.storage.open_storage` for the storage kinds and heartbeats.
    """
    try:
        return open_storage(url, leases)
    except (sqlalchemy.exc.SQLAlchemyError, ImportError) as error:
        raise ConnectionError(
            f"Optuna storage {url} could not be opened ({type(error).__name__}: "
            f"{error}). Check that the database server runs and the URL is right, "
            "or leave --storage out to use a file in the results folder."
        ) from None


def run_suite(
    suite: Suite, preset: Preset, options: RunOptions, runner: Runner | None = None
) -> RunSummary:
    """Run every pair of ``suite`` under ``preset`` and build the leaderboard.

    The runner's workers share the studies; the in-process runner (the
    default) runs one worker in this process.
    """
    from bench.workers import WorkPlan, artifact_root, launch

    for name in options.encoders:
        get_encoder(name)
    runner = runner or InProcessRunner()
    if runner.same_machine:
        # Fail early here; workers elsewhere check their own device.
        resolve_device(options.device)

    results = options.results.resolve()
    results.mkdir(parents=True, exist_ok=True)
    tracking_uri = options.tracking_uri or local_tracking_uri(results)
    check_reachable(tracking_uri)
    tracker = Tracker(tracking_uri, artifact_root=artifact_root(tracking_uri, results))
    experiment_id = tracker.experiment_id(suite.name)
    storage_url = options.storage_url or default_storage_url(results, runner.workers)
    check_storage_url(storage_url, runner.workers)
    optuna_storage(storage_url, options.leases)

    entries = [
        e
        for e in suite.datasets
        if options.dataset_ids is None or e.openml_id in options.dataset_ids
    ]
    jobs = [PairJob(0, 0, e, name) for e in entries for name in options.encoders]
    jobs = [PairJob(i + 1, len(jobs), j.entry, j.encoder) for i, j in enumerate(jobs)]
    logger.info(
        "Suite %s: %d datasets x %d encoders = %d studies; results in %s; "
        "%d workers, Optuna storage %s",
        suite.name,
        len(entries),
        len(options.encoders),
        len(jobs),
        results,
        runner.workers,
        storage_url,
    )

    plan = WorkPlan(
        suite=suite,
        preset=preset,
        jobs=tuple(jobs),
        sources=options.sources,
        results=results,
        tracking_uri=tracking_uri,
        storage_url=storage_url,
        experiment_id=experiment_id,
        device=options.device,
        leases=options.leases,
        verbosity=options.verbosity,
    )
    summary = launch(plan, runner)

    # No result at all means the workers were submitted and not waited for.
    if options.report and (summary.outcomes or summary.failed or summary.worker_errors):
        summary.report, _ = build_report(
            tracking_uri, suite.name, results / "reports" / suite.name
        )
    return summary


def _prepare(
    entry: SuiteEntry, preset: Preset, sources: DataSources, device: torch.device
) -> dict[str, Any]:
    dataset = load_dataset(entry.openml_id, sources, target=entry.target)
    frame = _drop_missing_target(dataset.frame, dataset.target, entry)
    n_duplicates = 0
    if preset.deduplicate:
        frame, n_duplicates = drop_duplicate_rows(frame)
        logger.info(
            "Dataset %d: dropped %d exact duplicate rows", entry.openml_id, n_duplicates
        )
    split = make_split(
        frame.height,
        seed=preset.split_seed,
        val_fraction=preset.val_fraction,
        test_fraction=preset.test_fraction,
        train_cap=preset.train_cap,
        dataset=f"OpenML dataset {entry.openml_id} ({dataset.name})",
    )

    test_in_train = rows_shared(frame, split.train, split.test)
    if test_in_train:
        logger.warning(
            "Dataset %d: %d of %d test rows also occur in the training rows; set "
            "deduplicate = true in the preset's [split] table to drop duplicates",
            entry.openml_id,
            test_in_train,
            len(split.test),
        )

    preprocessor = Preprocessor(
        dataset.numeric,
        list(dataset.categorical),
        dataset.target,
        numeric_transform=preset.numeric_transform,
        seed=preset.split_seed,
    ).fit(frame[split.train])
    parts = [
        Part.from_arrays(preprocessor.transform(frame[idx]), device)
        for idx in (split.train, split.val, split.test)
    ]
    report = preprocessor.report
    logger.info(
        "Dataset %d (%s): %d rows, split %s, %d numeric features to the encoder, "
        "%d other inputs",
        entry.openml_id,
        dataset.name,
        frame.height,
        split.sizes(),
        parts[0].x_num.shape[1],
        parts[0].x_cat.shape[1],
    )
    return {
        "openml_id": entry.openml_id,
        "dataset": dataset.name,
        "data": DeviceData(
            *parts, y_mean=preprocessor.y_mean, y_std=preprocessor.y_std
        ),
        "test_target": frame[split.test][dataset.target].cast(pl.Float64).to_numpy(),
        "split_hash": split.hash,
        "record": {
            "target": dataset.target,
            "source": dataset.source,
            "split_seed": split.seed,
            "split_hash": split.hash,
            "split_sizes": split.sizes(),
            "duplicates_dropped": n_duplicates,
            "test_rows_in_train": test_in_train,
            "numeric_features": preprocessor.numeric_kept,
            "categorical_features": list(dataset.categorical),
            "dropped_constant": report.dropped_constant,
            "missing_counts": report.missing_counts,
            "nonfinite_counts": report.nonfinite_counts,
            "category_counts": report.categories,
            "target_mean": preprocessor.y_mean,
            "target_std": preprocessor.y_std,
        },
    }


def _drop_missing_target(
    frame: pl.DataFrame, target: str, entry: SuiteEntry
) -> pl.DataFrame:
    value = pl.col(target).cast(pl.Float64)
    keep = value.is_not_null() & value.is_finite()
    kept = frame.filter(keep)
    if kept.height < frame.height:
        logger.warning(
            "Dataset %d: dropped %d rows whose target is missing",
            entry.openml_id,
            frame.height - kept.height,
        )
    return kept
