"""Presets: built-in defaults, user files, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.distributions import FloatDistribution, IntDistribution

from bench.config import PresetError, builtin_presets, load_preset


def test_default_preset_values():
    preset = load_preset("default")
    assert "default" in builtin_presets()
    assert preset.test_fraction == 0.2
    assert preset.val_fraction == 0.16
    assert isinstance(preset.backbone_space["lr"], FloatDistribution)
    assert preset.backbone_space["lr"].log


def test_budget_left_out_of_fingerprint():
    preset = load_preset("default")
    bigger = preset.with_budget(n_trials=50, n_seeds=10)
    longer = preset.with_budget(max_epochs=preset.max_epochs + 1)
    assert bigger.study_fingerprint() == preset.study_fingerprint()
    assert longer.study_fingerprint() != preset.study_fingerprint()


def test_user_preset_file(tmp_path: Path):
    from importlib import resources

    text = (resources.files("bench") / "presets" / "default.toml").read_text()
    text += (
        '\n[encoders.soft-bins.space]\nn_bins = { type = "int", low = 4, high = 8 }\n'
    )
    path = tmp_path / "mine.toml"
    path.write_text(text)

    preset = load_preset(str(path))
    assert preset.encoder_spaces["soft-bins"]["n_bins"] == IntDistribution(4, 8)


def test_unknown_preset_lists_builtins():
    with pytest.raises(PresetError, match="Built-in presets: default"):
        load_preset("nope")


def test_bad_distribution_type(tmp_path: Path):
    from importlib import resources

    text = (resources.files("bench") / "presets" / "default.toml").read_text()
    text = text.replace('n_blocks = { type = "int"', 'n_blocks = { type = "integer"')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(PresetError, match="'n_blocks' has type 'integer'"):
        load_preset(str(path))


def test_zero_trials_rejected():
    with pytest.raises(PresetError, match="n-trials=0"):
        load_preset("default").with_budget(n_trials=0)
