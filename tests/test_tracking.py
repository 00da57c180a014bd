"""MLflow conventions on a real SQLite tracking store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from bench.tracking import MAX_PARAM_CHARS, Tracker


@pytest.fixture
def tracker(tmp_path: Path) -> Tracker:
    return Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts")


def test_parent_run_found_again(tracker: Tracker):
    experiment = tracker.experiment_id("suite")
    first = tracker.parent_run(experiment, "key1", "a/b", {"encoder": "none"})
    again = tracker.parent_run(experiment, "key1", "a/b", {"encoder": "none"})
    other = tracker.parent_run(experiment, "key2", "a/c", {"encoder": "none"})

    assert again.info.run_id == first.info.run_id
    assert other.info.run_id != first.info.run_id


def test_child_run_nested_and_failed(tracker: Tracker):
    experiment = tracker.experiment_id("suite")
    parent = tracker.parent_run(experiment, "key", "p", {})

    with pytest.raises(RuntimeError):
        with tracker.child_run(parent, "trial 0", {"phase": "trial"}):
            raise RuntimeError("out of memory")

    (child,) = tracker.find_runs(experiment, "tags.phase = 'trial'")
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.info.status == "FAILED"
    assert child.data.tags["error"] == "RuntimeError: out of memory"


def test_long_param_goes_to_artifact(tracker: Tracker, tmp_path: Path):
    experiment = tracker.experiment_id("suite")
    run = tracker.parent_run(experiment, "key", "p", {})
    columns = [f"column_{i:04d}" for i in range(300)]

    tracker.log_params(run.info.run_id, {"columns": columns})

    stored = MlflowClient(tracker.tracking_uri).get_run(run.info.run_id)
    value = stored.data.params["columns"]
    assert len(str(columns)) > 1500
    assert len(value) <= MAX_PARAM_CHARS
    assert "sha256" in value
    artifact = next((tmp_path / "artifacts").rglob("columns.json"))
    assert json.loads(artifact.read_text()) == {"columns": columns}


def test_find_runs_reads_every_page(tracker: Tracker, monkeypatch):
    monkeypatch.setattr("reports.collect.PAGE_SIZE", 7)
    experiment = tracker.experiment_id("suite")
    for index in range(23):
        tracker.client.create_run(
            experiment, tags={"phase": "final", "seed": str(index)}
        )

    runs = tracker.find_runs(experiment, "tags.phase = 'final'")
    assert sorted(int(r.data.tags["seed"]) for r in runs) == list(range(23))
