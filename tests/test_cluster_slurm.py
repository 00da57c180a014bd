"""A real Slurm cluster: a job array of workers, and a task requeued mid-run.

Needs a running cluster whose nodes share this machine's filesystem;
`.ci/slurm.sh start` starts a one-node cluster on 127.0.0.1.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cluster_checks import check_exactly_once

from bench.cli import main

pytestmark = pytest.mark.slow

DATASETS = "41021,507"
ENCODERS = "none,soft-bins"


def slurm_ready() -> str:
    """Return why Slurm cannot be used here, or an empty string."""
    if shutil.which("sbatch") is None:
        return "sbatch is not installed"
    try:
        states = subprocess.run(
            ["sinfo", "--noheader", "--format", "%T"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        return "sinfo timed out"
    if states.returncode != 0:
        return f"sinfo failed: {states.stderr.strip()}"
    if not re.search(r"^(idle|mixed|allocated)", states.stdout, re.MULTILINE):
        return f"no usable node (sinfo: {states.stdout.strip() or 'none'})"
    return ""


@pytest.fixture(autouse=True)
def need_slurm():
    reason = slurm_ready()
    if reason:
        pytest.skip(f"Slurm is not running ({reason}); `.ci/slurm.sh start` starts it")


def run_args(results: Path, mirror: Path, trials: int) -> list[str]:
    return [
        "run",
        "--suite",
        "demo",
        "--results",
        str(results),
        "--mirror",
        str(mirror),
        "--datasets",
        DATASETS,
        "--encoders",
        ENCODERS,
        "--trials",
        str(trials),
        "--seeds",
        "2",
        "--max-epochs",
        "2",
        "--runner",
        "slurm",
        "--workers",
        "2",
        "--cpus-per-task",
        "1",
        "--mem-gb",
        "2",
        "--time",
        "20",
    ]


def check_run(results: Path, trials: int) -> None:
    check_exactly_once(
        f"journal:{results / 'optuna.journal'}",
        f"sqlite:///{results / 'mlflow.db'}",
        "demo",
        studies=4,
        trials=trials,
        seeds=2,
    )


def test_job_array_runs_demo_suite(tmp_path: Path, mirror: Path):
    assert main(run_args(tmp_path, mirror, trials=2)) == 0

    check_run(tmp_path, trials=2)
    board = (tmp_path / "reports" / "demo" / "leaderboard.md").read_text()
    assert "| soft-bins |" in board
    (array,) = [p for p in (tmp_path / "slurm").iterdir() if p.is_dir()]
    logs = sorted(p.name for p in array.glob("*_log.err"))
    assert logs == [f"{array.name}_0_0_log.err", f"{array.name}_1_0_log.err"]


def scontrol(*args: str) -> str:
    done = subprocess.run(
        ["scontrol", *args], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def task_state(task: str) -> str:
    listing = subprocess.run(
        ["squeue", "--noheader", "--array", "--jobs", task, "--format", "%T"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return listing.stdout.strip()


def diagnose(task: str, log: Path) -> str:
    """Describe a task's Slurm state and the end of its log, for a failure."""
    tail = log.read_text(errors="replace")[-3000:] if log.is_file() else "no log"
    return f"state {task_state(task) or 'gone'!r}; log {log}:\n{tail}"


def wait_for(condition, timeout: float, what: str, detail=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout} s: {what}; {detail()}")
        time.sleep(0.5)


def test_requeued_task_resumes_without_repeats(tmp_path: Path, mirror: Path):
    trials = 4
    launcher = subprocess.Popen(
        [sys.executable, "-m", "bench.cli", *run_args(tmp_path, mirror, trials)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        array = None
        for line in launcher.stderr:
            found = re.search(r"Submitted Slurm job array (\d+)", line)
            if found:
                array = found.group(1)
                break
        assert array is not None, "the launcher did not submit an array"
        task = f"{array}_0"
        log = tmp_path / "slurm" / array / f"{task}_0_log.err"

        def trained_once() -> bool:
            # Both tasks share studies, so this task's first trial may be the
            # study's second or later: any "trial N/" line will do.
            text = log.read_text(errors="replace") if log.is_file() else ""
            return re.search(r"trial \d+/", text) is not None

        wait_for(
            trained_once,
            300,
            f"task {task} to finish a trial",
            lambda: diagnose(task, log),
        )
        scontrol("requeue", task)
        wait_for(lambda: task_state(task) == "PENDING", 120, f"{task} to be pending")
        # Slurm delays a requeued batch job (BeginTime); let it start now.
        scontrol("update", f"JobId={task}", "StartTime=now")

        _, rest = launcher.communicate(timeout=900)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            subprocess.run(["scancel", array or "0"], check=False)
    assert launcher.returncode == 0, rest[-4000:]

    assert "Restarts=1" in scontrol("show", "job", task)
    check_run(tmp_path, trials=trials)


def test_second_launch_follows_running_array(tmp_path: Path, mirror: Path, caplog):
    caplog.set_level(logging.INFO, logger="runners")
    assert main([*run_args(tmp_path, mirror, trials=2), "--no-wait"]) == 0
    (first,) = [p.name for p in (tmp_path / "slurm").iterdir() if p.is_dir()]

    try:
        assert main(run_args(tmp_path, mirror, trials=2)) == 0
    finally:
        subprocess.run(["scancel", first], check=False)

    arrays = [p.name for p in (tmp_path / "slurm").iterdir() if p.is_dir()]
    assert arrays == [first]
    assert f"Slurm job array {first} of this results folder" in caplog.text
    check_run(tmp_path, trials=2)
