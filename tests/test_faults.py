"""Faults: a run killed at random points and re-run loses and repeats nothing."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from bench.study import LEDGER_SUFFIX

pytestmark = pytest.mark.slow

ENCODERS = ["none", "soft-bins"]
TRIALS, SEEDS, KILLS = 3, 2, 10
PROGRESS = ("trial", "seed", "Leaderboard written", "tuning")


def command(results: Path, mirror: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench.cli",
        "run",
        "--suite",
        "demo",
        "--results",
        str(results),
        "--mirror",
        str(mirror),
        "--datasets",
        "41021",
        "--encoders",
        ",".join(ENCODERS),
        "--trials",
        str(TRIALS),
        "--seeds",
        str(SEEDS),
        "--max-epochs",
        "3",
        "--device",
        "cpu",
    ]


def kill_after_progress(cmd: list[str], lines_before_kill: int, delay: float) -> bool:
    """Start the run, SIGKILL it ``delay`` s after its n-th progress line.

    Returns whether the kill happened before the run ended by itself.
    """
    process = subprocess.Popen(
        cmd, stderr=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    seen = 0
    for line in process.stderr:
        if any(word in line for word in PROGRESS):
            seen += 1
        if seen >= lines_before_kill:
            time.sleep(delay)
            process.kill()
            process.wait()
            return True
    process.wait()
    return False


def test_sigkill_then_rerun_is_exact(tmp_path: Path, mirror: Path):
    cmd = command(tmp_path, mirror)
    rng = random.Random(7)
    kills = 0
    for _ in range(KILLS):
        kills += kill_after_progress(cmd, rng.randint(1, 4), rng.uniform(0, 1.5))

    finished = subprocess.run(cmd, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert kills >= KILLS // 2

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    studies = [
        s
        for s in optuna.get_all_study_summaries(storage)
        if not s.study_name.endswith(LEDGER_SUFFIX)
    ]
    assert len(studies) == len(ENCODERS)
    done_by_study = {}
    for summary in studies:
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        done = [
            t
            for t in study.trials
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        ]
        assert len(done) == TRIALS, summary.study_name
        done_by_study[summary.study_name] = len(done)

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("demo")
    runs = client.search_runs([experiment.experiment_id], max_results=5000)
    parents = [r for r in runs if r.data.tags.get("phase") == "study"]
    assert len(parents) == len(ENCODERS)

    finished_trials = Counter(
        r.data.tags["study_key"]
        for r in runs
        if r.data.tags.get("phase") == "trial" and r.info.status == "FINISHED"
    )
    assert finished_trials == done_by_study

    for parent in parents:
        best = parent.data.tags["best_params_hash"]
        seeds = Counter(
            r.data.tags["seed"]
            for r in runs
            if r.data.tags.get("phase") == "final"
            and r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
            and r.info.status == "FINISHED"
            and r.data.tags["params_hash"] == best
        )
        assert seeds == {str(s): 1 for s in range(SEEDS)}
        assert parent.data.tags["status"] == "complete"

    raw = (tmp_path / "reports" / "demo" / "results.csv").read_text().splitlines()
    assert len(raw) == 1 + len(ENCODERS) * SEEDS
