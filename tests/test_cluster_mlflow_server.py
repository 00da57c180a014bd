"""An MLflow tracking server as the tracking URI; the report comes from it alone."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from bench.cli import main

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def tracking_server(tmp_path: Path):
    """Start `mlflow server` on 127.0.0.1 with a SQLite backend; yield its URL."""
    store = tmp_path / "server"
    store.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (store / "server.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{store / 'mlflow.db'}",
            "--artifacts-destination",
            str(store / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                assert server.poll() is None, (store / "server.log").read_text()
                assert time.monotonic() < deadline, "mlflow server took over 120 s"
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


def test_run_and_report_through_server(
    tmp_path: Path, mirror: Path, tracking_server: str
):
    results = tmp_path / "results"
    code = main(
        [
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
            "2",
            "--seeds",
            "2",
            "--max-epochs",
            "2",
            "--device",
            "cpu",
            "--tracking-uri",
            tracking_server,
            "--no-report",
        ]
    )
    assert code == 0
    assert not (results / "mlflow.db").exists()
    assert not (results / "mlartifacts").exists()

    client = MlflowClient(tracking_server)
    experiment = client.get_experiment_by_name("demo")
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    finals = client.search_runs(
        [experiment.experiment_id], "tags.phase = 'final'", max_results=100
    )
    assert len(finals) == 4
    assert client.list_artifacts(finals[0].info.run_id)

    elsewhere = tmp_path / "laptop"
    assert (
        main(
            [
                "report",
                "--suite",
                "demo",
                "--results",
                str(elsewhere),
                "--tracking-uri",
                tracking_server,
            ]
        )
        == 0
    )
    board = (elsewhere / "reports" / "demo" / "leaderboard.md").read_text()
    assert "| none |" in board
    assert "| soft-bins |" in board
    assert not (elsewhere / "mlflow.db").exists()
