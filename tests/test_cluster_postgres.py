"""PostgreSQL as the Optuna storage of several local workers on one study.

Needs a server: `.ci/postgres.sh start` runs one on 127.0.0.1:55432, and
BENCH_TEST_POSTGRES_URL may name another (a role that can create databases).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from cluster_checks import check_exactly_once

from bench.cli import main

pytestmark = pytest.mark.slow

DEFAULT_URL = "postgresql://bench@127.0.0.1:55432/bench"
WORKERS = 4
TRIALS = 8


@pytest.fixture
def postgres_url() -> str:
    """Create a fresh database and return its URL; skip without a server."""
    psycopg = pytest.importorskip(
        "psycopg", reason="psycopg is not installed (pip install 'psycopg[binary]')"
    )
    url = os.environ.get("BENCH_TEST_POSTGRES_URL", DEFAULT_URL)
    try:
        admin = psycopg.connect(url, connect_timeout=5, autocommit=True)
    except psycopg.OperationalError as error:
        pytest.skip(
            f"no PostgreSQL server at {url} ({error}); `.ci/postgres.sh start` "
            "starts one"
        )
    name = f"bench_test_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    yield url.rsplit("/", 1)[0] + "/" + name
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


def test_four_workers_share_postgres_study(
    tmp_path: Path, mirror: Path, postgres_url: str, capfd
):
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
            "none",
            "--trials",
            str(TRIALS),
            "--seeds",
            "2",
            "--max-epochs",
            "2",
            "--device",
            "cpu",
            "--runner",
            "local",
            "--workers",
            str(WORKERS),
            "--storage",
            postgres_url,
        ]
    )

    assert code == 0
    assert not (tmp_path / "optuna.db").exists()
    assert not (tmp_path / "optuna.journal").exists()
    counts = check_exactly_once(
        postgres_url,
        f"sqlite:///{tmp_path / 'mlflow.db'}",
        "demo",
        studies=1,
        trials=TRIALS,
        seeds=2,
    )
    assert len(counts.workers) > 1
    errors = capfd.readouterr().err
    # The whole log in the message: pytest cuts a failed comparison short, and
    # a rare failure needs its traceback.
    assert " ERROR " not in errors, errors[-8000:]
    assert "Traceback" not in errors, errors[-8000:]
