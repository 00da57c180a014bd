"""Training path: early stopping restores the best weights; metrics; errors."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from bench.attention import bin_weight_profile
from bench.training import (
    BestWeights,
    DeviceData,
    Part,
    predict,
    regression_metrics,
    train_model,
)
from encoders.plain import PlainEncoder
from encoders.soft_bins import SoftBinsEncoder

PARAMS = {"n_blocks": 1, "d_block": 16, "dropout": 0.0, "lr": 1e-2, "weight_decay": 0.0}


def make_data(n: int = 300, seed: int = 0) -> DeviceData:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (np.sin(2 * x[:, 0]) + x[:, 1] ** 2).astype(np.float32)
    y = (y - y.mean()) / y.std()

    def part(rows: slice) -> Part:
        return Part(
            torch.tensor(x[rows]), torch.zeros(len(x[rows]), 0), torch.tensor(y[rows])
        )

    return DeviceData(
        part(slice(0, 200)),
        part(slice(200, 250)),
        part(slice(250, n)),
        y_mean=0.0,
        y_std=2.0,
    )


def loop(**overrides) -> dict:
    return {
        "max_epochs": 5,
        "patience": 3,
        "batch_size": 64,
        "eval_batch_size": 1000,
        **overrides,
    }


def test_best_weights_are_restored():
    data = make_data()
    model, _, result = train_model(PlainEncoder, PARAMS, data, seed=0, **loop())

    prediction = torch.tensor(predict(model, data.val, 1000))
    rmse = float(((prediction - data.val.y) ** 2).mean().sqrt()) * data.y_std
    assert len(result.curve) == result.epochs_run
    assert result.best_val_rmse == min(result.curve)
    assert rmse == pytest.approx(result.best_val_rmse, rel=1e-4)


def test_early_stopping_after_patience():
    data = make_data()
    params = {**PARAMS, "lr": 1e-9}  # no progress after the first epoch
    _, _, result = train_model(
        PlainEncoder, params, data, seed=0, **loop(max_epochs=50, patience=2)
    )
    assert result.epochs_run < 50
    assert result.epochs_run - 1 - result.best_epoch == 2


def test_same_seed_same_predictions():
    data = make_data()
    runs = [
        train_model(SoftBinsEncoder, PARAMS, data, seed=3, **loop())[0]
        for _ in range(2)
    ]
    first, second = (predict(m, data.test, 1000) for m in runs)
    np.testing.assert_array_equal(first, second)


def test_wrong_monitor_lists_logged_names():
    data = make_data()
    stopper = BestWeights("val_loss_typo", patience=3)
    with pytest.raises(KeyError, match="val_rmse"):
        train_model(
            PlainEncoder,
            PARAMS,
            data,
            seed=0,
            callbacks=[stopper],
            **loop(max_epochs=1),
        )


def test_diverged_run_raises():
    data = make_data()
    data.train.y[:] = float("nan")
    with pytest.raises(FloatingPointError, match="diverged"):
        train_model(PlainEncoder, PARAMS, data, seed=0, **loop(max_epochs=1))


def test_regression_metrics_known_values():
    metrics = regression_metrics(
        np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 6.0])
    )
    assert metrics["rmse"] == pytest.approx(1.0)
    assert metrics["mae"] == pytest.approx(0.5)
    assert metrics["r2"] == pytest.approx(1 - 4 / 5)


def test_constant_target_r2_is_nan():
    metrics = regression_metrics(np.ones(4), np.zeros(4))
    assert math.isnan(metrics["r2"])
    assert metrics["rmse"] == 1.0


def test_soft_bin_profile_sums_to_one():
    data = make_data()
    model, _, _ = train_model(SoftBinsEncoder, PARAMS, data, seed=0, **loop())

    profile = bin_weight_profile(model, data.train.x_num, ["a", "b", "c"])

    weights = np.array(profile["weights"])
    assert profile["feature"] == "a"
    assert weights.shape[0] == len(profile["values"]) == 200
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
    assert profile["values"][0] == pytest.approx(float(data.train.x_num[:, 0].min()))


def test_plain_encoder_has_no_profile():
    data = make_data()
    model, _, _ = train_model(PlainEncoder, PARAMS, data, seed=0, **loop(max_epochs=1))
    assert bin_weight_profile(model, data.train.x_num, ["a", "b", "c"]) is None


def test_annealed_temperature_reaches_end():
    data = make_data()
    params = {
        **PARAMS,
        "encoder.temperature_mode": "annealed",
        "encoder.temperature": 1.0,
        "encoder.anneal_ratio": 0.01,
    }
    model, encoder, _ = train_model(
        SoftBinsEncoder, params, data, seed=0, **loop(max_epochs=3, patience=3)
    )

    temperature = encoder.summary()["temperature"]
    steps = 3 * 4  # 200 training rows in batches of 64
    assert temperature["mode"] == "annealed"
    expected = 0.01 ** ((steps - 1) / steps)
    assert float(np.mean(temperature["per_feature"])) == pytest.approx(
        expected, rel=0.05
    )


class EnvironmentProbe(pl.Callback):
    """Records the cluster environment the trainer picked."""

    def __init__(self) -> None:
        self.environment = ""

    def on_fit_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        environment = trainer._accelerator_connector.cluster_environment
        self.environment = type(environment).__name__


def test_inside_slurm_job_lightning_leaves_signals_alone(monkeypatch):
    """Inside a Slurm job Lightning would pick its Slurm environment and requeue
    on its own; training keeps the plain one, so the runner alone requeues."""
    for key, value in {
        "SLURM_JOB_ID": "41",
        "SLURM_NTASKS": "1",
        "SLURM_JOB_NAME": "bench-demo",
    }.items():
        monkeypatch.setenv(key, value)
    probe = EnvironmentProbe()

    train_model(PlainEncoder, PARAMS, make_data(), seed=0, callbacks=[probe], **loop())

    assert probe.environment == "LightningEnvironment"
