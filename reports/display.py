"""Report content as display tables and sentences, shared by Markdown and HTML.

Each table cell has its text and a sort key (a number, or None for a blank or
missing value), so the HTML page sorts numerically while both formats show the
same text. Missing values read ``n/a``; a (dataset, encoder) cell without final
results reads ``missing`` in the RMSE column, followed by the study's status.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from reports.leaderboard import Leaderboard

MISSING = "n/a"


@dataclass
class Cell:
    """One table cell: display text and a numeric sort key (None sorts last)."""

    text: str
    sort: float | None = None


@dataclass
class Table:
    """A table with a header row and body rows of cells."""

    header: list[str]
    rows: list[list[Cell]]


@dataclass
class Plot:
    """A PNG written next to the report, with its path relative to the report."""

    path: Path
    title: str
    caption: str


@dataclass
class Plots:
    """Every plot of a report, and sentences on plots that were skipped."""

    cd_diagram: Plot | None = None
    rmse: Plot | None = None
    heatmap: Plot | None = None
    bin_weights: list[Plot] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def number(value: float | None, digits: int = 4) -> Cell:
    """Return a cell with ``digits`` significant digits, ``n/a`` for None or NaN."""
    if value is None or math.isnan(value):
        return Cell(MISSING)
    return Cell(f"{value:.{digits}g}", float(value))


def count(value: float | None) -> Cell:
    """Return a cell with a whole number and thousands separators."""
    if value is None or math.isnan(value):
        return Cell(MISSING)
    return Cell(f"{value:,.0f}", float(value))


def fixed(value: float | None, decimals: int = 2, scale: float = 1.0) -> Cell:
    """Return a cell with ``decimals`` decimals of ``value * scale``."""
    if value is None or math.isnan(value):
        return Cell(MISSING)
    return Cell(f"{value * scale:.{decimals}f}", float(value * scale))


def overall_table(board: Leaderboard) -> Table:
    """Return the leaderboard: one row per encoder, best average rank first."""
    header = [
        "encoder",
        "avg rank",
        "norm. score",
        "Elo (95% CI)",
        f"W/T/L vs {board.baseline}",
        "Wilcoxon p (Holm)",
        "datasets",
        "tuning (s)",
        "trials",
        "params",
        "train (s / 1k rows)",
        "predict (ms / 1k rows)",
    ]
    rows = []
    for r in board.overall.iter_rows(named=True):
        rows.append(
            [
                Cell(r["encoder"]),
                fixed(r["average_rank"]),
                fixed(r["normalized_score"], 3),
                _elo(r),
                _versus(r, board.baseline),
                _wilcoxon(r, board.baseline),
                Cell(str(r["n_datasets"]), r["n_datasets"]),
                fixed(r["tune_time_s"], 1),
                count(r["n_trials_done"]),
                count(r["n_params"]),
                number(r["train_s_per_1k_rows"], 3),
                number(_scaled(r["predict_s_per_1k_rows"], 1000.0), 3),
            ]
        )
    return Table(header, rows)


def dataset_tables(board: Leaderboard) -> list[tuple[str, Table]]:
    """Return one (heading, table) per dataset, missing encoders last."""
    header = [
        "rank",
        "encoder",
        "test RMSE",
        "MAE",
        "R²",
        "seeds",
        "norm. score",
        f"vs {board.baseline} (Welch p)",
        "tuning (s)",
        "trials",
        "params",
        "train (s / 1k rows)",
        "predict (ms / 1k rows)",
        "status",
    ]
    found = board.per_dataset.select("openml_id", "dataset")
    gaps = board.missing.select("openml_id", "dataset")
    names = pl.concat([found, gaps]).unique("openml_id", keep="first").sort("openml_id")
    tables = []
    for openml_id, dataset in names.iter_rows():
        rows = [
            _dataset_row(r, board.baseline)
            for r in board.per_dataset.filter(pl.col("openml_id") == openml_id)
            .sort("rank", "encoder")
            .iter_rows(named=True)
        ]
        for r in board.missing.filter(pl.col("openml_id") == openml_id).iter_rows(
            named=True
        ):
            rows.append(_missing_row(r, len(header)))
        tables.append((f"{dataset} (OpenML {openml_id})", Table(header, rows)))
    return tables


def missing_table(board: Leaderboard) -> Table:
    """Return the (dataset, encoder) cells without final results."""
    rows = [
        [
            Cell(r["dataset"]),
            Cell(str(r["openml_id"]), r["openml_id"]),
            Cell(r["encoder"]),
            Cell(r["status"]),
            Cell(r["status_reason"] or ""),
        ]
        for r in board.missing.iter_rows(named=True)
    ]
    return Table(["dataset", "OpenML id", "encoder", "status", "reason"], rows)


def skipped_table(board: Leaderboard) -> Table:
    """Return the datasets the benchmark skipped, with the reason of each."""
    rows = [
        [
            Cell(str(r["openml_id"]), r["openml_id"]),
            Cell(r["dataset"] or MISSING),
            # One line per row, so a multi-line error keeps the table intact.
            Cell(" ".join((r["reason"] or "").split())),
        ]
        for r in board.skipped.iter_rows(named=True)
    ]
    return Table(["OpenML id", "dataset", "reason"], rows)


def _dataset_row(r: dict, baseline: str) -> list[Cell]:
    rank = r["rank"]
    rank_text = str(int(rank)) if float(rank).is_integer() else f"{rank:.1f}"
    # One seed has no spread, so the cell shows the mean alone.
    spread = f" ± {number(r['rmse_std'], 2).text}" if r["n_seeds"] > 1 else ""
    rmse = Cell(f"{number(r['rmse_mean']).text}{spread}", r["rmse_mean"])
    return [
        Cell(rank_text, rank),
        Cell(r["encoder"]),
        rmse,
        number(r["mae_mean"]),
        number(r["r2_mean"]),
        Cell(str(r["n_seeds"]), r["n_seeds"]),
        fixed(r["normalized_score"], 3),
        _welch(r, baseline),
        fixed(r["tune_time_s"], 1),
        count(r["n_trials_done"]),
        count(r["n_params"]),
        number(r["train_s_per_1k_rows"], 3),
        number(_scaled(r["predict_s_per_1k_rows"], 1000.0), 3),
        Cell(r["status"] or MISSING),
    ]


def _missing_row(r: dict, width: int) -> list[Cell]:
    cells = [Cell("–"), Cell(r["encoder"]), Cell("missing"), Cell(""), Cell("")]
    cells.append(Cell("0", 0))
    cells += [Cell("") for _ in range(width - len(cells) - 1)]
    status = r["status"] + (f": {r['status_reason']}" if r["status_reason"] else "")
    return cells + [Cell(status)]


def _elo(r: dict) -> Cell:
    if r["elo"] is None:
        return Cell(MISSING)
    if r["elo_low"] is None:
        return Cell(f"{r['elo']:.0f}", r["elo"])
    text = f"{r['elo']:.0f} ({r['elo_low']:.0f} to {r['elo_high']:.0f})"
    return Cell(text, r["elo"])


def _versus(r: dict, baseline: str) -> Cell:
    if r["encoder"] == baseline:
        return Cell("baseline")
    if r["wins"] is None:
        return Cell(MISSING)
    text = f"{r['wins']}/{r['ties']}/{r['losses']}"
    if r["untested"]:
        text += f" ({r['untested']} untested)"
    return Cell(text, float(r["wins"] - r["losses"]))


def _wilcoxon(r: dict, baseline: str) -> Cell:
    if r["encoder"] == baseline:
        return Cell("baseline")
    p_holm = r["wilcoxon_p_holm"]
    if p_holm is None:
        return Cell(MISSING)
    return Cell(f"{p_holm:.3g} (n={r['wilcoxon_n']})", p_holm)


def _welch(r: dict, baseline: str) -> Cell:
    if r["encoder"] == baseline:
        return Cell("baseline")
    outcome = r["outcome"]
    if outcome is None:
        return Cell(MISSING)
    if r["p_welch"] is None:
        return Cell(outcome)
    return Cell(f"{outcome} (p={r['p_welch']:.2g})", r["p_welch"])


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else value * scale
