"""Data faults and diverged trials are recorded in MLflow by a real `bench run`.

Each test writes its own dataset mirror (a Parquet file and a MANIFEST.toml)
and a suite file that points at it, then runs the CLI at a tiny budget.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import optuna
import polars as pl
import pytest
from mlflow.tracking import MlflowClient
from torch import Tensor, nn

from bench.cli import main
from bench.config import load_preset
from bench.protocols import split_rows
from bench.storage import SQLITE_NAME
from encoders import registry
from encoders.base import Encoder
from tasks.checksums import sha256_file
from tasks.mirror import MANIFEST_NAME

FAULTS_ID = 990001
N_ROWS = 300


def write_mirror(folder: Path, openml_id: int, frame: pl.DataFrame) -> Path:
    """Write ``frame`` as a one-dataset mirror whose target is column ``y``."""
    folder.mkdir(parents=True, exist_ok=True)
    file = f"{openml_id}_case.parquet"
    frame.write_parquet(folder / file)
    (folder / MANIFEST_NAME).write_text(
        f"""[[dataset]]
file = "{file}"
openml_dataset_id = {openml_id}
name = "case_{openml_id}"
target = "y"
sha256 = "{sha256_file(folder / file)}"
""",
        encoding="utf8",
    )
    return folder


def write_suite(folder: Path, name: str, openml_id: int) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(
        f"""name = "{name}"
description = "One generated dataset."

[[dataset]]
openml_id = {openml_id}
name = "case_{openml_id}"
""",
        encoding="utf8",
    )
    return path


def run_bench(
    results: Path, mirror: Path, suite: Path, encoders: str, trials: int, *extra: str
) -> int:
    return main(
        [
            "run",
            "--suite",
            str(suite),
            "--results",
            str(results),
            "--mirror",
            str(mirror),
            "--encoders",
            encoders,
            "--trials",
            str(trials),
            "--seeds",
            "1",
            "--max-epochs",
            "1",
            "--device",
            "cpu",
            *extra,
        ]
    )


def experiment_runs(results: Path, suite_name: str) -> list:
    client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(suite_name)
    return client.search_runs([experiment.experiment_id], max_results=1000)


def runs_of_phase(runs: list, phase: str) -> list:
    return [r for r in runs if r.data.tags.get("phase") == phase]


def faulty_frame() -> pl.DataFrame:
    """300 rows: ``const`` is constant, ``gappy`` has nulls and NaN, ``spiky`` +inf.

    ``gappy`` is null where ``i % 10 == 0`` and NaN where ``i % 10 == 5``;
    ``spiky`` is +inf where ``i % 15 == 3``.
    """
    rng = np.random.default_rng(0)
    index = np.arange(N_ROWS)
    a = rng.normal(size=N_ROWS)
    gappy = rng.normal(size=N_ROWS)
    gappy[index % 10 == 5] = np.nan
    spiky = rng.normal(size=N_ROWS)
    spiky[index % 15 == 3] = np.inf
    y = 3.0 * a + rng.normal(scale=0.1, size=N_ROWS) + 50.0
    return pl.DataFrame(
        {
            "a": a,
            "const": np.full(N_ROWS, 7.0),
            "gappy": pl.Series(gappy, nan_to_null=False).scatter(
                np.flatnonzero(index % 10 == 0), None
            ),
            "spiky": spiky,
            "y": y,
        }
    )


@pytest.fixture(scope="module")
def faults_run(tmp_path_factory) -> dict:
    """Run `bench run` once on the faulty dataset; return the parent run's record."""
    root = tmp_path_factory.mktemp("faults")
    frame = faulty_frame()
    mirror = write_mirror(root / "mirror", FAULTS_ID, frame)
    suite = write_suite(root, "faults", FAULTS_ID)
    results = root / "results"

    assert run_bench(results, mirror, suite, "none", 1) == 0

    (parent,) = runs_of_phase(experiment_runs(results, "faults"), "study")
    client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    data_path = client.download_artifacts(parent.info.run_id, "data.json", str(root))
    preset = load_preset("default")
    split = split_rows(preset, N_ROWS, preset.split_seed, "faults")
    return {
        "parent": parent,
        "data": json.loads(Path(data_path).read_text()),
        "train": frame[split.train],
        "split_hash": split.hash,
    }


@pytest.mark.slow
def test_constant_column_recorded_in_run(faults_run: dict):
    parent = faults_run["parent"]
    data = faults_run["data"]

    assert parent.data.tags["status"] == "complete"
    assert parent.data.params["dropped_constant_columns"] == "['const']"
    assert data["dropped_constant"] == ["const"]
    assert data["numeric_features"] == ["a", "gappy", "spiky"]


@pytest.mark.slow
def test_missing_and_nonfinite_counts_recorded(faults_run: dict):
    train = faults_run["train"]
    data = faults_run["data"]
    expected_missing = train["gappy"].is_null().sum() + train["gappy"].is_nan().sum()
    expected_inf = int(np.isinf(train["spiky"].to_numpy()).sum())

    # The expected counts hold only if the run used the split recomputed here.
    assert data["split_hash"] == faults_run["split_hash"]
    assert expected_missing > 0
    assert expected_inf > 0
    assert data["missing_counts"] == {"gappy": expected_missing}
    assert data["nonfinite_counts"] == {"spiky": expected_inf}


@pytest.mark.slow
def test_target_statistics_saved_with_run(faults_run: dict):
    y = faults_run["train"]["y"].to_numpy()
    data = faults_run["data"]

    assert data["split_hash"] == faults_run["split_hash"]
    assert data["split_sizes"]["train"] == len(y)
    assert data["target_mean"] == pytest.approx(float(np.mean(y)), rel=1e-12)
    assert data["target_std"] == pytest.approx(float(np.std(y)), rel=1e-12)
    # Statistics over all rows differ, so a fit that saw the evaluation rows fails.
    all_rows = faulty_frame()["y"].to_numpy()
    assert float(np.mean(all_rows)) != pytest.approx(float(np.mean(y)), rel=1e-12)


def small_preset(folder: Path) -> Path:
    """Copy the default preset with a validation fraction of 0.1."""
    text = (Path(__file__).parents[1] / "bench/presets/default.toml").read_text()
    assert "val_fraction = 0.16" in text
    path = folder / "small-val.toml"
    path.write_text(text.replace("val_fraction = 0.16", "val_fraction = 0.1"))
    return path


@pytest.mark.parametrize(
    ("n_rows", "use_default_preset", "sizes"),
    [
        (6, True, "{'train': 5, 'val': 0, 'test': 1}"),
        (9, False, "{'train': 8, 'val': 0, 'test': 1}"),
    ],
)
def test_empty_validation_stops_before_training(
    tmp_path: Path, caplog, n_rows: int, use_default_preset: bool, sizes: str
):
    openml_id = 990002
    frame = pl.DataFrame(
        {"a": np.arange(n_rows, dtype=float), "y": np.arange(n_rows, dtype=float)}
    )
    mirror = write_mirror(tmp_path / "mirror", openml_id, frame)
    suite = write_suite(tmp_path, "tiny", openml_id)
    results = tmp_path / "results"
    extra = [] if use_default_preset else ["--preset", str(small_preset(tmp_path))]

    with caplog.at_level(logging.WARNING):
        code = run_bench(results, mirror, suite, "none", 1, *extra)

    assert code != 0
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert f"case_{openml_id}" in messages
    assert f"{n_rows} rows give split sizes {sizes}" in messages
    runs = experiment_runs(results, "tiny")
    assert runs_of_phase(runs, "trial") == []
    assert runs_of_phase(runs, "final") == []
    assert runs_of_phase(runs, "study") == []
    (skipped,) = runs_of_phase(runs, "skipped")
    assert sizes in skipped.data.tags["status_reason"]
    assert (results / SQLITE_NAME).is_file()
    storage = f"sqlite:///{results / SQLITE_NAME}"
    for summary in optuna.get_all_study_summaries(storage):
        assert summary.n_trials == 0


class NaNOutput(nn.Module):
    d_out = 1

    def forward(self, x: Tensor) -> Tensor:
        return x[:, :1] * float("nan")


class DivergingEncoder(Encoder):
    name = "diverges"
    description = "Returns NaN in every forward pass, so the loss is NaN."

    def build(self, n_features: int) -> nn.Module:
        return NaNOutput()


@pytest.mark.slow
def test_nan_loss_fails_trial_not_study(tmp_path: Path, monkeypatch):
    monkeypatch.setitem(registry.BUILTIN, DivergingEncoder.name, DivergingEncoder)
    openml_id = 990003
    rng = np.random.default_rng(1)
    a = rng.normal(size=200)
    frame = pl.DataFrame({"a": a, "b": rng.normal(size=200), "y": 2.0 * a})
    mirror = write_mirror(tmp_path / "mirror", openml_id, frame)
    suite = write_suite(tmp_path, "nan", openml_id)
    results = tmp_path / "results"

    code = run_bench(results, mirror, suite, "none,diverges", 2)

    assert code == 1
    runs = experiment_runs(results, "nan")
    trials = [
        r for r in runs_of_phase(runs, "trial") if r.data.tags["encoder"] == "diverges"
    ]
    assert len(trials) == 2
    for trial in trials:
        assert trial.info.status == "FAILED"
        assert "FloatingPointError" in trial.data.tags["error"]
        assert "diverged" in trial.data.tags["error"]
    parents = {r.data.tags["encoder"]: r for r in runs_of_phase(runs, "study")}
    assert parents["diverges"].data.tags["status"] == "failed"
    assert parents["none"].data.tags["status"] == "complete"
    board = (results / "reports" / "nan" / "leaderboard.md").read_text()
    assert "| none |" in board
    assert "diverges" in board
