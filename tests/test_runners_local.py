"""Local worker processes: environment per worker, results, crashes, a real run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cluster_checks import check_exactly_once
from runner_workers import echo_worker, failing_worker

from bench.cli import main
from runners import InProcessRunner, LocalRunner, WorkerSlot


def test_local_runner_sets_worker_environment():
    results = LocalRunner(3, gpus=["4", "5"], threads=2).run(echo_worker)

    values = [r.value for r in results]
    assert [r.error for r in results] == [None, None, None]
    assert [v["index"] for v in values] == [0, 1, 2]
    assert [v["cuda"] for v in values] == ["4", "5", "4"]
    assert {v["omp"] for v in values} == {"2"}
    assert {v["threads"] for v in values} == {2}
    assert all(v["separate"] and v["count"] == 3 for v in values)
    assert len({v["pid"] for v in values} | {os.getpid()}) == 4


def test_local_runner_without_gpus_splits_cores():
    runner = LocalRunner(2, gpus=[])
    cores = len(os.sched_getaffinity(0))

    assert runner.threads == max(1, cores // 2)
    assert "CUDA_VISIBLE_DEVICES" not in runner.environment(0)


def test_local_runner_reports_each_failure():
    results = LocalRunner(3, gpus=[]).run(failing_worker)

    assert results[0].value == 0
    assert results[0].error is None
    assert results[1].error == "ValueError: bad input in worker 1"
    assert "exited with code 3" in results[2].error


def test_inprocess_runner_keeps_error():
    results = InProcessRunner().run(failing_worker)
    assert results[0].value == 0

    def broken(slot: WorkerSlot) -> None:
        raise RuntimeError("storage unreachable")

    (result,) = InProcessRunner().run(broken)
    assert result.error == "RuntimeError: storage unreachable"


def test_inprocess_runner_rejects_workers(tmp_path: Path, mirror: Path, caplog):
    code = main(
        ["run", "--results", str(tmp_path), "--mirror", str(mirror), "--workers", "2"]
    )
    assert code == 2
    assert "--runner local" in caplog.text


def run_args(results: Path, mirror: Path, *extra: str) -> list[str]:
    return [
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
        "none,soft-bins",
        "--trials",
        "3",
        "--seeds",
        "2",
        "--max-epochs",
        "2",
        "--device",
        "cpu",
        *extra,
    ]


@pytest.mark.slow
def test_two_workers_share_each_study(tmp_path: Path, mirror: Path):
    assert main(run_args(tmp_path, mirror, "--runner", "local", "--workers", "2")) == 0

    assert (tmp_path / "optuna.journal").is_file()
    assert not (tmp_path / "optuna.db").exists()
    counts = check_exactly_once(
        f"journal:{tmp_path / 'optuna.journal'}",
        f"sqlite:///{tmp_path / 'mlflow.db'}",
        "demo",
        studies=2,
        trials=3,
        seeds=2,
    )
    assert len(counts.workers) == 2
    board = (tmp_path / "reports" / "demo" / "leaderboard.md").read_text()
    assert "| soft-bins |" in board


@pytest.mark.slow
def test_killed_worker_is_replaced(tmp_path: Path, mirror: Path):
    """A worker killed mid-trial leaves nothing lost or repeated after a re-run."""
    command = [
        sys.executable,
        "-m",
        "bench.cli",
        *run_args(tmp_path, mirror, "--runner", "local", "--workers", "2"),
    ]
    launcher = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    victim = None
    for line in launcher.stderr:
        if "Worker 1 started, pid" in line:
            victim = int(line.split("pid ")[1].split(",")[0])
        if victim and "trial 1/3" in line:
            os.kill(victim, signal.SIGKILL)
            break
    assert victim is not None
    rest = launcher.communicate(timeout=600)[1]
    assert launcher.returncode == 1, rest[-3000:]
    assert "exited with code -9" in rest

    started = time.monotonic()
    assert main(run_args(tmp_path, mirror, "--runner", "local", "--workers", "2")) == 0
    # The dead worker's trial is recognized at once (its process is gone), not
    # after the heartbeat grace period.
    assert time.monotonic() - started < 110
    check_exactly_once(
        f"journal:{tmp_path / 'optuna.journal'}",
        f"sqlite:///{tmp_path / 'mlflow.db'}",
        "demo",
        studies=2,
        trials=3,
        seeds=2,
    )
