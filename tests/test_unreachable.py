"""Unreachable tracking servers and study storages stop a run before training."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bench.cli import main


@pytest.fixture
def closed_port() -> int:
    """Return a port on 127.0.0.1 that refuses connections."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_tracking_server_unreachable(tmp_path: Path, mirror: Path, closed_port, caplog):
    code = main(
        [
            "run",
            "--results",
            str(tmp_path),
            "--mirror",
            str(mirror),
            "--tracking-uri",
            f"http://127.0.0.1:{closed_port}",
        ]
    )

    assert code == 2
    assert f"http://127.0.0.1:{closed_port} is unreachable" in caplog.text
    assert not (tmp_path / "optuna.db").exists()


def test_storage_unreachable(tmp_path: Path, mirror: Path, closed_port, caplog):
    url = f"postgresql://bench@127.0.0.1:{closed_port}/bench"
    code = main(
        ["run", "--results", str(tmp_path), "--mirror", str(mirror), "--storage", url]
    )

    assert code == 2
    assert f"Optuna storage {url} could not be opened" in caplog.text
    assert not list(tmp_path.rglob("mlartifacts/*/*"))


def test_report_server_unreachable(tmp_path: Path, closed_port, caplog):
    code = main(
        [
            "report",
            "--results",
            str(tmp_path),
            "--tracking-uri",
            f"http://127.0.0.1:{closed_port}",
        ]
    )

    assert code == 2
    assert "is unreachable" in caplog.text


def test_invalid_device_named(tmp_path: Path, mirror: Path, caplog):
    code = main(
        ["run", "--results", str(tmp_path), "--mirror", str(mirror), "--device", "gpu"]
    )

    assert code == 2
    assert "--device gpu is invalid" in caplog.text
