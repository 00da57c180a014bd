"""A suite under a new name gets studies of its own in a shared results folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from test_fault_records import (
    experiment_runs,
    run_bench,
    runs_of_phase,
    write_mirror,
    write_suite,
)

from bench import study

OPENML_ID = 990010


def linear_frame(n_rows: int = 200) -> pl.DataFrame:
    rng = np.random.default_rng(3)
    a = rng.normal(size=n_rows)
    b = rng.normal(size=n_rows)
    return pl.DataFrame({"a": a, "b": b, "y": 2.0 * a - b + 10.0})


def study_keys(results: Path, suite_name: str) -> set[str]:
    runs = runs_of_phase(experiment_runs(results, suite_name), "study")
    return {run.data.tags["study_key"] for run in runs}


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    return write_mirror(tmp_path / "mirror", OPENML_ID, linear_frame())


def test_copied_suite_trains_its_own_study(tmp_path: Path, mirror: Path):
    results = tmp_path / "results"
    first = write_suite(tmp_path, "first", OPENML_ID)
    second = write_suite(tmp_path, "second", OPENML_ID)

    assert run_bench(results, mirror, first, "none", 1) == 0
    assert run_bench(results, mirror, second, "none", 1) == 0

    runs = experiment_runs(results, "second")
    assert len(runs_of_phase(runs, "study")) == 1
    assert len(runs_of_phase(runs, "trial")) == 1
    assert len(runs_of_phase(runs, "final")) == 1
    assert study_keys(results, "first").isdisjoint(study_keys(results, "second"))
    assert (results / "reports" / "second" / "leaderboard.md").is_file()


def test_study_keyed_without_experiment_resumes(
    tmp_path: Path, mirror: Path, monkeypatch, caplog
):
    """A study made before the experiment was part of the key is found again."""
    results = tmp_path / "results"
    suite = write_suite(tmp_path, "older", OPENML_ID)
    monkeypatch.setattr(
        study.StudyRunner, "_study_key", lambda self, fields: study.fingerprint(fields)
    )
    assert run_bench(results, mirror, suite, "none", 1) == 0
    monkeypatch.undo()

    with caplog.at_level("INFO"):
        assert run_bench(results, mirror, suite, "none", 1) == 0

    assert "complete, skipped" in caplog.text
    runs = experiment_runs(results, "older")
    assert len(runs_of_phase(runs, "study")) == 1
    assert len(runs_of_phase(runs, "final")) == 1
