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

import numpy as np
import optuna
import polars as pl
import sqlalchemy
import torch

from bench.claims import LeaseSettings
from bench.config import Preset, check_encoder_spaces
from bench.protocols import resample_splits, split_rows
from bench.storage import (
    LOCK_NAME,
    check_storage_url,
    default_storage_url,
    open_storage,
    results_lock,
)
from bench.study import PairOutcome, Resample
from bench.tracking import Tracker, check_reachable, local_tracking_uri
from bench.training import DeviceData, Part
from encoders import available_encoders, get_encoder
from reports import build_report
from runners import InProcessRunner, Runner
from tasks import (
    DataSources,
    Preprocessor,
    Suite,
    SuiteEntry,
    load_dataset,
)
from tasks.dataset import Dataset
from tasks.duplicates import drop_duplicate_rows, rows_shared
from tasks.splits import Split
from tasks.suites import invert_target_transform

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
    check_encoder_spaces(preset, available_encoders())
    if options.dataset_ids is not None:
        _check_dataset_ids(suite, options.dataset_ids)
    runner = runner or InProcessRunner()
    if runner.same_machine:
        # Fail early here; workers elsewhere check their own device.
        resolve_device(options.device)

    results = options.results.resolve()
    _prepare_results(results)
    tracking_uri = options.tracking_uri or local_tracking_uri(results)
    check_reachable(tracking_uri)
    # Another `bench run` on the same folder may be creating the same files.
    with results_lock(results):
        tracker = Tracker(
            tracking_uri, artifact_root=artifact_root(tracking_uri, results)
        )
        experiment_id = tracker.experiment_id(suite.name)
        storage_url = options.storage_url or default_storage_url(
            results, runner.workers
        )
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
        with results_lock(results):
            summary.report, _ = build_report(
                tracking_uri,
                suite.name,
                results / "reports" / suite.name,
                normalized_score=preset.normalized_score,
            )
    return summary


def _prepare_results(results: Path) -> None:
    """Create ``results`` and its lock file; raise `ValueError` if that fails.

    A read-only folder would otherwise fail later, with a raw error from the
    lock, SQLite or MLflow.
    """
    try:
        results.mkdir(parents=True, exist_ok=True)
        (results / LOCK_NAME).touch()
    except OSError as error:
        raise ValueError(
            f"--results {results} cannot be written ({type(error).__name__}: "
            f"{error.strerror or error}). Give a writable folder; to report on "
            f"results in a read-only folder, use `bench report --results "
            f"{results} --out DIR --no-log`."
        ) from None


def _check_dataset_ids(suite: Suite, dataset_ids: list[int]) -> None:
    """Raise `ValueError` if an id is not in ``suite``, listing the suite's ids."""
    known = [entry.openml_id for entry in suite.datasets]
    unknown = [i for i in dataset_ids if i not in known]
    if unknown:
        raise ValueError(
            f"Dataset ids {', '.join(map(str, unknown))} are not in suite "
            f"{suite.name}; its ids are {', '.join(map(str, known))}."
        )


def _prepare(
    entry: SuiteEntry, preset: Preset, sources: DataSources, device: torch.device
) -> dict[str, Any]:
    dataset = load_dataset(entry.openml_id, sources, target=entry.target)
    frame = invert_target_transform(
        dataset.frame,
        dataset.target,
        entry.target_transform,
        dataset=f"Dataset {entry.openml_id} ({dataset.name})",
    )
    frame = _drop_missing_target(frame, dataset.target, entry)
    n_duplicates = 0
    if preset.deduplicate:
        frame, n_duplicates = drop_duplicate_rows(frame)
        logger.info(
            "Dataset %d: dropped %d exact duplicate rows", entry.openml_id, n_duplicates
        )
    label = f"OpenML dataset {entry.openml_id} ({dataset.name})"
    split = split_rows(preset, frame.height, preset.split_seed, label)
    resampled = [
        _preprocess_split(frame, dataset, resample, preset, device)
        for resample in resample_splits(preset, frame.height, split, label)
    ]
    split, preprocessor, parts, test_target = resampled[0]

    test_in_train = rows_shared(frame, split.train, split.test)
    if test_in_train:
        logger.warning(
            "Dataset %d: %d of %d test rows also occur in the training rows; set "
            "deduplicate = true in the preset's [split] table to drop duplicates",
            entry.openml_id,
            test_in_train,
            len(split.test),
        )

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
        "test_target": test_target,
        "split_hash": split.hash,
        "resamples": [
            Resample(
                DeviceData(*r_parts, y_mean=r_pre.y_mean, y_std=r_pre.y_std),
                r_target,
                r_split.hash,
                r_split.seed,
            )
            for r_split, r_pre, r_parts, r_target in resampled[1:]
        ],
        "record": {
            "target_transform": entry.target_transform,
            "resample_split_hashes": [r[0].hash for r in resampled],
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


def _preprocess_split(
    frame: pl.DataFrame,
    dataset: Dataset,
    split: Split,
    preset: Preset,
    device: torch.device,
) -> tuple[Split, Preprocessor, list[Part], np.ndarray]:
    """Fit the preprocessing on ``split``'s training rows and transform all parts.

    Returns:
        The split, the fitted preprocessor, the train, validation and test
        parts on ``device``, and the test target in its original units.
    """
    preprocessor = Preprocessor(
        dataset.numeric,
        list(dataset.categorical),
        dataset.target,
        numeric_transform=preset.numeric_transform,
        seed=preset.split_seed,
        quantile_noise=preset.quantile_noise,
    ).fit(frame[split.train])
    parts = [
        Part.from_arrays(preprocessor.transform(frame[idx]), device)
        for idx in (split.train, split.val, split.test)
    ]
    test_target = frame[split.test][dataset.target].cast(pl.Float64).to_numpy()
    return split, preprocessor, parts, test_target


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
