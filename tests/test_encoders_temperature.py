"""Softmax temperature modes, the annealing hook, and top-k sparsification."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from encoders import EncoderError, get_encoder, set_training_progress
from encoders.temperature import Temperature, keep_top_k

SOFT = ["soft-bins", "autodis"]


def soft_module(name: str, **params) -> tuple[torch.nn.Module, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=generator)
    encoder = get_encoder(name)(**params)
    encoder.fit(x, x.sum(dim=1))
    torch.manual_seed(0)
    return encoder.build(3), x


@pytest.mark.parametrize("name", SOFT)
def test_annealing_follows_progress(name):
    module, _ = soft_module(
        name, temperature=1.0, temperature_mode="annealed", anneal_ratio=0.01
    )

    updated = set_training_progress(module, 0.5)
    halfway = module.temperature()
    set_training_progress(module, 1.0)
    end = module.temperature()

    assert updated == 2
    assert torch.allclose(halfway, torch.full((3,), 0.1))
    assert torch.allclose(end, torch.full((3,), 0.01))


@pytest.mark.parametrize("name", SOFT)
def test_annealing_changes_output(name):
    module, x = soft_module(name, temperature=1.0, temperature_mode="annealed")
    start = module(x)

    set_training_progress(module, 1.0)

    assert not torch.allclose(module(x), start)


def test_progress_restored_with_state():
    module, _ = soft_module("soft-bins", temperature_mode="annealed")
    set_training_progress(module, 0.25)
    saved = {k: v.clone() for k, v in module.state_dict().items()}

    set_training_progress(module, 0.75)
    module.load_state_dict(saved)

    assert float(module.temperature.progress) == 0.25


def test_unset_progress_warns_once(caplog):
    module, x = soft_module("soft-bins", temperature_mode="annealed")
    module.train()

    with caplog.at_level(logging.WARNING, logger="encoders.temperature"):
        module(x)
        module(x)

    warnings = [
        r for r in caplog.records if "set_progress was never called" in r.message
    ]
    assert len(warnings) == 1


@pytest.mark.parametrize("fraction", [-0.1, 1.5, math.nan])
def test_invalid_progress_raises(fraction):
    temperature = Temperature(2, 1.0, "annealed")

    with pytest.raises(EncoderError, match="Training progress"):
        temperature.set_progress(fraction)


@pytest.mark.parametrize("name", SOFT)
def test_learned_mode_has_parameter(name):
    learned, _ = soft_module(name, temperature_mode="learned")
    fixed, _ = soft_module(name, temperature_mode="fixed")

    learned_names = {n for n, _ in learned.named_parameters()}
    fixed_names = {n for n, _ in fixed.named_parameters()}

    assert "temperature.log_temperature" in learned_names
    assert "temperature.log_temperature" not in fixed_names
    assert "temperature.log_temperature" in dict(fixed.named_buffers())


def test_set_progress_ignores_other_models():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))

    assert set_training_progress(model, 0.5) == 0


@pytest.mark.parametrize("name", SOFT)
def test_top_k_keeps_k_weights(name):
    module, x = soft_module(name, top_k=3)

    weights = module.weights(x)

    assert ((weights > 0).sum(dim=-1) <= 3).all()
    assert ((weights > 0).sum(dim=-1) >= 1).all()
    assert torch.allclose(weights.sum(dim=-1), torch.ones(200, 3))


def test_keep_top_k_masks_rest():
    scores = torch.tensor([[0.125, 0.5, -2.0, 0.25]])

    kept = keep_top_k(scores, 2)

    assert kept.tolist() == [[-math.inf, 0.5, -math.inf, 0.25]]
    assert torch.equal(keep_top_k(scores, 0), scores)
    assert torch.equal(keep_top_k(scores, 4), scores)


@pytest.mark.parametrize("name", SOFT)
def test_summary_records_temperature(name):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(100, 2, generator=generator)
    encoder = get_encoder(name)(temperature=0.5, temperature_mode="fixed")
    encoder.fit(x, x.sum(dim=1))
    encoder.build(2)

    recorded = encoder.summary()["temperature"]

    assert recorded["mode"] == "fixed"
    assert recorded["per_feature"] == pytest.approx([0.5, 0.5])
