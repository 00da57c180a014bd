"""Trials that raise are recorded as failed; a pair that never trains gets a row."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState, create_trial
from torch import Tensor, nn

from bench.cli import main
from bench.study import StudyRunner
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
