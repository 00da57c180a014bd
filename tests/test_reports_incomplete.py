"""Reports on incomplete experiments: gaps are marked and counted, never fatal."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl
import pytest
from reports_fixtures import StoreBuilder, Study

from bench.cli import main
from reports import ReportError, build_report
from reports.collect import collect_results
from reports.leaderboard import Leaderboard
from reports.publish import default_suite


def build(
    factory: pytest.TempPathFactory, tmp_path: Path, studies: list[Study]
) -> tuple[str, Leaderboard, Path]:
    store = StoreBuilder(factory, tmp_path)
    for study in studies:
        store.add(study)
    markdown, board = build_report(store.uri, store.experiment, tmp_path / "out")
    for name in ("report.html", "results.csv", "results.parquet"):
        assert (tmp_path / "out" / name).is_file()
    return markdown.read_text(), board, tmp_path / "out"


def cell(board: Leaderboard, openml_id: int, encoder: str) -> dict:
    rows = board.per_dataset.filter(
        (pl.col("openml_id") == openml_id) & (pl.col("encoder") == encoder)
    )
    return rows.row(0, named=True)


def test_unfinished_studies_left_out(tmp_path_factory, tmp_path):
    """A running or failed study's final runs must not enter any statistic."""
    text, board, _ = build(
        tmp_path_factory,
        tmp_path,
        [
            Study("alpha", 1, "none", [1.0, 1.1]),
            Study("alpha", 1, "soft-bins", [0.8], status=None),
            Study("beta", 2, "none", [2.0, 2.1]),
            Study("beta", 2, "soft-bins", [0.5, 0.6], status="failed"),
        ],
    )

    assert board.per_dataset.filter(pl.col("encoder") == "soft-bins").height == 0
    assert board.n_final_runs == 4
    missing = {
        (row["openml_id"], row["encoder"]): row["status"]
        for row in board.missing.iter_rows(named=True)
    }
    assert missing == {(1, "soft-bins"): "running", (2, "soft-bins"): "failed"}
    assert "2 of 4 (dataset, encoder) cells are missing (1 failed, 1 running)" in text
    assert (
        "2 studies have final runs but are not complete (1 failed, 1 running)" in text
    )
    assert "Their 3 final runs are left out" in text


def test_complete_study_without_finals(tmp_path_factory, tmp_path):
    text, board, out = build(
        tmp_path_factory,
        tmp_path,
        [
            Study("alpha", 1, "none", [1.0, 1.1]),
            Study("alpha", 1, "ple-quantile", []),
            Study("alpha", 1, "soft-bins", [], status="failed", reason="out of memory"),
            Study("beta", 2, "none", [2.0, 2.1]),
            Study("beta", 2, "ple-quantile", [1.5, 1.6]),
            Study("beta", 2, "soft-bins", [1.8, 1.9]),
        ],
    )
    assert board.missing.height == 2
    assert "2 of 6 (dataset, encoder) cells are missing (1 complete, 1 failed)" in text
    assert "| – | soft-bins | missing |" in text
    assert "failed: out of memory" in text
    assert "## Missing cells (2)" in text
    assert pl.read_csv(out / "results.csv").height == 8


def test_only_one_encoder(tmp_path_factory, tmp_path):
    text, board, out = build(
        tmp_path_factory,
        tmp_path,
        [Study("alpha", 1, "none", [1.0, 1.1]), Study("beta", 2, "none", [2.0])],
    )
    assert board.friedman is None
    assert board.overall["elo"].to_list() == [1000.0]
    assert "need at least two encoders" in text
    assert "No critical-difference diagram" in text
    assert not (out / "plots" / "cd_diagram.png").exists()
    assert (out / "plots" / "rank_heatmap.png").is_file()


def test_only_one_dataset(tmp_path_factory, tmp_path):
    text, board, _ = build(
        tmp_path_factory,
        tmp_path,
        [
            Study("alpha", 1, "none", [1.0, 1.1]),
            Study("alpha", 1, "ple-quantile", [0.5, 0.6]),
            Study("alpha", 1, "soft-bins", [0.7, 0.8]),
        ],
    )
    assert board.friedman is None
    assert board.overall["average_rank"].to_list() == [1.0, 2.0, 3.0]
    assert "at least two common datasets" in text
    assert "| ple-quantile | 1.00 |" in text


def test_no_baseline_encoder(tmp_path_factory, tmp_path):
    text, board, _ = build(
        tmp_path_factory,
        tmp_path,
        [
            Study("alpha", 1, "ple-quantile", [0.5, 0.6]),
            Study("alpha", 1, "soft-bins", [0.7, 0.8]),
            Study("beta", 2, "ple-quantile", [1.5, 1.6]),
            Study("beta", 2, "soft-bins", [1.7, 1.8]),
        ],
    )
    assert "The baseline encoder 'none' has no results" in text
    assert board.overall["wins"].to_list() == [None, None]
    assert board.overall["elo"].mean() == pytest.approx(1000.0)
    assert board.friedman is not None
    assert board.friedman.statistic is None
    assert "needs at least three encoders" in text


def test_missing_artifacts_noted(tmp_path_factory, tmp_path):
    text, board, out = build(
        tmp_path_factory,
        tmp_path,
        [
            Study("alpha", 1, "none", [1.0, 1.1], data_json=False),
            Study("alpha", 1, "soft-bins", [0.9, 0.95], data_json=False),
            Study("alpha", 1, "autodis", [0.8, 0.85], data_json=False),
        ],
    )
    assert cell(board, 1, "none")["train_s_per_1k_rows"] is None
    assert "blank where data.json cannot be read: OpenML 1." in text
    assert "No bin-weight plot for soft-bins" in text
    assert "No bin-weight plot for autodis" in text
    assert not list((out / "plots").glob("bin_weights_*.png"))


def test_empty_experiment(tmp_path_factory, tmp_path):
    text, board, out = build(tmp_path_factory, tmp_path, [])
    assert board.per_dataset.height == 0
    assert "No finished final runs" in text
    assert pl.read_csv(out / "results.csv").height == 0


def test_unknown_experiment_rejected(tmp_path_factory, tmp_path):
    store = StoreBuilder(tmp_path_factory, tmp_path)
    store.client.create_experiment("demo")

    with pytest.raises(ReportError) as raised:
        build_report(store.uri, "other", tmp_path / "out")

    message = str(raised.value)
    assert message.startswith(f"No results for suite 'other' at {store.uri}")
    assert "Suites there: demo, suite." in message
    assert "Default" not in message
    assert "Check --suite" in message
    assert "or pass --suite" not in message


def test_mixed_presets_noted(tmp_path_factory, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="reports")
    text, board, _ = build(
        tmp_path_factory,
        tmp_path,
        [
            Study("alpha", 1, "none", [1.0, 1.1]),
            Study("alpha", 1, "soft-bins", [0.8, 0.9], preset="gorishniy2022"),
        ],
    )

    assert len(board.presets) == 2
    assert "The studies come from different presets" in text
    warning_lines = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("reports") and r.levelno == logging.WARNING
    ]
    assert len(warning_lines) == 1
    assert warning_lines[0].startswith("The studies come from different presets")
    assert "gorishniy2022 (0123abcd): 1" in warning_lines[0]
    assert "gorishniy2022 (0123abcd): 1" in text
    assert "- Preset: default (fingerprint 0123abcd, 1 study); gorishniy2022" in text


def test_one_preset_named_in_method(tmp_path_factory, tmp_path):
    text, board, _ = build(
        tmp_path_factory,
        tmp_path,
        [Study("alpha", 1, "none", [1.0]), Study("beta", 2, "none", [2.0])],
    )

    assert board.presets == [("default", "0123abcd", 2)]
    assert "different presets" not in text
    assert "- Preset: default (fingerprint 0123abcd, 2 studies)." in text


def test_recorded_normalized_score_used(tmp_path_factory, tmp_path):
    studies = [
        Study("alpha", 1, "none", [1.0, 1.1], normalized_score="r2"),
        Study("alpha", 1, "soft-bins", [0.8, 0.9], normalized_score="r2"),
        Study("beta", 2, "none", [2.0, 2.1], normalized_score="r2"),
        Study("beta", 2, "soft-bins", [2.2, 2.3], normalized_score="r2"),
    ]
    (tmp_path / "recorded").mkdir()
    (tmp_path / "given").mkdir()
    _, recorded, _ = build(tmp_path_factory, tmp_path / "recorded", studies)

    store = StoreBuilder(tmp_path_factory, tmp_path / "given")
    for study in studies:
        store.add(study)
    _, explicit = build_report(
        store.uri, store.experiment, tmp_path / "out", normalized_score="r2"
    )
    _, rmse = build_report(
        store.uri, store.experiment, tmp_path / "rmse", normalized_score="rmse"
    )

    scores = recorded.overall["normalized_score"].to_list()
    assert scores == explicit.overall["normalized_score"].to_list()
    assert scores != rmse.overall["normalized_score"].to_list()


def test_default_suite_choice(tmp_path_factory, tmp_path):
    store = StoreBuilder(tmp_path_factory, tmp_path, experiment="grinsztajn336")
    assert default_suite(store.uri) == "grinsztajn336"

    store.client.create_experiment("gorishniy2022")
    with pytest.raises(ReportError, match="gorishniy2022, grinsztajn336; name one"):
        default_suite(store.uri)

    store.client.create_experiment("demo")
    assert default_suite(store.uri) == "demo"


def test_results_of_one_preset(tmp_path_factory, tmp_path):
    store = StoreBuilder(tmp_path_factory, tmp_path)
    store.add(Study("alpha", 1, "none", [1.0, 1.1], preset_fingerprint="aaaa"))
    store.add(Study("beta", 2, "none", [2.0, 2.1], preset_fingerprint="bbbb"))
    experiment = store.client.get_experiment_by_name(store.experiment)

    every = collect_results(store.client, experiment.experiment_id)
    second = collect_results(store.client, experiment.experiment_id, "bbbb")

    assert every.studies["openml_id"].to_list() == [1, 2]
    assert second.studies["openml_id"].to_list() == [2]
    assert second.finals["openml_id"].unique().to_list() == [2]


def test_one_seed_shows_mean_alone(tmp_path_factory, tmp_path):
    text, _, _ = build(
        tmp_path_factory,
        tmp_path,
        [
            Study("alpha", 1, "none", [1.0, 1.2]),
            Study("alpha", 1, "soft-bins", [0.8]),
        ],
    )

    rows = [line for line in text.splitlines() if line.startswith("| ")]
    (single,) = [row for row in rows if "| soft-bins | 0.8 |" in row]
    assert "±" not in single
    assert [row for row in rows if "| none | 1.1 ± 0.14 |" in row]


def test_mixed_budgets_noted(tmp_path_factory, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        text, board, _ = build(
            tmp_path_factory,
            tmp_path,
            [
                Study("alpha", 1, "none", [1.0, 1.2, 1.1]),
                Study("alpha", 1, "soft-bins", [0.8]),
                Study("beta", 2, "none", [2.0, 2.1, 2.2]),
            ],
        )

    note = (
        "The studies differ in their budget: 1 study with 1 final seed, 2 studies "
        "with 3 final seeds."
    )
    assert note in " ".join(board.notes)
    assert note in caplog.text
    assert note in " ".join(text.split())
    # Every study of the fixture finished 2 trials.
    assert not [n for n in board.notes if " trials" in n]


def test_report_command_follows_recorded_score(tmp_path_factory, tmp_path):
    store = StoreBuilder(tmp_path_factory, tmp_path)
    for dataset, openml_id, rmse in (("alpha", 1, 1.0), ("beta", 2, 2.0)):
        for encoder, shift in (("none", 0.0), ("soft-bins", -0.2)):
            seeds = [rmse + shift, rmse + shift + 0.1]
            store.add(Study(dataset, openml_id, encoder, seeds, normalized_score="r2"))
    args = ["report", "--results", str(tmp_path), "--suite", store.experiment]
    args += ["--no-log"]

    assert main([*args, "--out", str(tmp_path / "recorded")]) == 0
    assert main([*args, "--out", str(tmp_path / "r2"), "--normalized-score", "r2"]) == 0
    assert (
        main([*args, "--out", str(tmp_path / "rmse"), "--normalized-score", "rmse"])
        == 0
    )

    def scores(name: str) -> str:
        return (tmp_path / name / "leaderboard.csv").read_text()

    assert scores("recorded") == scores("r2")
    assert scores("recorded") != scores("rmse")
