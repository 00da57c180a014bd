"""Shared fixtures: the dataset mirror and an isolated dataset cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from openml_fixtures import offline_openml  # noqa: F401 (registers the fixture)


@pytest.fixture(scope="session")
def mirror() -> Path:
    """Return the dataset mirror named by BENCH_MIRROR; fail when it is missing."""
    value = os.environ.get("BENCH_MIRROR")
    if not value or not (Path(value) / "MANIFEST.toml").is_file():
        pytest.fail(
            "BENCH_MIRROR must point at the dataset mirror (a folder with "
            f"MANIFEST.toml and the Parquet files); it is {value!r}. .ci/run sets "
            "it to ../shared/datasets."
        )
    return Path(value)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> Path:
    """Give every test its own dataset cache, so no test reads another's files."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("BENCH_CACHE", str(cache))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    return cache
