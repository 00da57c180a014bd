"""Median pruning through a Lightning callback, checked after every validation."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from bench.study import TrialPruning
from bench.training import DeviceData, Part, train_model
from encoders.plain import PlainEncoder
from tasks import DataSources, Preprocessor, load_dataset, make_split

EPOCHS = 6
GOOD = {"n_blocks": 2, "d_block": 64, "dropout": 0.0, "lr": 3e-3, "weight_decay": 1e-5}


@pytest.fixture(scope="module")
def space_ga(mirror: Path, tmp_path_factory) -> DeviceData:
    sources = DataSources(cache_dir=tmp_path_factory.mktemp("cache"), mirror=mirror)
    dataset = load_dataset(507, sources)
    split = make_split(
        dataset.frame.height, seed=0, val_fraction=0.16, test_fraction=0.2
    )
    pre = Preprocessor(dataset.numeric, [], dataset.target).fit(
        dataset.frame[split.train]
    )
    parts = [
        Part.from_arrays(pre.transform(dataset.frame[rows]), torch.device("cpu"))
        for rows in (split.train, split.val, split.test)
    ]
    return DeviceData(*parts, y_mean=pre.y_mean, y_std=pre.y_std)


def test_slow_trials_are_pruned(space_ga: DeviceData, tmp_path: Path):
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'optuna.db'}",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
    )
    for lr in (3e-3, 3e-3, 1e-7, 1e-7):
        study.enqueue_trial({"lr": lr})

    def objective(trial: optuna.Trial) -> float:
        params = {**GOOD, "lr": trial.suggest_float("lr", 1e-8, 1e-1, log=True)}
        _, _, result = train_model(
            PlainEncoder,
            params,
            space_ga,
            seed=trial.number,
            callbacks=[TrialPruning(trial)],
            max_epochs=EPOCHS,
            patience=EPOCHS,
            batch_size=256,
            eval_batch_size=4096,
        )
        return result.best_val_rmse

    study.optimize(objective, n_trials=4)

    first, second, slow_a, slow_b = study.trials
    for trial in (first, second):
        assert trial.state == TrialState.COMPLETE
        assert sorted(trial.intermediate_values) == list(range(EPOCHS))
    assert TrialState.PRUNED in (slow_a.state, slow_b.state)
    for trial in (slow_a, slow_b):
        if trial.state == TrialState.COMPLETE:
            assert len(trial.intermediate_values) == EPOCHS
        else:
            assert trial.state == TrialState.PRUNED
            assert len(trial.intermediate_values) < EPOCHS
