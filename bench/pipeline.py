"""A whole benchmark run: every (dataset, encoder) pair of a suite, then a report.

Databases (the MLflow store and the Optuna storage) are created here, once,
before any study starts, because two processes creating the same SQLite file at
the same moment can crash.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import optuna
import polars as pl
import sqlalchemy
import torch

from bench.config import Preset
from bench.study import PairOutcome, PairSpec, StudyRunner
from bench.tracking import (
    Tracker,
    check_reachable,
    code_version,
    local_tracking_uri,
)
from bench.training import DeviceData, Part
from encoders import get_encoder
from reports import build_report
from runners import InProcessRunner, Runner
from tasks import (
    DatasetError,
    DataSources,
    Preprocessor,
    Suite,
    SuiteEntry,
    load_dataset,
    make_split,
)
from tasks.duplicates import drop_duplicate_rows, rows_shared
from tasks.splits import SplitError

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
    """Outcome of a run: status per pair, skipped datasets, report path."""

    outcomes: dict[str, PairOutcome] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    report: Path | None = None


def resolve_device(name: str) -> torch.device:
    """Map ``auto`` to CUDA when available, else CPU; pass others through."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine.")
    return device


def optuna_storage(url: str) -> optuna.storages.BaseStorage:
    """Open (and create on first use) the Optuna storage at ``url``.

    SQLite and other RDB URLs get heartbeats, so a trial left RUNNING by a dead
    process is marked failed and retried once its heartbeat is two minutes old.
    ``journal:PATH`` selects a journal file.
    """
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(
            JournalFileBackend(url[len("journal:") :])
        )
    engine: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine = {"connect_args": {"timeout": 60}}
    elif url.startswith("postgresql"):
        engine = {"connect_args": {"connect_timeout": 10}}
    try:
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine,
            heartbeat_interval=30,
            grace_period=120,
            failed_trial_callback=optuna.storages.RetryFailedTrialCallback(max_retry=2),
        )
    except (sqlalchemy.exc.SQLAlchemyError, ImportError) as error:
        raise ConnectionError(
            f"Optuna storage {url} could not be opened ({type(error).__name__}: "
            f"{error}). Check that the database server runs and the URL is right, "
            "or leave --storage out to use SQLite in the results folder."
        ) from None


def run_suite(
    suite: Suite, preset: Preset, options: RunOptions, runner: Runner | None = None
) -> RunSummary:
    """Run every pair of ``suite`` under ``preset`` and build the leaderboard."""
    for name in options.encoders:
        get_encoder(name)
    device = resolve_device(options.device)

    results = options.results.resolve()
    results.mkdir(parents=True, exist_ok=True)
    tracking_uri = options.tracking_uri or local_tracking_uri(results)
    check_reachable(tracking_uri)
    tracker = Tracker(tracking_uri, artifact_root=results / "mlartifacts")
    experiment_id = tracker.experiment_id(suite.name)
    storage = optuna_storage(
        options.storage_url or f"sqlite:///{results / 'optuna.db'}"
    )

    entries = [
        e
        for e in suite.datasets
        if options.dataset_ids is None or e.openml_id in options.dataset_ids
    ]
    jobs = [PairJob(0, 0, e, name) for e in entries for name in options.encoders]
    jobs = [PairJob(i + 1, len(jobs), j.entry, j.encoder) for i, j in enumerate(jobs)]
    logger.info(
        "Suite %s: %d datasets x %d encoders = %d studies; results in %s",
        suite.name,
        len(entries),
        len(options.encoders),
        len(jobs),
        results,
    )

    summary = RunSummary()
    prepare = lru_cache(maxsize=1)(
        lambda entry: _prepare(entry, preset, options.sources, device)
    )

    def work(job: PairJob) -> PairOutcome:
        if job.entry.openml_id in summary.skipped:
            return PairOutcome("skipped", reason=summary.skipped[job.entry.openml_id])
        logger.info("[%d/%d] %s", job.index, job.total, job)
        try:
            prepared = prepare(job.entry)
        except (DatasetError, SplitError) as error:
            logger.error("Skipping dataset %d: %s", job.entry.openml_id, error)
            summary.skipped[job.entry.openml_id] = str(error)
            return PairOutcome("skipped", reason=str(error))
        spec = PairSpec(
            suite=suite.name,
            encoder=get_encoder(job.encoder),
            tags={"code_version": code_version(), "device": str(device)},
            **prepared,
        )
        return StudyRunner(spec, preset, tracker, storage, experiment_id).run()

    for result in (runner or InProcessRunner()).run(jobs, work):
        if result.error is not None:
            summary.failed[str(result.job)] = result.error
        else:
            summary.outcomes[str(result.job)] = result.value

    if options.report:
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
