"""Faults: killed, interrupted or concurrent runs lose and repeat nothing."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from importlib import resources
from pathlib import Path

import optuna
import pytest
from cluster_checks import check_exactly_once, tuning_studies
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from bench.claims import RETRY_ATTR
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


def slow_preset(folder: Path) -> Path:
    """Write the default preset with early stopping off, so trials run long."""
    text = (resources.files("bench") / "presets" / "default.toml").read_text()
    text, replaced = re.subn(r"^patience = \d+", "patience = 1000", text, flags=re.M)
    assert replaced == 1
    path = folder / "no-early-stop.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_fails_trial_then_resumes(tmp_path: Path, mirror: Path, signum):
    results = tmp_path / "results"
    cmd = command(results, mirror)
    budget = {"--encoders": "none", "--trials": "1", "--seeds": "1"}
    for option, value in {**budget, "--max-epochs": "400"}.items():
        cmd[cmd.index(option) + 1] = value
    cmd += ["--preset", str(slow_preset(tmp_path))]
    # A process that a non-interactive shell starts in the background inherits
    # SIGINT as ignored, and Python keeps ignoring it. So the child starts with
    # the default disposition, as a command typed at a terminal does.
    process = subprocess.Popen(
        cmd,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    seen = []
    for line in process.stderr:
        seen.append(line)
        if "tuning, 1 of 1 trials" in line:
            break
    # Trial 0 trains for all 400 epochs (1,600 steps on Moneyball), which takes
    # a few seconds on an idle 2-core CPU; 30 epochs ended within the second.
    time.sleep(1.0)
    process.send_signal(signum)
    output = "".join(seen) + process.communicate(timeout=120)[1]

    assert process.returncode == 130, output[-3000:]
    errors = [
        line.split(" ERROR ", 1)[1] for line in output.splitlines() if " ERROR " in line
    ]
    assert errors == [
        f"bench: Run interrupted by {signum.name}. Finished trials and seeds are "
        "saved, and running the same command again resumes the run."
    ]
    assert "Traceback" not in output
    assert "ExperimentalWarning" not in output

    storage = f"sqlite:///{results / 'optuna.db'}"
    tracking = f"sqlite:///{results / 'mlflow.db'}"
    (study,) = tuning_studies(storage)
    interrupted, queued = study.trials
    assert interrupted.state == TrialState.FAIL
    assert queued.state == TrialState.WAITING
    assert queued.user_attrs[RETRY_ATTR] == [interrupted.number]
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name("demo")
    runs = client.search_runs([experiment.experiment_id], "tags.phase = 'trial'")
    assert [r.info.status for r in runs] == ["KILLED"]
    assert runs[0].data.tags["error"].startswith("KeyboardInterrupt")

    finished = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    check_exactly_once(storage, tracking, "demo", studies=1, trials=1, seeds=1)
    (study,) = tuning_studies(storage)
    retried = study.trials[1]
    assert retried.state == TrialState.COMPLETE
    assert retried.params == interrupted.params
    assert retried.user_attrs[RETRY_ATTR] == [interrupted.number]


def test_concurrent_runs_share_results(tmp_path: Path, mirror: Path):
    """Two `bench run` commands started together on a fresh results folder."""
    cmd = command(tmp_path, mirror)
    cmd[cmd.index("--encoders") + 1] = "none"
    processes = [
        subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [p.communicate(timeout=900)[1] for p in processes]

    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
        for error in ("Traceback", "database is locked", "alembic", "ERROR"):
            assert error not in output, (error, output[-3000:])
    counts = check_exactly_once(
        f"sqlite:///{tmp_path / 'optuna.db'}",
        f"sqlite:///{tmp_path / 'mlflow.db'}",
        "demo",
        studies=1,
        trials=TRIALS,
        seeds=SEEDS,
    )
    assert counts.done_trials == TRIALS
    raw = (tmp_path / "reports" / "demo" / "results.csv").read_text().splitlines()
    assert len(raw) == 1 + SEEDS
