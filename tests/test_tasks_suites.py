"""Built-in and user suite files."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from tasks import load_suite
from tasks.mirror import MANIFEST_NAME
from tasks.suites import SuiteError, builtin_suites

# OpenML suite 336: regression on numerical features, from the benchmark of
# Grinsztajn, Oyallon and Varoquaux (NeurIPS 2022 datasets track).
SUITE_336_IDS = {
    44132, 44133, 44134, 44136, 44137, 44138, 44139, 44140, 44141, 44142,
    44143, 44144, 44145, 44146, 44147, 44148, 45032, 45033, 45034,
}  # fmt: skip


def require_mirror() -> Path:
    """Return the mirror folder named by BENCH_MIRROR, failing when it is absent."""
    value = os.environ.get("BENCH_MIRROR")
    if not value or not (Path(value) / MANIFEST_NAME).is_file():
        pytest.fail(
            "BENCH_MIRROR must point at the dataset mirror, a folder holding "
            f"{MANIFEST_NAME} and the Parquet files. It is {value!r}."
        )
    return Path(value)


def test_builtin_suite_names():
    assert builtin_suites() == ["demo", "gorishniy2022", "grinsztajn336"]


def test_demo_suite_covers_data_kinds():
    with (require_mirror() / MANIFEST_NAME).open("rb") as handle:
        manifest = {
            entry["openml_dataset_id"]: entry
            for entry in tomllib.load(handle)["dataset"]
        }

    suite = load_suite("demo")
    entries = [manifest.get(d.openml_id) for d in suite.datasets]

    assert suite.name == "demo"
    assert len(suite.datasets) == 3
    assert None not in entries, [d.openml_id for d in suite.datasets]
    for dataset, entry in zip(suite.datasets, entries, strict=True):
        assert dataset.name == entry["name"]
    all_numeric = [
        e
        for e in entries
        if e["n_categorical_features"] == 0 and e["n_missing_values"] == 0
    ]
    assert len(all_numeric) >= 1
    assert any(e["n_categorical_features"] > 0 for e in entries)
    assert any(e["n_missing_values"] > 0 for e in entries)
    assert suite.encoders


def test_grinsztajn_suite_lists_suite_336():
    suite = load_suite("grinsztajn336")
    ids = [d.openml_id for d in suite.datasets]

    assert len(ids) == 19
    assert set(ids) == SUITE_336_IDS
    assert all(d.target is None for d in suite.datasets)


def test_unknown_suite_lists_builtins():
    with pytest.raises(SuiteError) as raised:
        load_suite("no-such-suite")

    message = str(raised.value)
    assert "'no-such-suite'" in message
    assert "demo" in message
    assert "grinsztajn336" in message


def test_user_suite_file_loads(tmp_path: Path):
    path = tmp_path / "mine.toml"
    path.write_text(
        'name = "mine"\n'
        'description = "two datasets"\n'
        'encoders = ["none"]\n'
        "[[dataset]]\n"
        "openml_id = 507\n"
        'name = "space_ga"\n'
        "[[dataset]]\n"
        "openml_id = 41021\n"
        'target = "W"\n'
    )

    suite = load_suite(str(path))

    assert suite.name == "mine"
    assert suite.description == "two datasets"
    assert suite.encoders == ("none",)
    assert [d.openml_id for d in suite.datasets] == [507, 41021]
    assert suite.datasets[0].name == "space_ga"
    assert suite.datasets[0].target is None
    assert suite.datasets[1].name == "41021"
    assert suite.datasets[1].target == "W"


def test_user_suite_without_name(tmp_path: Path):
    path = tmp_path / "nameless.toml"
    path.write_text("[[dataset]]\nopenml_id = 507\n")

    assert load_suite(str(path)).name == "nameless"


def test_duplicate_ids_rejected(tmp_path: Path):
    path = tmp_path / "twice.toml"
    path.write_text(
        "[[dataset]]\nopenml_id = 507\n"
        "[[dataset]]\nopenml_id = 41021\n"
        "[[dataset]]\nopenml_id = 507\n"
    )

    with pytest.raises(SuiteError) as raised:
        load_suite(str(path))

    assert str(path) in str(raised.value)
    assert "[507]" in str(raised.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('name = "empty"\n', "no [[dataset]]"),
        ("[[dataset]]\nname = 'space_ga'\n", "has no openml_id"),
        ("[[dataset]]\nopenml_id = 'space_ga'\n", "not an integer"),
        ("[[dataset]\nopenml_id = 507\n", "not valid TOML"),
    ],
    ids=["no-datasets", "no-id", "text-id", "invalid-toml"],
)
def test_malformed_suite_rejected(tmp_path: Path, text: str, expected: str):
    path = tmp_path / "broken.toml"
    path.write_text(text)

    with pytest.raises(SuiteError) as raised:
        load_suite(str(path))

    assert str(path) in str(raised.value)
    assert expected in str(raised.value)


def test_missing_suite_file_rejected(tmp_path: Path):
    path = tmp_path / "absent.toml"

    with pytest.raises(SuiteError) as raised:
        load_suite(str(path))

    assert str(path) in str(raised.value)
    assert "does not exist" in str(raised.value)
