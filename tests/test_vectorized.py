"""Vectorized final seeds: each seed equals the same seed trained alone."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from test_training import make_data
from torch import Tensor, nn

from bench.cli import main
from bench.training import DeviceData, predict, train_model
from bench.vectorized import resolve_vectorized, train_seeds
from encoders import Encoder, available_encoders
from encoders.plain import PlainEncoder
from encoders.soft_bins import SoftBinsEncoder

PARAMS = {
    "n_blocks": 2,
    "d_block": 16,
    "dropout": 0.0,
    "lr": 1e-2,
    "weight_decay": 1e-4,
}
LOOP = {"max_epochs": 3, "patience": 3, "batch_size": 64, "eval_batch_size": 1000}
# float32 rounding differs between a batched and a plain matmul; after a few
# epochs of tiny models the predictions differ by about 1e-6.
ATOL = 1e-4


def assert_same_as_sequential(
    encoder: type[Encoder],
    params: dict[str, Any],
    data: DeviceData,
    seeds: list[int],
    loop: dict[str, int],
) -> None:
    runs, mode = train_seeds(encoder, params, data, seeds, **loop)

    assert mode == "vectorized"
    assert [run.seed for run in runs] == seeds
    for run in runs:
        model, _, alone = train_model(encoder, params, data, seed=run.seed, **loop)
        assert run.result.epochs_run == alone.epochs_run, run.seed
        assert run.result.best_epoch == alone.best_epoch, run.seed
        np.testing.assert_allclose(run.result.curve, alone.curve, rtol=1e-4)
        np.testing.assert_allclose(
            predict(run.model, data.test, 1000),
            predict(model, data.test, 1000),
            atol=ATOL,
        )


def test_seeds_match_sequential_runs():
    assert_same_as_sequential(PlainEncoder, PARAMS, make_data(), [0, 1, 2], LOOP)


def test_stopping_points_are_per_seed():
    params = {**PARAMS, "n_blocks": 1, "lr": 0.1, "weight_decay": 0.0}
    loop = {**LOOP, "max_epochs": 12, "patience": 2}
    data = make_data()

    runs, _ = train_seeds(PlainEncoder, params, data, [0, 1, 2, 3], **loop)

    stops = [run.result.epochs_run for run in runs]
    assert len(set(stops)) > 1, stops
    assert max(stops) < loop["max_epochs"], stops
    assert_same_as_sequential(PlainEncoder, params, data, [0, 1, 2, 3], loop)


def test_annealed_temperature_matches_sequential():
    params = {
        **PARAMS,
        "encoder.n_bins": 8,
        "encoder.temperature_mode": "annealed",
    }
    assert_same_as_sequential(SoftBinsEncoder, params, make_data(), [0, 1], LOOP)


@pytest.mark.parametrize("name", sorted(available_encoders()))
def test_registry_encoder_vectorizes(name: str):
    loop = {**LOOP, "max_epochs": 2, "patience": 2}
    assert_same_as_sequential(
        available_encoders()[name], PARAMS, make_data(), [0, 1], loop
    )


class ItemModule(nn.Module):
    """Reads a Python number out of its input, which vmap cannot batch."""

    d_out = 1

    def forward(self, x: Tensor) -> Tensor:
        return x[:, :1] * float(x[0, 0].item() > 0)


class ItemEncoder(Encoder):
    name = "item-test"
    description = "A module that calls .item() in forward."

    def build(self, n_features: int) -> nn.Module:
        return ItemModule()


def test_unvectorizable_encoder_falls_back(caplog: pytest.LogCaptureFixture):
    data = make_data()
    with caplog.at_level(logging.INFO, logger="bench.vectorized"):
        runs, mode = train_seeds(ItemEncoder, PARAMS, data, [0, 1], **LOOP)

    assert mode.startswith("sequential: vmap failed"), mode
    assert "item-test: 2 seeds train one after another" in caplog.text
    model, _, _ = train_model(ItemEncoder, PARAMS, data, seed=1, **LOOP)
    np.testing.assert_array_equal(
        predict(runs[1].model, data.test, 1000), predict(model, data.test, 1000)
    )


def test_single_seed_trains_sequentially():
    runs, mode = train_seeds(PlainEncoder, PARAMS, make_data(), [4], **LOOP)

    assert mode == "sequential: a single seed"
    assert len(runs) == 1


def test_resolve_vectorized_choices():
    cpu = torch.device("cpu")
    assert resolve_vectorized("auto", cpu, {"d_block": 64}) is True
    assert resolve_vectorized("auto", cpu, {"d_block": 128}) is True
    assert resolve_vectorized("auto", cpu, {"d_block": 256}) is False
    assert resolve_vectorized("auto", cpu) is False
    assert resolve_vectorized("auto", torch.device("cuda", 0)) is True
    assert resolve_vectorized(True, torch.device("cpu")) is True
    assert resolve_vectorized(False, torch.device("cuda", 0)) is False
    with pytest.raises(ValueError, match="vectorized = 'yes' is invalid"):
        resolve_vectorized("yes", torch.device("cpu"))


def final_runs(results: Path) -> list:
    client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("demo")
    runs = client.search_runs(
        [experiment.experiment_id], "tags.phase = 'final'", max_results=100
    )
    return [r for r in runs if r.info.status == "FINISHED"]


@pytest.mark.slow
def test_study_logs_vectorized_seeds_and_resumes(tmp_path: Path, mirror: Path):
    default = (resources.files("bench") / "presets" / "default.toml").read_text()
    assert 'vectorized = "auto"' in default
    preset = tmp_path / "vectorized.toml"
    preset.write_text(default.replace('vectorized = "auto"', "vectorized = true"))
    results = tmp_path / "results"

    def run(seeds: int) -> int:
        return main(
            [
                "run",
                "--suite",
                "demo",
                "--datasets",
                "507",
                "--encoders",
                "ple-quantile",
                "--preset",
                str(preset),
                "--trials",
                "1",
                "--seeds",
                str(seeds),
                "--max-epochs",
                "2",
                "--device",
                "cpu",
                "--no-report",
                "--results",
                str(results),
                "--mirror",
                str(mirror),
            ]
        )

    assert run(seeds=2) == 0
    first = {r.data.tags["seed"]: r for r in final_runs(results)}
    assert sorted(first) == ["0", "1"]
    for run_ in first.values():
        assert run_.data.tags["seed_training"] == "vectorized"
        assert "test_rmse" in run_.data.metrics

    assert run(seeds=3) == 0
    second = {r.data.tags["seed"]: r for r in final_runs(results)}
    assert sorted(second) == ["0", "1", "2"]
    for seed in ("0", "1"):
        assert second[seed].info.run_id == first[seed].info.run_id
    assert second["2"].data.tags["seed_training"] == "sequential: a single seed"
