"""Every report file built from a real MLflow store, and its contents."""

from __future__ import annotations

import base64
import math
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image
from reports_fixtures import (
    MAIN_DATASETS,
    MAIN_FACTORS,
    MAIN_FAILED,
    MAIN_SEEDS,
    BuiltReport,
    StoreBuilder,
    Study,
    main_report,
    main_rmse,
)

from reports import build_report
from reports.publish import RAW_COLUMNS

PLOTS = ["cd_diagram.png", "rmse_per_dataset.png", "rank_heatmap.png"]
WEIGHT_PLOT = "bin_weights_soft-bins.png"
N_FINALS = len(MAIN_DATASETS) * len(MAIN_FACTORS) * MAIN_SEEDS - MAIN_SEEDS


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuiltReport:
    return main_report(tmp_path_factory)


def overall_row(built: BuiltReport, encoder: str) -> dict:
    return built.board.overall.filter(pl.col("encoder") == encoder).row(0, named=True)


def test_every_file_written(built: BuiltReport):
    names = {p.relative_to(built.out_dir).as_posix() for p in built.out_dir.rglob("*")}
    expected = {
        "leaderboard.md",
        "report.html",
        "results.csv",
        "results.parquet",
        "leaderboard.csv",
        "per_dataset.csv",
        *(f"plots/{name}" for name in [*PLOTS, WEIGHT_PLOT]),
    }
    assert expected <= names
    assert built.markdown == built.out_dir / "leaderboard.md"


def test_plots_are_real_pngs(built: BuiltReport):
    for name in [*PLOTS, WEIGHT_PLOT]:
        with Image.open(built.out_dir / "plots" / name) as image:
            assert image.format == "PNG"
            assert image.width > 300
            assert image.height > 150


def test_raw_results_per_seed(built: BuiltReport):
    csv = pl.read_csv(built.out_dir / "results.csv")
    parquet = pl.read_parquet(built.out_dir / "results.parquet")
    assert csv.columns == list(RAW_COLUMNS)
    assert parquet.columns == list(RAW_COLUMNS)
    assert csv.height == N_FINALS
    assert parquet.height == N_FINALS
    assert sorted(csv["run_id"]) == sorted(parquet["run_id"])
    assert set(csv["seed"]) == set(range(MAIN_SEEDS))
    # The stale configuration (RMSE 999) and the crashed runs are left out.
    assert csv["test_rmse"].max() < 999
    assert csv["n_train"].unique().to_list() == [640]
    failed = csv.filter(
        (pl.col("dataset") == MAIN_FAILED[0]) & (pl.col("encoder") == MAIN_FAILED[1])
    )
    assert failed.height == 0
    row = parquet.filter(
        (pl.col("openml_id") == 2)
        & (pl.col("encoder") == "none")
        & (pl.col("seed") == 1)
    )
    assert row["test_rmse"][0] == pytest.approx(main_rmse(1.0, "none", 1))


def test_ranks_scores_and_counts(built: BuiltReport):
    ple = overall_row(built, "ple-quantile")
    soft = overall_row(built, "soft-bins")
    none = overall_row(built, "none")
    assert built.board.overall["encoder"].to_list() == [
        "ple-quantile",
        "soft-bins",
        "none",
    ]
    assert ple["average_rank"] == pytest.approx(1.0)
    assert soft["average_rank"] == pytest.approx(1.75)
    assert none["average_rank"] == pytest.approx(2.75)
    assert ple["n_datasets"] == 3
    assert soft["normalized_score"] == pytest.approx(0.25)
    assert (ple["wins"], ple["ties"], ple["losses"]) == (3, 0, 0)
    assert (soft["wins"], soft["ties"], soft["losses"]) == (4, 0, 0)
    assert none["wins"] is None


def test_costs_per_thousand_rows(built: BuiltReport):
    none = overall_row(built, "none")
    # Seeds train for 6.4, 7.4 and 8.4 s on 640 rows: 11.5625 s per 1,000 rows.
    assert none["train_s_per_1k_rows"] == pytest.approx(7.4 / 0.64)
    assert none["predict_s_per_1k_rows"] == pytest.approx(0.02 / 0.2)
    assert none["tune_time_s"] == pytest.approx(12.0)
    assert none["n_trials_done"] == pytest.approx(2.0)
    assert none["n_params"] == pytest.approx(1000.0)


def test_significance_on_known_data(built: BuiltReport):
    result = built.board.friedman
    assert result is not None
    assert result.datasets == [1, 2, 4]
    # Identical ranks on all three complete datasets: chi-square = N (k - 1) = 6.
    assert result.statistic == pytest.approx(6.0)
    assert result.p_value == pytest.approx(math.exp(-3.0))
    assert result.critical_difference == pytest.approx(
        2.3437 * math.sqrt(12 / 18), 1e-3
    )
    soft = overall_row(built, "soft-bins")
    ple = overall_row(built, "ple-quantile")
    assert soft["wilcoxon_p"] == pytest.approx(0.125)
    assert ple["wilcoxon_p"] == pytest.approx(0.25)
    assert soft["wilcoxon_p_holm"] == pytest.approx(0.25)
    assert ple["wilcoxon_p_holm"] == pytest.approx(0.25)


def test_elo_pins_baseline(built: BuiltReport):
    none = overall_row(built, "none")
    ple = overall_row(built, "ple-quantile")
    soft = overall_row(built, "soft-bins")
    assert none["elo"] == pytest.approx(1000.0)
    assert none["elo_low"] == pytest.approx(1000.0)
    assert ple["elo"] > soft["elo"] > 1000.0
    assert ple["elo_low"] <= ple["elo"] <= ple["elo_high"]


def test_markdown_sections_and_links(built: BuiltReport):
    text = built.markdown.read_text()
    overall, per_dataset = text.split("## Per dataset")
    for encoder in MAIN_FACTORS:
        assert overall.count(f"| {encoder} |") == 1
    for dataset, openml_id, _ in MAIN_DATASETS:
        assert f"### {dataset} (OpenML {openml_id})" in per_dataset
    assert "## Significance" in overall
    assert "chi-square = 6.000" in overall
    assert "1 of 12 (dataset, encoder) cells are missing (1 failed)" in overall
    assert "| – | ple-quantile | missing |" in per_dataset
    assert "failed: no trial completed" in per_dataset
    assert "## Missing cells (1)" in per_dataset
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert sorted(links) == sorted(f"plots/{n}" for n in [*PLOTS, WEIGHT_PLOT])
    for link in links:
        assert (built.out_dir / link).is_file()


def test_html_is_self_contained(built: BuiltReport):
    page = (built.out_dir / "report.html").read_text()
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == len(PLOTS) + 1
    assert base64.b64decode(images[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert page.count('<table class="sortable">') == 1 + len(MAIN_DATASETS) + 1
    assert "<script>" in page
    assert "addEventListener" in page
    assert 'data-sort="1.0"' in page


def test_artifacts_logged_to_report_run(built: BuiltReport):
    client = MlflowClient(built.store.uri)
    (run,) = client.search_runs(
        [built.store.experiment_id], "tags.phase = 'report'", max_results=10
    )
    logged = {
        Path(f.path).name for f in client.list_artifacts(run.info.run_id, "report")
    }
    plots = {
        Path(f.path).name
        for f in client.list_artifacts(run.info.run_id, "report/plots")
    }
    assert {
        "leaderboard.md",
        "report.html",
        "results.csv",
        "results.parquet",
        "leaderboard.csv",
        "per_dataset.csv",
    } <= logged
    assert plots == {*PLOTS, WEIGHT_PLOT}


def test_wall_clock_tuning_time_preferred(tmp_path_factory, tmp_path):
    store = StoreBuilder(tmp_path_factory, tmp_path)
    store.add(Study("alpha", 1, "none", [1.0, 1.1], wall_time_s=30.0))
    store.add(Study("alpha", 1, "soft-bins", [0.9, 1.0]))

    _, board = build_report(store.uri, store.experiment, tmp_path / "out")

    times = dict(
        zip(board.overall["encoder"], board.overall["tune_time_s"], strict=True)
    )
    assert times["none"] == pytest.approx(30.0)
    assert times["soft-bins"] == pytest.approx(12.0)


def test_package_imports_no_training_code():
    # A report must be buildable where only MLflow is reachable.
    code = (
        "import sys, reports\n"
        "roots = {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(roots & {'bench', 'encoders', 'tasks', 'runners', 'torch',"
        " 'lightning', 'optuna'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.stdout.strip() == "[]"
