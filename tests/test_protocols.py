"""Protocol presets of published benchmarks, their splits, and `bench reproduce`."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
from importlib import resources
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from mlflow.tracking import MlflowClient
from optuna.distributions import FloatDistribution, IntDistribution

from bench.cli import _protocol, main
from bench.config import (
    LATER_FIELD_DEFAULTS,
    PresetError,
    builtin_presets,
    check_encoder_spaces,
    load_preset,
)
from bench.reproduce import (
    PublishedError,
    compare,
    load_published,
    render_markdown,
)
from bench.reproduce_cli import _edited_copy_notes
from encoders import available_encoders
from reports.tables import add_normalized_scores
from tasks import DataSources, Preprocessor, load_dataset
from tasks.splits import SplitError, make_capped_split, resamples_for_test_size
from tasks.suites import SuiteError, invert_target_transform, load_suite

CALIFORNIA, HOUSE_16H, WINE_QUALITY = 44025, 574, 44136


def preset_text(name: str) -> str:
    return (resources.files("bench") / "presets" / f"{name}.toml").read_text()


def small_backbone(text: str) -> str:
    """Return a preset's text with a tiny backbone space, for fast runs."""
    start = text.index("[backbone.space]")
    end = text.find("\n[encoders", start)
    tiny = (
        "[backbone.space]\n"
        'n_blocks = { type = "int", low = 1, high = 1 }\n'
        'd_block = { type = "int", low = 16, high = 32 }\n'
        'dropout = { type = "fixed", value = 0.0 }\n'
        'lr = { type = "float", low = 1e-3, high = 3e-3, log = true }\n'
        'weight_decay = { type = "fixed", value = 1e-5 }\n'
    )
    return text[:start] + tiny + ("" if end < 0 else text[end:])


def write_preset(tmp_path: Path, text: str, name: str = "copy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_gorishniy_preset_values():
    preset = load_preset("gorishniy2022")
    assert preset.name == "gorishniy2022"
    assert preset.split_method == "fractions"
    assert preset.split_seed == 0
    assert preset.test_fraction == 0.2
    assert preset.val_fraction == 0.16
    assert preset.numeric_transform == "quantile-normal"
    assert preset.quantile_noise == 1e-3
    assert preset.batch_size == 256
    assert preset.patience == 16
    assert preset.n_trials == 100
    assert preset.n_seeds == 15
    assert preset.backbone_space["n_blocks"] == IntDistribution(1, 8)
    assert preset.backbone_space["lr"] == FloatDistribution(5e-5, 5e-3, log=True)
    assert preset.encoder_spaces["ple-quantile"]["n_bins"] == IntDistribution(2, 256)
    assert preset.encoder_spaces["plr"]["frequency_init_scale"].high == 100.0
    check_encoder_spaces(preset, available_encoders())


def test_grinsztajn_preset_values():
    preset = load_preset("grinsztajn2022")
    assert preset.split_method == "capped-train"
    assert preset.test_fraction is None
    assert preset.train_fraction == 0.7
    assert preset.train_cap == 10_000
    assert preset.val_share == 0.3
    assert preset.val_cap == 50_000
    assert preset.test_cap == 50_000
    assert preset.resamples == "auto"
    assert preset.normalized_score == "r2"
    assert preset.n_seeds == 5


def test_new_fields_keep_old_fingerprint():
    preset = load_preset("default")
    data = preset.record()
    for key in ("name", "description", "n_trials", "n_seeds", *LATER_FIELD_DEFAULTS):
        data.pop(key)
    # How final seeds run (one by one or vectorized) and the default suite are
    # not part of the key.
    data.pop("vectorized_seeds", None)
    data.pop("suite", None)
    text = json.dumps(data, sort_keys=True)
    assert preset.study_fingerprint() == hashlib.sha256(text.encode()).hexdigest()[:12]
    noisier = dataclasses.replace(preset, quantile_noise=1e-2)
    assert noisier.study_fingerprint() != preset.study_fingerprint()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('method = "capped-train"', 'method = "kfold"', "method = 'kfold'"),
        ('resamples = "auto"', "resamples = 0", "resamples = 0"),
        ("quantile_noise = 1e-3", "quantile_noise = -1.0", "quantile_noise"),
        ('normalized_score = "r2"', 'normalized_score = "mae"', "normalized_score"),
        ("train_cap = 10000", "train_cap = 0", "train_cap = 0"),
        ("val_share = 0.3", "val_share = 1.5", "val_share = 1.5"),
        ("val_share = 0.3", "val_share = 0.3\ntest_fraction = 0.2", "test_fraction"),
        ("val_cap = 50000", "val_kap = 50000", "unknown key"),
    ],
)
def test_invalid_protocol_values(tmp_path: Path, old: str, new: str, message: str):
    text = preset_text("grinsztajn2022")
    assert old in text
    path = write_preset(tmp_path, text.replace(old, new))
    with pytest.raises(PresetError, match=message):
        load_preset(str(path))


def test_fraction_split_rejects_capped_keys(tmp_path: Path):
    text = preset_text("gorishniy2022").replace(
        "val_fraction = 0.16", "val_fraction = 0.16\nval_share = 0.3"
    )
    with pytest.raises(PresetError, match="val_share"):
        load_preset(str(write_preset(tmp_path, text)))


@pytest.mark.parametrize(
    ("n_rows", "sizes"),
    [
        (20_640, (10_000, 3_192, 7_448)),
        (5_000, (3_500, 450, 1_050)),
        (200_000, (10_000, 50_000, 50_000)),
    ],
)
def test_capped_split_sizes(n_rows: int, sizes: tuple[int, int, int]):
    split = make_capped_split(
        n_rows,
        seed=0,
        train_fraction=0.7,
        train_cap=10_000,
        val_share=0.3,
        val_cap=50_000,
        test_cap=50_000,
    )
    assert (len(split.train), len(split.val), len(split.test)) == sizes
    everything = np.concatenate([split.train, split.val, split.test])
    assert len(np.unique(everything)) == len(everything)
    again = make_capped_split(
        n_rows,
        seed=0,
        train_fraction=0.7,
        train_cap=10_000,
        val_share=0.3,
        val_cap=50_000,
        test_cap=50_000,
    )
    assert again.hash == split.hash


def test_capped_split_too_small():
    with pytest.raises(SplitError, match="tiny"):
        make_capped_split(
            3, seed=0, train_fraction=0.7, train_cap=None, val_share=0.3, dataset="tiny"
        )


@pytest.mark.parametrize(
    ("n_test", "count"),
    [(50_000, 1), (6_001, 1), (6_000, 2), (3_001, 2), (3_000, 3), (1_001, 3)]
    + [(1_000, 5), (10, 5)],
)
def test_resamples_by_test_size(n_test: int, count: int):
    assert resamples_for_test_size(n_test) == count


def test_gorishniy_suite_inverts_california(mirror: Path):
    suite = load_suite("gorishniy2022")
    entries = {e.openml_id: e for e in suite.datasets}
    assert set(entries) == {CALIFORNIA, HOUSE_16H}
    assert entries[CALIFORNIA].target_transform == "log1p"
    assert entries[HOUSE_16H].target_transform is None

    dataset = load_dataset(CALIFORNIA, DataSources.from_env(mirror=mirror))
    stored = dataset.frame[dataset.target].to_numpy()
    frame = invert_target_transform(dataset.frame, dataset.target, "log1p")
    values = frame[dataset.target].to_numpy()
    # Median house values in units of 100,000 dollars, capped at 5.00001.
    assert 4.99 < values.max() < 5.01
    assert 0.1 < values.min() < 0.2
    assert 2.0 < values.mean() < 2.1
    np.testing.assert_allclose(np.log1p(values), stored, rtol=1e-12)
    assert frame.columns == dataset.frame.columns


def test_house_16h_target_in_dollars(mirror: Path):
    dataset = load_dataset(HOUSE_16H, DataSources.from_env(mirror=mirror))
    assert dataset.frame[dataset.target].max() == 500_001


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('target_transform = "sqrt"', "target_transform = 'sqrt'"),
        ('target_transfrom = "log1p"', "unknown key"),
    ],
)
def test_suite_rejects_bad_transform(tmp_path: Path, line: str, message: str):
    path = tmp_path / "suite.toml"
    path.write_text(f'name = "x"\n[[dataset]]\nopenml_id = 44025\n{line}\n')
    with pytest.raises(SuiteError, match=message):
        load_suite(str(path))


def test_invert_rejects_unknown_transform():
    frame = pl.DataFrame({"y": [1.0]})
    with pytest.raises(SuiteError, match="'square'"):
        invert_target_transform(frame, "y", "square")


def test_invert_rejects_overflow_naming_dataset():
    """House prices in dollars are not log values: exp() overflows."""
    frame = pl.DataFrame({"price": [1.0, 500001.0, 22000.0]})

    with pytest.raises(SuiteError) as raised:
        invert_target_transform(frame, "price", "log", dataset="Dataset 574")

    message = str(raised.value)
    assert message.startswith("Dataset 574: target_transform = 'log' turns 2 ")
    assert "largest 500001" in message
    assert "Remove target_transform" in message


def test_reproduce_full_rejects_budget_options(tmp_path: Path, caplog):
    argv = ["reproduce", "--full", "--trials", "1", "--results", str(tmp_path)]

    assert main(argv) == 2

    assert "--full uses the preset's own budget, so --trials" in caplog.text
    assert not (tmp_path / "mlflow.db").exists()


def test_quantile_noise_changes_fit():
    rng = np.random.default_rng(0)
    frame = pl.DataFrame(
        {"x": rng.integers(0, 3, 600).astype(float), "y": rng.normal(size=600)}
    )
    outputs = []
    for noise in (0.0, 1e-3, 0.3):
        pre = Preprocessor(["x"], [], "y", quantile_noise=noise).fit(frame)
        outputs.append(pre.transform(frame).x_num[:, 0])
    assert not np.allclose(outputs[0], outputs[2])
    assert len(np.unique(outputs[1])) == 3
    with pytest.raises(ValueError, match="quantile_noise"):
        Preprocessor(["x"], [], "y", quantile_noise=-1.0)


def test_r2_normalized_score():
    per = pl.DataFrame(
        {
            "openml_id": [1, 1, 1, 1],
            "encoder": ["a", "b", "c", "d"],
            "rmse_mean": [1.0, 2.0, 3.0, 4.0],
            "r2_mean": [0.9, 0.8, 0.6, 0.2],
        }
    )
    scores = dict(
        add_normalized_scores(per, "r2_mean", higher_is_better=True)
        .select("encoder", "normalized_score")
        .iter_rows()
    )
    # Median R² 0.7, best 0.9: (r2 - 0.7) / 0.2, clipped at 0.
    assert scores["a"] == pytest.approx(1.0)
    assert scores["b"] == pytest.approx(0.5)
    assert scores["c"] == 0.0
    assert scores["d"] == 0.0


def test_protocol_conflicts_with_preset(tmp_path: Path, caplog):
    caplog.set_level(logging.ERROR)
    status = main(
        [
            "run",
            "--protocol",
            "gorishniy2022",
            "--preset",
            "default",
            "--results",
            str(tmp_path),
        ]
    )
    assert status == 2
    assert "--preset is another name for --protocol" in caplog.text


def test_protocol_same_as_preset():
    same = argparse.Namespace(protocol="gorishniy2022", preset="gorishniy2022")
    assert _protocol(same) == "gorishniy2022"
    neither = argparse.Namespace(protocol=None, preset=None)
    assert _protocol(neither) == "default"
    only_preset = argparse.Namespace(protocol=None, preset="grinsztajn2022")
    assert _protocol(only_preset) == "grinsztajn2022"


def test_protocol_help_lists_every_preset(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())

    assert "throughput" in builtin_presets()
    for name in builtin_presets():
        assert name in text, name


@pytest.mark.parametrize("value", ["", "  "])
def test_empty_preset_name_rejected(value: str):
    with pytest.raises(PresetError, match="The preset name is empty"):
        load_preset(value)


@pytest.mark.parametrize("name", ["absent.toml", "folder/absent"])
def test_missing_preset_file_named(tmp_path: Path, name: str):
    path = tmp_path / name

    with pytest.raises(PresetError) as raised:
        load_preset(str(path))

    assert str(raised.value).startswith(f"Preset file {path} was not found.")


def test_preset_folder_is_not_a_file(tmp_path: Path):
    with pytest.raises(PresetError, match=f"Preset file {tmp_path} is not a file"):
        load_preset(str(tmp_path))


def encoder_space_error(tmp_path: Path, encoder: str, line: str) -> str:
    """Load the default preset plus one encoder space line; return the error.

    Asserts that the message starts with the file, the table and the parameter.
    """
    text = preset_text("default") + f"\n[encoders.{encoder}.space]\n{line}\n"
    path = write_preset(tmp_path, text)
    parameter = line.split(" ")[0]

    with pytest.raises(PresetError) as raised:
        load_preset(str(path))

    message = str(raised.value)
    assert message.startswith(f"{path}: [encoders.{encoder}.space] {parameter} ")
    return message


@pytest.mark.parametrize(
    ("encoder", "line", "choice"),
    [
        (
            "soft-bins",
            'scores = { type = "categorical", choices = ["edges", "bogus"] }',
            "'bogus'",
        ),
        ("autodis", 'temperature_mode = { type = "fixed", value = "hot" }', "'hot'"),
        ("ple-quantile", 'n_bins = { type = "categorical", choices = [8, 1] }', "1"),
    ],
)
def test_invalid_encoder_choice_rejected_on_load(
    tmp_path: Path, encoder: str, line: str, choice: str
):
    message = encoder_space_error(tmp_path, encoder, line)

    assert f"the choice {choice}, which encoder {encoder} rejects" in message


def test_valid_encoder_choices_load(tmp_path: Path):
    text = preset_text("default") + (
        "\n[encoders.soft-bins.space]\n"
        'scores = { type = "categorical", choices = ["edges", "interval"] }\n'
        'temperature_mode = { type = "fixed", value = "annealed" }\n'
    )

    preset = load_preset(str(write_preset(tmp_path, text)))

    assert set(preset.encoder_spaces["soft-bins"]) == {"scores", "temperature_mode"}


def test_published_values_file():
    published = load_published("gorishniy2022")
    assert published.suite == "gorishniy2022"
    assert published.metric == "test_rmse"
    assert published.values[(CALIFORNIA, "none")] == 0.4947
    assert published.values[(HOUSE_16H, "plr")] == 30496
    assert published.paper_names["ple-quantile"] == "Q-LR"
    encoders = available_encoders()
    assert set(published.paper_names) <= set(encoders)
    # Q-LR and T-LR are PLE followed by a linear layer and ReLU.
    assert encoders["ple-quantile"].head == "linear-relu"
    assert encoders["ple-tree"].head == "linear-relu"
    with pytest.raises(PublishedError, match="gorishniy2022"):
        load_published("grinsztajn2022")


def test_comparison_marks_missing_values():
    published = load_published("gorishniy2022")
    ours = pl.DataFrame(
        {
            "openml_id": [CALIFORNIA, CALIFORNIA],
            "encoder": ["none", "soft-bins"],
            "mean": [0.54417, 0.6],
            "std": [0.01, None],
            "n": [3, 1],
        }
    )
    rows = compare(published, ours, ["none", "soft-bins", "plr"])
    assert [r.openml_id for r in rows] == [CALIFORNIA] * 3 + [HOUSE_16H] * 3
    assert rows[0].difference_pct == pytest.approx(10.0, abs=0.01)
    assert rows[1].published is None
    assert rows[2].ours is None
    markdown = render_markdown(rows, published, "Budget: test.")
    assert "| California Housing | none | MLP | 0.5442 ± 0.01000 | 3 | 0.4947 |" in (
        markdown
    )
    assert "+10.0%" in markdown
    assert "| California Housing | soft-bins | n/a | 0.6000 | 1 | n/a | n/a |" in (
        markdown
    )
    assert "| House 16H | plr | PLR | n/a | 0 | 30496 | n/a |" in markdown


def test_edited_copy_warns(tmp_path: Path):
    same = write_preset(tmp_path, preset_text("gorishniy2022"), "same.toml")
    edited = write_preset(
        tmp_path, small_backbone(preset_text("gorishniy2022")), "edited.toml"
    )

    assert _edited_copy_notes("gorishniy2022", load_preset("gorishniy2022")) == []
    assert _edited_copy_notes(str(same), load_preset(str(same))) == []
    notes = _edited_copy_notes(str(edited), load_preset(str(edited)))
    assert len(notes) == 1
    assert f"the preset file {edited} is named gorishniy2022" in notes[0]
    markdown = render_markdown([], load_published("gorishniy2022"), "Budget.", notes)
    assert f"Warning: {notes[0]}" in markdown


def parent_runs(results: Path, experiment: str) -> list:
    client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id], "tags.phase = 'study'")


def artifact_json(results: Path, run_id: str, name: str) -> dict:
    client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    path = client.download_artifacts(run_id, name, str(results / "download"))
    return json.loads(Path(path).read_text())


@pytest.mark.slow
def test_reproduce_writes_comparison(tmp_path: Path, mirror: Path):
    # A user copy of the preset with a tiny backbone space keeps this fast; it
    # keeps the name, so the published values of gorishniy2022 apply.
    preset = write_preset(tmp_path, small_backbone(preset_text("gorishniy2022")))
    results, out = tmp_path / "results", tmp_path / "compare.md"
    status = main(
        [
            "reproduce",
            "--protocol",
            str(preset),
            "--trials",
            "1",
            "--seeds",
            "1",
            "--max-epochs",
            "2",
            "--encoders",
            "none,soft-bins",
            "--datasets",
            str(CALIFORNIA),
            "--device",
            "cpu",
            "--mirror",
            str(mirror),
            "--results",
            str(results),
            "--out",
            str(out),
        ]
    )
    assert status == 0
    markdown = out.read_text()
    assert f"Warning: the preset file {preset} is named gorishniy2022" in markdown
    assert "| California Housing | none | MLP |" in markdown
    assert "| 0.4947 |" in markdown
    assert "| California Housing | soft-bins | n/a |" in markdown
    assert "House 16H" not in markdown

    runs = parent_runs(results, "gorishniy2022")
    assert len(runs) == 2
    run = runs[0]
    assert run.data.tags["preset"] == "gorishniy2022"
    assert run.data.params["preset"] == "gorishniy2022"
    assert run.data.params["target_transform"] == "log1p"
    recorded = artifact_json(results, run.info.run_id, "preset.json")
    assert recorded["quantile_noise"] == 1e-3
    assert recorded["n_trials"] == 1
    assert recorded["backbone_space"]["n_blocks"].startswith("IntDistribution")
    data = artifact_json(results, run.info.run_id, "data.json")
    # Standard deviation of the house values in 100,000 dollars is about 1.15;
    # of their log1p it would be about 0.36.
    assert 1.1 < data["target_std"] < 1.2
    rmse = [
        float(line.split("|")[4].split("±")[0])
        for line in markdown.splitlines()
        if line.startswith("| California Housing")
    ]
    assert all(0.3 < value < 1.5 for value in rmse)


@pytest.mark.slow
def test_grinsztajn_resamples_small_test(tmp_path: Path, mirror: Path):
    text = small_backbone(preset_text("grinsztajn2022"))
    preset = write_preset(tmp_path, text)
    results = tmp_path / "results"
    status = main(
        [
            "run",
            "--protocol",
            str(preset),
            "--suite",
            "grinsztajn336",
            "--datasets",
            str(WINE_QUALITY),
            "--encoders",
            "none",
            "--trials",
            "1",
            "--seeds",
            "3",
            "--max-epochs",
            "1",
            "--device",
            "cpu",
            "--mirror",
            str(mirror),
            "--results",
            str(results),
        ]
    )
    assert status == 0
    (parent,) = parent_runs(results, "grinsztajn336")
    assert parent.data.tags["preset"] == "grinsztajn2022"
    assert parent.data.params["split_method"] == "capped-train"
    # 6,497 rows: 4,547 training rows, then 585 validation and 1,365 test
    # rows, so the rule gives 3 resamples.
    assert parent.data.params["n_resamples"] == "3"
    data = artifact_json(results, parent.info.run_id, "data.json")
    assert data["split_sizes"] == {"train": 4547, "val": 585, "test": 1365}
    assert len(set(data["resample_split_hashes"])) == 3

    client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    finals = client.search_runs([parent.info.experiment_id], "tags.phase = 'final'")
    by_seed = {r.data.tags["seed"]: r.data.tags for r in finals}
    assert {s: t["resample"] for s, t in by_seed.items()} == {
        "0": "0",
        "1": "1",
        "2": "2",
    }
    assert len({t["split_hash"] for t in by_seed.values()}) == 3
    assert all("test_r2" in r.data.metrics for r in finals)

    board = (results / "reports" / "grinsztajn336" / "leaderboard.md").read_text()
    assert "mean test R² per dataset" in board


@pytest.mark.parametrize(
    ("parameter", "line", "value", "valid"),
    [
        (
            "dropout",
            '{ type = "float", low = 0.0, high = 1.5 }',
            "high end 1.5",
            "0 <=",
        ),
        ("dropout", '{ type = "fixed", value = 1.0 }', "choice 1.0", "dropout < 1"),
        ("dropout", '{ type = "float", low = -0.1, high = 0.5 }', "low end -0.1", "<"),
        ("n_blocks", '{ type = "int", low = 0, high = 4 }', "low end 0", ">= 1"),
        ("d_block", '{ type = "categorical", choices = [64, 0] }', "choice 0", ">= 1"),
        ("d_block", '{ type = "fixed", value = 64.5 }', "choice 64.5", "integer"),
        ("lr", '{ type = "fixed", value = 0.0 }', "choice 0.0", "lr > 0"),
        ("weight_decay", '{ type = "fixed", value = -1.0 }', "choice -1.0", ">= 0"),
    ],
)
def test_backbone_range_rejected_on_load(
    tmp_path: Path, parameter: str, line: str, value: str, valid: str
):
    text = small_backbone(preset_text("default"))
    start = text.index(f"\n{parameter} = ") + 1
    end = text.index("\n", start)
    path = write_preset(tmp_path, text[:start] + f"{parameter} = {line}" + text[end:])

    with pytest.raises(PresetError) as raised:
        load_preset(str(path))

    message = str(raised.value)
    assert message.startswith(f"{path}: [backbone.space] {parameter} has the {value}")
    assert "outside the valid range" in message
    assert valid in message


def test_backbone_edge_values_load(tmp_path: Path):
    text = small_backbone(preset_text("default")).replace(
        'dropout = { type = "fixed", value = 0.0 }',
        'dropout = { type = "float", low = 0.0, high = 0.99 }',
    )

    preset = load_preset(str(write_preset(tmp_path, text)))

    assert preset.backbone_space["dropout"].high == 0.99
    assert preset.backbone_space["n_blocks"].low == 1


@pytest.mark.parametrize(
    ("encoder", "line", "value", "valid"),
    [
        (
            "soft-bins",
            'n_bins = { type = "int", low = 1, high = 1 }',
            "low end 1",
            ">= 2",
        ),
        (
            "soft-bins",
            'n_bins = { type = "int", low = 1, high = 64 }',
            "low end 1",
            ">= 2",
        ),
        (
            "autodis",
            'temperature = { type = "float", low = 0.0, high = 1.0 }',
            "low end 0.0",
            "> 0",
        ),
        (
            "plr",
            'd_embedding = { type = "int", low = 0, high = 8 }',
            "low end 0",
            ">= 1",
        ),
    ],
)
def test_encoder_range_end_rejected_on_load(
    tmp_path: Path, encoder: str, line: str, value: str, valid: str
):
    message = encoder_space_error(tmp_path, encoder, line)

    assert f"the {value}, which encoder {encoder} rejects" in message
    assert valid in message


def test_valid_encoder_ranges_load(tmp_path: Path):
    text = preset_text("default") + (
        "\n[encoders.soft-bins.space]\n"
        'n_bins = { type = "int", low = 2, high = 8 }\n'
        'temperature = { type = "float", low = 0.01, high = 1.0, log = true }\n'
    )

    preset = load_preset(str(write_preset(tmp_path, text)))

    assert preset.encoder_spaces["soft-bins"]["n_bins"].low == 2
