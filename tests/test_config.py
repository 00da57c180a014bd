"""Presets: built-in defaults, user files, validation."""

from __future__ import annotations

import dataclasses
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


def test_protocol_presets_name_their_suite():
    assert load_preset("gorishniy2022").suite == "gorishniy2022"
    assert load_preset("grinsztajn2022").suite == "grinsztajn336"
    assert load_preset("default").suite is None


@pytest.mark.parametrize(
    ("written", "expected"),
    [("suites/mine.toml", "SUB/suites/mine.toml"), ("demo", "demo")],
)
def test_preset_suite_path_beside_preset(tmp_path, monkeypatch, written, expected):
    text = (Path(__file__).parents[1] / "bench/presets/default.toml").read_text()
    text = text.replace('name = "default"\n', f'name = "mine"\nsuite = "{written}"\n')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mine.toml").write_text(text)
    monkeypatch.chdir(tmp_path)

    preset = load_preset("sub/mine.toml")

    assert preset.suite == expected.replace("SUB", str(tmp_path / "sub"))


def test_suite_left_out_of_fingerprint():
    preset = load_preset("gorishniy2022")
    other = dataclasses.replace(preset, suite="demo")
    assert other.study_fingerprint() == preset.study_fingerprint()


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
    with pytest.raises(PresetError, match="--trials 0 is invalid"):
        load_preset("default").with_budget(n_trials=0)


def edited_default(tmp_path: Path, old: str, new: str) -> str:
    from importlib import resources

    text = (resources.files("bench") / "presets" / "default.toml").read_text()
    assert old in text
    path = tmp_path / "edited.toml"
    path.write_text(text.replace(old, new))
    return str(path)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("n_trials = 6", 'n_trials = "six"', r"\[tuning\] n_trials = 'six' is invalid"),
        ("n_startup_trials = 3", "n_startup_trial = 3", "unknown key"),
        ("deduplicate = false", "deduplicat = true", "unknown key"),
        (
            "deduplicate = false",
            'deduplicate = "no"',
            r"\[split\] deduplicate = 'no' is invalid; use true or false",
        ),
        ("batch_size = 256", "batch_size = 256.7", "batch_size = 256.7 is invalid"),
        ('"quantile-normal"   #', '"quantile"   #', "numeric_transform = 'quantile'"),
        ("test_fraction = 0.2", "test_fraction = 0.9", "sum to less than 1"),
        ("[tuning]", "[tuning", "invalid TOML"),
    ],
)
def test_bad_preset_value_named(tmp_path: Path, old: str, new: str, message: str):
    path = edited_default(tmp_path, old, new)
    with pytest.raises(PresetError, match=message) as raised:
        load_preset(path)
    assert path in str(raised.value)


def test_encoder_override_checked():
    from bench.config import check_encoder_spaces
    from encoders import available_encoders

    preset = load_preset("default")
    bad = dataclasses.replace(preset, encoder_spaces={"none": {"n_bins": None}})
    unknown = dataclasses.replace(preset, encoder_spaces={"soft-binz": {}})

    with pytest.raises(PresetError, match="none does not accept"):
        check_encoder_spaces(bad, available_encoders())
    with pytest.raises(PresetError, match="unknown encoder"):
        check_encoder_spaces(unknown, available_encoders())
