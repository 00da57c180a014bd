"""Results that cannot be written: a read-only store, a folder that fails."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from reports_fixtures import StoreBuilder, Study

from bench.cli import main
from bench.config import load_preset
from bench.pipeline import RunOptions, run_suite
from reports import build_report
from reports.publish import DATABASE_LOGGER, ReportWriteError
from tasks import DataSources, load_suite


def store_with_studies(factory: pytest.TempPathFactory, folder: Path) -> StoreBuilder:
    store = StoreBuilder(factory, folder)
    store.add(Study("alpha", 1, "none", [1.0, 1.1]))
    store.add(Study("alpha", 1, "soft-bins", [0.8, 0.9]))
    return store


def report_runs(store: StoreBuilder) -> list:
    client = MlflowClient(store.uri)
    return client.search_runs([store.experiment_id], "tags.phase = 'report'")


def test_read_only_store_warns_and_keeps_files(tmp_path_factory, tmp_path, caplog):
    store = store_with_studies(tmp_path_factory, tmp_path)
    read_only = f"sqlite:///file:{tmp_path / 'mlflow.db'}?mode=ro&uri=true"

    with caplog.at_level(logging.WARNING):
        markdown, board = build_report(read_only, store.experiment, tmp_path / "out")

    assert markdown.is_file()
    assert (tmp_path / "out" / "results.csv").is_file()
    assert board.n_final_runs == 4
    assert "not logged to MLflow" in caplog.text
    assert "attempt to write a readonly database" in caplog.text
    assert "--no-log" in caplog.text
    assert "Traceback" not in caplog.text
    database_errors = [
        r
        for r in caplog.records
        if r.name == DATABASE_LOGGER and r.levelno >= logging.WARNING
    ]
    assert database_errors == []
    assert report_runs(store) == []


def test_no_log_leaves_store_unchanged(tmp_path_factory, tmp_path):
    store = store_with_studies(tmp_path_factory, tmp_path)

    markdown, _ = build_report(
        store.uri, store.experiment, tmp_path / "out", log_to_mlflow=False
    )

    assert markdown.is_file()
    assert report_runs(store) == []


def test_unwritable_folder_names_it(tmp_path_factory, tmp_path):
    store = store_with_studies(tmp_path_factory, tmp_path)
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the report folder should go")

    with pytest.raises(ReportWriteError, match="could not be written to") as caught:
        build_report(store.uri, store.experiment, blocker / "out")

    assert str(blocker / "out") in str(caught.value)
    assert "--out" in str(caught.value)


def test_run_rejects_unwritable_results(tmp_path: Path, mirror: Path):
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the results folder should go")
    options = RunOptions(
        results=blocker / "results",
        sources=DataSources.from_env(mirror=mirror),
        encoders=["none"],
    )

    with pytest.raises(ValueError, match="cannot be written") as caught:
        run_suite(load_suite("demo"), load_preset("default"), options)

    message = str(caught.value)
    assert f"--results {blocker / 'results'}" in message
    assert "NotADirectoryError" in message
    assert "--no-log" in message


def test_report_command_no_log(tmp_path_factory, tmp_path, capsys):
    store = store_with_studies(tmp_path_factory, tmp_path)
    out = tmp_path / "elsewhere"

    code = main(
        ["report", "--results", str(tmp_path), "--suite", store.experiment]
        + ["--out", str(out), "--no-log"]
    )

    assert code == 0
    assert (out / "leaderboard.md").is_file()
    assert "soft-bins" in capsys.readouterr().out
    assert report_runs(store) == []
