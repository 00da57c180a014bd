"""Trials that raise are recorded as failed; a pair that never trains gets a row."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from torch import Tensor, nn

from bench.cli import main
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
