"""The whole pipeline on real data at a tiny budget: CLI, MLflow, leaderboard."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np
import optuna
import polars as pl
import pytest
from mlflow.tracking import MlflowClient

from bench.cli import main
from bench.study import LEDGER_SUFFIX

pytestmark = pytest.mark.slow

DATASETS = {507: "space_ga", 41021: "Moneyball"}
ENCODERS = ["none", "ple-quantile", "soft-bins"]


def run_cli(results: Path, mirror: Path, trials: int, seeds: int) -> int:
    return main(
        [
            "run",
            "--suite",
            "demo",
            "--results",
            str(results),
            "--mirror",
            str(mirror),
            "--datasets",
            ",".join(map(str, DATASETS)),
            "--encoders",
            ",".join(ENCODERS),
            "--trials",
            str(trials),
            "--seeds",
            str(seeds),
            "--max-epochs",
            "2",
            "--device",
            "cpu",
        ]
    )


def runs_by_phase(results: Path) -> dict[str, list]:
    client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("demo")
    runs = client.search_runs([experiment.experiment_id], max_results=5000)
    phases: dict[str, list] = {}
    for run in runs:
        phases.setdefault(run.data.tags.get("phase"), []).append(run)
    return phases


@pytest.fixture(scope="module")
def demo_results(tmp_path_factory, mirror: Path) -> Path:
    results = tmp_path_factory.mktemp("results")
    assert run_cli(results, mirror, trials=2, seeds=2) == 0
    return results


def test_leaderboard_lists_every_pair(demo_results: Path):
    text = (demo_results / "reports" / "demo" / "leaderboard.md").read_text()
    overall, per_dataset = text.split("## Per dataset")

    for openml_id, name in DATASETS.items():
        assert f"### {name} (OpenML {openml_id})" in per_dataset
    for encoder in ENCODERS:
        assert overall.count(f"| {encoder} |") == 1
        assert per_dataset.count(f"| {encoder} |") == len(DATASETS)
    assert "without results" not in text


def test_raw_results_in_original_units(demo_results: Path, mirror: Path):
    raw = pl.read_csv(demo_results / "reports" / "demo" / "results.csv")
    assert raw.height == len(DATASETS) * len(ENCODERS) * 2
    assert set(raw["seed"]) == {0, 1}

    # Moneyball's target (runs scored) has a standard deviation near 80, so an
    # RMSE left in standardized units would be below 2.
    target = pl.read_parquet(next(mirror.glob("41021_*.parquet")))["RS"]
    moneyball = raw.filter(pl.col("openml_id") == 41021)["test_rmse"].to_numpy()
    assert np.all(moneyball > 0.05 * target.std())
    assert np.all(moneyball < 3 * target.std())


def test_mlflow_parent_and_child_runs(demo_results: Path):
    phases = runs_by_phase(demo_results)
    parents = phases["study"]
    assert len(parents) == len(DATASETS) * len(ENCODERS)

    parent_ids = {p.info.run_id for p in parents}
    children = Counter(
        (r.data.tags["mlflow.parentRunId"], r.data.tags["phase"])
        for r in phases["trial"] + phases["final"]
    )
    for parent_id in parent_ids:
        assert children[(parent_id, "trial")] == 2
        assert children[(parent_id, "final")] == 2
    for parent in parents:
        tags = parent.data.tags
        assert tags["status"] == "complete"
        for key in (
            "dataset",
            "openml_id",
            "encoder",
            "split_hash",
            "code_version",
            "device",
        ):
            assert tags[key], key
        assert "test_rmse_mean" in parent.data.metrics
        assert parent.data.params["test_rows_in_train"] == "0"


def test_trial_runs_hold_epoch_curves(demo_results: Path):
    client = MlflowClient(f"sqlite:///{demo_results / 'mlflow.db'}")
    trial = runs_by_phase(demo_results)["trial"][0]
    history = client.get_metric_history(trial.info.run_id, "val_rmse")
    assert [m.step for m in history] == [0, 1]


def test_rerun_skips_complete_work(demo_results: Path, mirror: Path, caplog):
    before = {k: len(v) for k, v in runs_by_phase(demo_results).items()}

    with caplog.at_level(logging.INFO, logger="bench"):
        assert run_cli(demo_results, mirror, trials=2, seeds=2) == 0

    after = {k: len(v) for k, v in runs_by_phase(demo_results).items()}
    assert after == before
    skipped = [r for r in caplog.records if "complete, skipped" in r.getMessage()]
    assert len(skipped) == len(DATASETS) * len(ENCODERS)


def test_larger_budget_continues_study(tmp_path: Path, mirror: Path):
    args = [
        "run",
        "--suite",
        "demo",
        "--results",
        str(tmp_path),
        "--mirror",
        str(mirror),
        "--datasets",
        "41021",
        "--encoders",
        "none",
        "--seeds",
        "1",
        "--max-epochs",
        "2",
        "--no-report",
    ]
    assert main([*args, "--trials", "2"]) == 0
    assert main([*args, "--trials", "3"]) == 0

    assert main([*args, "--trials", "3"]) == 0

    phases = runs_by_phase(tmp_path)
    (parent,) = phases["study"]
    assert len(phases["trial"]) == 3
    for trial in phases["trial"]:
        assert trial.data.tags["mlflow.parentRunId"] == parent.info.run_id
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    (summary,) = [
        s
        for s in optuna.get_all_study_summaries(storage)
        if not s.study_name.endswith(LEDGER_SUFFIX)
    ]
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    assert [t.number for t in study.trials] == [0, 1, 2]


def test_unknown_encoder_is_rejected(tmp_path: Path, mirror: Path, caplog):
    code = main(
        [
            "run",
            "--results",
            str(tmp_path),
            "--mirror",
            str(mirror),
            "--encoders",
            "no-such-encoder",
        ]
    )
    assert code == 2
    assert "no-such-encoder" in caplog.text
    assert "Available:" in caplog.text


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_ui_serves_parent_and_child_runs(demo_results: Path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.cli",
            "ui",
            "--results",
            str(demo_results),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                assert server.poll() is None, "bench ui exited early"
                assert time.monotonic() < deadline, "bench ui did not start in 90 s"
                time.sleep(0.5)

        query = f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=demo"
        experiment = json.load(urllib.request.urlopen(query))["experiment"]
        request = urllib.request.Request(
            f"{base}/api/2.0/mlflow/runs/search",
            data=json.dumps(
                {"experiment_ids": [experiment["experiment_id"]], "max_results": 1000}
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        runs = json.load(urllib.request.urlopen(request))["runs"]
    finally:
        server.terminate()
        server.wait(timeout=30)

    tags = [{t["key"]: t["value"] for t in r["data"]["tags"]} for r in runs]
    parents = {
        r["info"]["run_id"]
        for r, t in zip(runs, tags, strict=True)
        if t.get("phase") == "study"
    }
    children = [t for t in tags if t.get("phase") in ("trial", "final")]
    assert len(parents) == len(DATASETS) * len(ENCODERS)
    assert children
    assert all(t["mlflow.parentRunId"] in parents for t in children)


def test_soft_bins_seed_logs_bin_weights(demo_results: Path):
    client = MlflowClient(f"sqlite:///{demo_results / 'mlflow.db'}")
    finals = runs_by_phase(demo_results)["final"]
    soft = [r for r in finals if r.data.tags["encoder"] == "soft-bins"]
    with_profile = [
        r
        for r in soft
        if any(
            a.path == "encoder_weights.json"
            for a in client.list_artifacts(r.info.run_id)
        )
    ]
    assert sorted(r.data.tags["seed"] for r in with_profile) == ["0"] * len(DATASETS)


def test_every_encoder_gets_a_row(tmp_path: Path, mirror: Path):
    from encoders import available_encoders

    code = main(
        [
            "run",
            "--suite",
            "demo",
            "--results",
            str(tmp_path),
            "--mirror",
            str(mirror),
            "--datasets",
            "41021",
            "--encoders",
            "all",
            "--trials",
            "1",
            "--seeds",
            "1",
            "--max-epochs",
            "2",
        ]
    )

    assert code == 0
    text = (tmp_path / "reports" / "demo" / "leaderboard.md").read_text()
    per_dataset = text.split("## Per dataset")[1]
    for name in available_encoders():
        assert f"| {name} |" in per_dataset, name
