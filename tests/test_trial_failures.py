"""Trials that raise are recorded as failed; a pair that never trains gets a row."""

from __future__ import annotations

import logging
import math
import statistics
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState, create_trial
from torch import Tensor, nn

from bench.cli import main
from bench.study import StudyRunner, _aggregate, mean_and_std
from encoders import registry
from encoders.base import Encoder


class OutOfMemory(nn.Module):
    d_out = 1

    def forward(self, x: Tensor) -> Tensor:
        raise RuntimeError("CUDA out of memory (simulated)")


class FailingEncoder(Encoder):
    name = "always-fails"
    description = "Raises in every forward pass."

    def build(self, n_features: int) -> nn.Module:
        return OutOfMemory()


@pytest.fixture
def failing_encoder(monkeypatch):
    monkeypatch.setitem(registry.BUILTIN, FailingEncoder.name, FailingEncoder)


@pytest.mark.slow
def test_failed_pair_gets_status_row(
    tmp_path: Path, mirror: Path, failing_encoder, caplog
):
    code = main(
        [
            "run",
            "--results",
            str(tmp_path),
            "--mirror",
            str(mirror),
            "--datasets",
            "41021",
            "--encoders",
            "none,always-fails",
            "--trials",
            "2",
            "--seeds",
            "1",
            "--max-epochs",
            "2",
        ]
    )

    assert code == 1
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("demo")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    trials = [
        r
        for r in runs
        if r.data.tags.get("phase") == "trial"
        and r.data.tags["encoder"] == "always-fails"
    ]
    assert len(trials) == 2
    for trial in trials:
        assert trial.info.status == "FAILED"
        assert "CUDA out of memory (simulated)" in trial.data.tags["error"]
    (parent,) = [
        r
        for r in runs
        if r.data.tags.get("phase") == "study"
        and r.data.tags["encoder"] == "always-fails"
    ]
    assert parent.data.tags["status"] == "failed"

    board = (tmp_path / "reports" / "demo" / "leaderboard.md").read_text()
    assert "always-fails" in board
    assert "failed" in board
    assert "| none |" in board


def test_trial_log_lines_name_optuna_number(caplog):
    caplog.set_level(logging.INFO, logger="bench.study")
    study = optuna.create_study()
    runner = SimpleNamespace(
        spec=SimpleNamespace(label="pair"), preset=SimpleNamespace(n_trials=4)
    )
    # Optuna calls the callback once per trial, right after storing it.
    for trial in (
        create_trial(state=TrialState.FAIL),
        create_trial(value=0.5),
        create_trial(state=TrialState.PRUNED),
    ):
        study.add_trial(trial)
        StudyRunner._log_trial(runner, study, study.trials[-1])

    records = [r for r in caplog.records if r.name == "bench.study"]
    assert [r.getMessage() for r in records] == [
        "pair: Optuna trial 0 ended FAIL and does not count, so 0/4 trials are done",
        "pair: trial 1/4 (Optuna trial 1) val RMSE 0.5 (best 0.5)",
        "pair: trial 2/4 (Optuna trial 2) pruned",
    ]
    assert records[0].levelno == logging.WARNING


def test_seed_summary_with_nan_metric():
    """R² is NaN on a constant test target; the summary must not raise."""
    runs = [
        SimpleNamespace(data=SimpleNamespace(metrics=metrics))
        for metrics in (
            {"test_rmse": 1.0, "test_mae": 0.5, "test_r2": math.nan},
            {"test_rmse": 3.0, "test_mae": 1.5, "test_r2": math.nan},
        )
    ]

    summary = _aggregate(runs)

    assert summary["n_seeds_done"] == 2.0
    assert summary["test_rmse_mean"] == 2.0
    assert summary["test_rmse_std"] == pytest.approx(statistics.stdev([1.0, 3.0]))
    assert math.isnan(summary["test_r2_mean"])
    assert math.isnan(summary["test_r2_std"])


def test_mean_and_std_edge_counts():
    assert mean_and_std([2.0]) == (2.0, 0.0)
    assert all(math.isnan(value) for value in mean_and_std([]))
    values = [0.3, 1.7, 2.2, 9.1]
    mean, std = mean_and_std(values)
    assert mean == pytest.approx(statistics.fmean(values))
    assert std == pytest.approx(statistics.stdev(values))
