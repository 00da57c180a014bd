"""Workers released at the same instant on fresh storage: no lock or schema errors."""

from __future__ import annotations

import functools
import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cluster_checks import check_exactly_once

from bench.claims import LeaseSettings
from bench.config import load_preset
from bench.pipeline import RunOptions, run_suite
from runners import LocalRunner, WorkerResult, WorkerSlot
from tasks import DataSources, load_suite

pytestmark = pytest.mark.slow

WORKERS = 4
TRIALS_EACH = 5
ERRORS = ("database is locked", "alembic", "Traceback", "IntegrityError")


def released_together(barrier: Any, worker: Callable[[WorkerSlot], Any], slot):
    """Wait until every worker process is up, then start all at once."""
    barrier.wait(timeout=300)
    return worker(slot)


class SimultaneousRunner(LocalRunner):
    """Local workers that start their work at the same instant."""

    def run(self, worker: Callable[[WorkerSlot], Any]) -> list[WorkerResult[Any]]:
        barrier = multiprocessing.get_context("spawn").Barrier(self.workers)
        return super().run(functools.partial(released_together, barrier, worker))


def test_simultaneous_workers_on_fresh_storage(tmp_path: Path, mirror: Path, capfd):
    # SQLite for both Optuna and MLflow: the files that two processes must
    # not create at the same moment.
    storage_url = f"sqlite:///{tmp_path / 'optuna.db'}"
    preset = load_preset("default").with_budget(
        n_trials=WORKERS * TRIALS_EACH, n_seeds=1, max_epochs=1
    )
    options = RunOptions(
        results=tmp_path,
        sources=DataSources.from_env(mirror=mirror),
        encoders=["none"],
        dataset_ids=[41021],
        storage_url=storage_url,
        device="cpu",
        report=False,
        leases=LeaseSettings(heartbeat_interval=2, grace_period=30),
    )

    summary = run_suite(
        load_suite("demo"), preset, options, SimultaneousRunner(WORKERS, gpus=[])
    )

    assert summary.failed == {}
    assert [o.status for o in summary.outcomes.values()] == ["complete"]
    counts = check_exactly_once(
        storage_url,
        f"sqlite:///{tmp_path / 'mlflow.db'}",
        "demo",
        studies=1,
        trials=WORKERS * TRIALS_EACH,
        seeds=1,
    )
    assert counts.done_trials == WORKERS * TRIALS_EACH
    assert len(counts.workers) == WORKERS
    output = capfd.readouterr()
    for error in ERRORS:
        assert error not in output.err, error
